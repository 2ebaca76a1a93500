package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

func TestChooseStart(t *testing.T) {
	for _, tc := range []struct {
		name         string
		o            Options
		wantSnapshot bool
		wantReason   string // substring
		wantErr      error
	}{
		{name: "default", o: Options{}, wantReason: "start = cold"},
		{name: "cold", o: Options{Start: "cold"}, wantReason: "start = cold"},
		{name: "auto", o: Options{Start: "auto"}, wantSnapshot: true, wantReason: "start = auto"},
		{name: "snapshot", o: Options{Start: "snapshot", Transport: "virtio-serial"}, wantSnapshot: true},
		{name: "auto with NICs", o: Options{Start: "auto", NICs: []string{"e1000"}}, wantReason: "it has NICs"},
		{name: "auto with vsock", o: Options{Start: "auto", Transport: "vhost-user-vsock"}, wantReason: "cannot be migrated"},
		{name: "auto with 2M pages", o: Options{Start: "auto", HostPages: "2M"}, wantReason: "host pages 2M"},
		{name: "auto with IOMMU", o: Options{Start: "auto", IOMMU: true}, wantReason: "IOMMU"},
		{name: "auto with shell", o: Options{Start: "auto", Shell: true}, wantReason: "debug command"},
		{name: "snapshot with NICs", o: Options{Start: "snapshot", NICs: []string{"e1000"}}, wantErr: ErrInvalidOptions},
		{name: "snapshot with mgmt NIC", o: Options{Start: "snapshot", MgmtNIC: "e1000"}, wantErr: ErrInvalidOptions},
		{name: "auto, the build made none", o: Options{Start: "auto", NoTemplate: "the VM's memory differs"}, wantReason: "the build made no template: the VM's memory differs"},
		{name: "auto with a template", o: Options{Start: "auto", Template: "/t", NoTemplate: "stale"}, wantSnapshot: true},
		{name: "snapshot, the build made none", o: Options{Start: "snapshot", NoTemplate: "x"}, wantSnapshot: true},
		{name: "snapshot with vfio", o: Options{Start: "snapshot", VFIONICs: vmspec.VFIONICs{All: true}}, wantErr: ErrInvalidOptions},
		{name: "snapshot on kernel vhost-vsock", o: Options{Start: "snapshot", Transport: "vhost-vsock"}, wantSnapshot: true},
		{name: "snapshot on vhost-user-vsock", o: Options{Start: "snapshot", Transport: "vhost-user-vsock"}, wantErr: ErrInvalidOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseStart(tc.o)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.snapshot != tc.wantSnapshot || !strings.Contains(got.reason, tc.wantReason) {
				t.Errorf("chooseStart = %+v, want snapshot %v, reason containing %q", got, tc.wantSnapshot, tc.wantReason)
			}
		})
	}
}

// TestSnapshotTransport: a restored guest's channel is kernel vhost-vsock,
// the guest listening, where the host's transport is that, and
// virtio-serial otherwise (QEMU does not migrate a vhost-user device).
func TestSnapshotTransport(t *testing.T) {
	usable := filepath.Join(t.TempDir(), "vhost-vsock") // opens read-write: "usable"
	if err := os.WriteFile(usable, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name       string
		o          Options
		want       vsock.Transport
		wantListen bool
		wantReason string
		wantErr    bool
	}{
		{name: "auto, kernel vhost-vsock", o: Options{VhostDevice: usable}, want: vsock.VhostVsock, wantListen: true, wantReason: "the restored guest listens"},
		{name: "forced kernel vhost-vsock", o: Options{Transport: "vhost-vsock", VhostDevice: usable}, want: vsock.VhostVsock, wantListen: true},
		{name: "forced, not usable", o: Options{Transport: "vhost-vsock", VhostDevice: missing}, wantErr: true},
		{name: "auto, no kernel vhost-vsock", o: Options{VhostDevice: missing, Daemon: "/bin/true"}, want: vsock.VirtioSerial,
			wantReason: "QEMU refuses to migrate a vhost-user device, and kernel vhost-vsock is not usable here"},
		{name: "forced virtio-serial", o: Options{Transport: "virtio-serial", VhostDevice: usable}, want: vsock.VirtioSerial, wantReason: "requested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, listen, err := snapshotTransport(tc.o)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if c.Transport != tc.want || listen != tc.wantListen || !strings.Contains(c.Reason, tc.wantReason) {
				t.Errorf("snapshotTransport = %+v, listen %v; want %s, listen %v, reason containing %q", c, listen, tc.want, tc.wantListen, tc.wantReason)
			}
		})
	}
}

func TestTemplateMetaCheck(t *testing.T) {
	want := TemplateMeta{Version: TemplateMetaVersion, Key: "k", Files: "f", QEMUBuildID: "b1", QEMUVersion: "QEMU 11.0.0", Arch: "x86_64"}
	for _, tc := range []struct {
		name   string
		edit   func(m *TemplateMeta)
		reason string // "" fits
	}{
		{name: "same", edit: func(*TemplateMeta) {}},
		{name: "same but made elsewhere", edit: func(m *TemplateMeta) { m.MakeTime, m.StateBytes, m.Kernel = time.Second, 1, "/x" }},
		{name: "other QEMU build", edit: func(m *TemplateMeta) { m.QEMUBuildID = "b2" }, reason: "made by QEMU build id b2"},
		{name: "other version", edit: func(m *TemplateMeta) { m.Version = 0 }, reason: "version 0"},
		{name: "other arch", edit: func(m *TemplateMeta) { m.Arch = "aarch64" }, reason: "made for aarch64"},
		{name: "other VM", edit: func(m *TemplateMeta) { m.Key = "k2" }, reason: "another VM"},
		{name: "other kernel", edit: func(m *TemplateMeta) { m.Files = "f2" }, reason: "another kernel or base layer"},
		{name: "KVM template, another host CPU", edit: func(m *TemplateMeta) { m.HostCPU = "c2" }, reason: "made on another host CPU model (c2, this host's none)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := want
			tc.edit(&m)
			err := m.Check(want)
			// A prebuilt template's files are not checked (want.Files "").
			prebuilt := want
			prebuilt.Files = ""
			if perr := m.Check(prebuilt); tc.name == "other kernel" && perr != nil {
				t.Errorf("prebuilt: Check = %v, want nil", perr)
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Check = %v, want ErrTemplate saying %q", err, tc.reason)
			}
		})
	}
}

// writeFile writes data to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostCPUKey: a KVM template is keyed by the host CPU model, a TCG
// one is not; cpuinfo that names no model fails a KVM template.
func TestHostCPUKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string { return writeFile(t, dir, name, data) }
	a := write("a", "processor : 0\nvendor_id : GenuineIntel\nflags : fpu sse\ncpu MHz : 1000\n")
	a2 := write("a2", "processor : 0\nvendor_id : GenuineIntel\nflags : fpu sse\ncpu MHz : 3000\n")
	b := write("b", "processor : 0\nvendor_id : GenuineIntel\nflags : fpu sse avx\n")
	none := write("none", "processor : 0\n")
	ka, err := hostCPUKey("kvm", a)
	if err != nil || ka == "" {
		t.Fatalf("hostCPUKey(kvm) = %q, %v", ka, err)
	}
	ka2, _ := hostCPUKey("kvm", a2)
	kb, _ := hostCPUKey("kvm", b)
	if ka != ka2 || ka == kb {
		t.Errorf("keys: %s %s %s; want the first two equal (a clock), the third not (a flag)", ka, ka2, kb)
	}
	if k, err := hostCPUKey("tcg", b); k != "" || err != nil {
		t.Errorf("hostCPUKey(tcg) = %q, %v; want none", k, err)
	}
	if _, err := hostCPUKey("kvm", none); !errors.Is(err, ErrTemplate) {
		t.Errorf("hostCPUKey(kvm) without a model: %v, want ErrTemplate", err)
	}
}

func TestFilesKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string { return writeFile(t, dir, name, data) }
	k1, b1 := write("k1", "kernel"), write("b1", "base")
	copyK, copyB := write("k-copy", "kernel"), write("b-copy", "base")
	k2 := write("k2", "kernel2")
	memo := filepath.Join(dir, "memo")
	key := func(files ...string) string {
		s, err := filesKey(memo, files...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if key(k1, b1) != key(copyK, copyB) {
		t.Error("the same contents elsewhere have another key")
	}
	if key(k1, b1) == key(k2, b1) {
		t.Error("another kernel has the same key")
	}
	if key(k1, b1) == key(b1, k1) {
		t.Error("swapped files have the same key")
	}
	if _, err := filesKey(memo, filepath.Join(dir, "missing")); !errors.Is(err, ErrTemplate) {
		t.Errorf("missing file: %v, want ErrTemplate", err)
	}
	// A remembered digest follows the file: rewritten (another size), the
	// file gets its new digest.
	before := key(k1, b1)
	if err := os.WriteFile(k1, []byte("kernel, rebuilt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if key(k1, b1) == before {
		t.Error("a rewritten kernel kept its remembered digest")
	}
	if key(k1, b1) != key(k1, b1) {
		t.Error("the remembered digest differs from the computed one")
	}
}

// writeTemplate writes a template directory with meta m.
func writeTemplate(t *testing.T, dir string, m TemplateMeta) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TemplateStateFile), []byte(TemplateStateFile), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TemplateMetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newcArchive is a one-file layer.
func newcArchive(t *testing.T, name, data string) []byte {
	t.Helper()
	l := initramfs.NewLayer()
	if err := l.AddBytes(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := l.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadAndInstallTemplate(t *testing.T) {
	root := t.TempDir()
	want := TemplateMeta{Version: TemplateMetaVersion, Key: "k", Files: "f", QEMUBuildID: "b", Arch: "x86_64"}
	dir := filepath.Join(root, "t")
	if _, err := ReadTemplate(dir); !errors.Is(err, ErrTemplate) {
		t.Fatalf("ReadTemplate(missing) = %v, want ErrTemplate", err)
	}
	// A refused template in place is replaced by the new one.
	stale := want
	stale.QEMUBuildID = "old"
	writeTemplate(t, dir, stale)
	tmp := filepath.Join(root, ".make-1")
	writeTemplate(t, tmp, want)
	got, err := installTemplate(tmp, dir, want)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta.QEMUBuildID != "b" || got.Dir != dir {
		t.Errorf("installed %+v, want the new one at %s", got, dir)
	}
	// A good one in place stays; the new one goes.
	tmp2 := filepath.Join(root, ".make-2")
	writeTemplate(t, tmp2, want)
	if _, err := installTemplate(tmp2, dir, want); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp2); !os.IsNotExist(err) {
		t.Errorf("the second template was left at %s: %v", tmp2, err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("left in the cache: %v, want only t", entries)
	}
	// A template without its state is not one.
	os.Remove(filepath.Join(dir, TemplateStateFile))
	if _, err := ReadTemplate(dir); !errors.Is(err, ErrTemplate) {
		t.Errorf("ReadTemplate(no state) = %v, want ErrTemplate", err)
	}
}

// TestLayerListener checks that a restored guest's channel carries the
// test layer's header first, with the host's clock, a fresh seed each time
// and the size of the layer writeLayerShare put in the share, whose
// archives extract.
func TestLayerListener(t *testing.T) {
	seeds := map[[protocol.SeedSize]byte]bool{}
	for i := range 2 {
		ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
		if err != nil {
			t.Fatal(err)
		}
		share := layerShareDir(t.TempDir())
		size, err := writeLayerShare(share, [][]byte{newcArchive(t, "invm/x", "data")})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1800000000+int64(i), 0)
		ll := &layerListener{Listener: ln, via: protocol.LayerShared, size: size, now: func() time.Time { return now }}
		got := make(chan error, 1)
		var h protocol.LayerHeader
		root := t.TempDir()
		go func() {
			c, err := net.Dial("unix", ln.Addr().String())
			if err != nil {
				got <- err
				return
			}
			defer c.Close()
			if h, err = protocol.ReadLayerHeader(c); err != nil {
				got <- err
				return
			}
			b, err := os.ReadFile(filepath.Join(share, protocol.LayerShareFile))
			if err == nil {
				err = protocol.ExtractLayerBytes(b, h, root)
			}
			if err == nil {
				_, err = io.WriteString(c, "after")
			}
			got <- err
		}()
		c, err := ll.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "after" {
			t.Fatalf("after the layer: %q, %v", buf, err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		c.Close()
		ln.Close()
		if !h.Now.Equal(now) || h.Via != protocol.LayerShared || h.Size != size {
			t.Errorf("header %+v, want clock %v, shared, size %d", h, now, size)
		}
		if b, err := os.ReadFile(filepath.Join(root, "invm/x")); err != nil || string(b) != "data" {
			t.Errorf("extracted %q, %v", b, err)
		}
		seeds[h.Seed] = true
	}
	if len(seeds) != 2 {
		t.Error("two restores got the same seed")
	}
}

// TestTemplateKey: a template's key is its VM, not a run's: two runs of
// one VM (their own state directories, sockets and initrds) share it; a
// VM with another kernel command line (which a restore's QEMU command
// line leaves out) or memory size has another.
// TestLayerWindow: an x86_64 template has a layer window right after its
// RAM, when its format leaves shared memory out of the save and the window
// fits below 2 GiB; an aarch64 one has none. A restore puts its layer
// there only when the template's guest mapped it and the layer fits.
func TestLayerWindow(t *testing.T) {
	plan := func(change func(*Options)) *runPlan {
		o := Options{TestBinary: "x.test", Arch: arch.X86_64, Kernel: "/k/vmlinux", Log: io.Discard}
		if change != nil {
			change(&o)
		}
		o = o.WithDefaults()
		return &runPlan{o: o, shape: o.shape(), profile: qemu.Profiles[o.Arch], backend: vmm.QEMU{}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   layerWindow
	}{
		{"x86_64", nil, layerWindow{base: 256 << 20, mib: layerWindowMiB}},
		{"x86_64, 1 GiB", func(o *Options) { o.MemoryMiB = 1024 }, layerWindow{base: 1 << 30, mib: layerWindowMiB}},
		{"x86_64, RAM up to 2 GiB", func(o *Options) { o.MemoryMiB = 2000 }, layerWindow{}},
		{"x86_64, a stream template", func(o *Options) { o.TemplateFormat = vmm.SaveStream }, layerWindow{}},
		{"x86_64, a mapped-ram template", func(o *Options) { o.TemplateFormat = vmm.SaveMappedRAM }, layerWindow{}},
		{"aarch64", func(o *Options) { o.Arch, o.Kernel = arch.AArch64, "/k/Image" }, layerWindow{}},
	} {
		p := plan(tc.change)
		if got := p.layerWindow(p.shape); got != tc.want {
			t.Errorf("%s: window %+v, want %+v", tc.name, got, tc.want)
		}
	}
	m := TemplateMeta{LayerWindowMiB: 1, LayerWindowMapped: true}
	for _, tc := range []struct {
		meta TemplateMeta
		size int64
		want bool
	}{
		{m, 1 << 20, true},
		{m, 1<<20 + 1, false},
		{TemplateMeta{LayerWindowMiB: 1}, 10, false}, // the guest did not map it
		{TemplateMeta{}, 10, false},
	} {
		if got := tc.meta.windowTakes(tc.size); got != tc.want {
			t.Errorf("%+v takes %d bytes: %v, want %v", tc.meta, tc.size, got, tc.want)
		}
	}
}

// TestWriteLayerWindow: a restore's window file is the window's size with
// the layer at its start (or nothing but zeros); the template's is marked
// only when it starts with the magic.
func TestWriteLayerWindow(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "w")
	archives := [][]byte{[]byte("abcde"), []byte("xyz")}
	size, err := writeLayerWindow(file, 2, archives)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if payload := protocol.LayerPayload(archives...); size != int64(len(payload)) || len(b) != 2<<20 || !bytes.Equal(b[:size], payload) ||
		bytes.ContainsFunc(b[size:], func(r rune) bool { return r != 0 }) {
		t.Errorf("window file of %d bytes, layer of %d: %q...", len(b), size, b[:16])
	}
	if windowMarked(file) {
		t.Error("a layer is not the template's mark")
	}
	if size, err := writeLayerWindow(file, 1, nil); err != nil || size != 0 {
		t.Fatalf("an empty window: %d, %v", size, err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() != 1<<20 {
		t.Fatalf("an empty window's file: %v, %v", st, err)
	}
	if err := os.WriteFile(file, []byte(protocol.LayerWindowMagic+"rest"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !windowMarked(file) || windowMarked(filepath.Join(dir, "missing")) {
		t.Error("windowMarked: want the marked file only")
	}
}

func TestTemplateKey(t *testing.T) {
	cpuinfo := writeFile(t, t.TempDir(), "cpuinfo", "cpu MHz\t\t: 2600.000\n")
	key := func(state string, change func(*Options)) string {
		t.Helper()
		o := Options{TestBinary: "x.test", Arch: arch.X86_64, Kernel: "/k/vmlinux", QEMU: os.Args[0], Template: "/t",
			CPUInfo: cpuinfo, Log: io.Discard}
		if change != nil {
			change(&o)
		}
		o = o.WithDefaults()
		p := &runPlan{o: o, shape: o.shape(), profile: qemu.Profiles[arch.X86_64], backend: vmm.QEMU{}}
		pr := &prepared{state: state, initrd: state + "/initrd.cpio", accel: AccelChoice{Accel: qemu.AccelTCG},
			ch: &channel{device: vmm.Channel{Transport: vsock.VirtioSerial, Socket: state + "/serial.sock"}}}
		want, err := p.templateWant(pr, "/base.cpio", []byte(`{"template":true}`))
		if err != nil {
			t.Fatal(err)
		}
		return want.Key
	}
	base := key("/s1", nil)
	for _, tc := range []struct {
		name   string
		key    string
		shared bool
	}{
		{"another run's state directory", key("/s2", nil), true},
		{"another kernel command line", key("/s1", func(o *Options) { o.ExtraCmdline = []string{"loglevel=7"} }), false},
		{"more memory", key("/s1", func(o *Options) { o.MemoryMiB = 512 }), false},
	} {
		if got := tc.key == base; got != tc.shared {
			t.Errorf("%s: same key %v, want %v", tc.name, got, tc.shared)
		}
	}
}
