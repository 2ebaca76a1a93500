package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// Start kinds (Options.Start, vmspec.Starts).
const (
	StartCold     = "cold"
	StartSnapshot = "snapshot"
	StartAuto     = "auto"
)

// startChoice is the plan's start: a cold boot, or a restore of a template.
type startChoice struct {
	snapshot bool
	reason   string
}

// chooseStart decides the start from Options.Start and whether the VM can
// be restored (snapshotBlocker): under "snapshot" a VM that cannot be is
// an ErrInvalidOptions, under "auto" a cold boot.
func chooseStart(o Options) (startChoice, error) {
	switch o.Start {
	case "", StartCold:
		return startChoice{reason: "start = cold"}, nil
	}
	if why := snapshotBlocker(o); why != "" {
		if o.Start == StartSnapshot {
			return startChoice{}, fmt.Errorf("%w: start = %q, but a template cannot carry this VM: %s (use start = %q or %q)",
				ErrInvalidOptions, StartSnapshot, why, StartAuto, StartCold)
		}
		return startChoice{reason: "start = auto, but a template cannot carry this VM: " + why}, nil
	}
	if o.Start == StartAuto && o.Template == "" && o.NoTemplate != "" {
		return startChoice{reason: "start = auto, but the build made no template: " + o.NoTemplate}, nil
	}
	return startChoice{snapshot: true, reason: "start = " + o.Start}, nil
}

// layerShareDir is the directory of a run's (or a template's) layer
// share in its state directory: the guest mounts it read-only over 9p
// (protocol.LayerShared); a template is made with it empty.
func layerShareDir(state string) string { return filepath.Join(state, "layer-share") }

// writeLayerShare writes the layer's archives (protocol.WriteLayerPayload)
// as the share's file in dir, and returns their size.
func writeLayerShare(dir string, archives [][]byte) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("%w: layer share: %w", ErrInternal, err)
	}
	f, err := os.Create(filepath.Join(dir, protocol.LayerShareFile))
	if err != nil {
		return 0, fmt.Errorf("%w: layer share: %w", ErrInternal, err)
	}
	size, err := protocol.WriteLayerPayload(f, archives...)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%w: layer share: %w", ErrInternal, err)
	}
	return size, nil
}

// layerWindowMiB is the size of a template's layer window
// (vmm.VM.LayerWindow): a test layer up to it goes in guest memory
// (protocol.LayerInWindow), a larger one over the layer share. The window
// costs a guest none of its RAM (the kernel does not use it), a template
// nothing (its save leaves it out) and a restore the pages its layer fills.
const layerWindowMiB = 128

// layerWindow is a template's layer window: mib MiB at guest-physical
// base (mib 0: none).
type layerWindow struct {
	base uint64
	mib  int
}

// layerWindowFile is the file of a restore's layer window in its state
// directory, and templateWindowFile a template's being made (its guest
// marks it; it is not kept).
const (
	layerWindowFile    = "layer-window"
	templateWindowFile = "template-layer-window"
)

// layerWindow is the layer window of vm's template: none when the
// template format would save the window with the RAM (only
// vmm.SaveRAMFile leaves shared memory out) or the backend cannot place
// one for vm (its arch, or RAM too large).
func (p *runPlan) layerWindow(vm vmm.VM) layerWindow {
	if p.templateFormat() != vmm.SaveRAMFile {
		return layerWindow{}
	}
	vm.LayerWindow.MiB = layerWindowMiB
	base, err := p.backend.LayerWindow(vm)
	if err != nil {
		return layerWindow{}
	}
	return layerWindow{base: base, mib: layerWindowMiB}
}

// withWindow is vm with the layer window w backed by file (vm when w is
// none).
func withWindow(vm vmm.VM, w layerWindow, file string) vmm.VM {
	if w.mib > 0 {
		vm.LayerWindow = vmm.LayerWindow{File: file, MiB: w.mib}
	}
	return vm
}

// windowMarked says whether the template guest marked its layer window
// file (protocol.LayerWindowMagic): it mapped the window, where QEMU put
// the file.
func windowMarked(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, len(protocol.LayerWindowMagic))
	_, err = io.ReadFull(f, b)
	return err == nil && string(b) == protocol.LayerWindowMagic
}

// windowTakes says whether a restore of the template m describes puts a
// test layer of size bytes in its layer window: the guest mapped it, and
// the layer fits.
func (m TemplateMeta) windowTakes(size int64) bool {
	return m.LayerWindowMiB > 0 && m.LayerWindowMapped && size <= int64(m.LayerWindowMiB)<<20
}

// writeLayerWindow makes a restore's layer window file of mib MiB with
// the layer's archives (protocol.WriteLayerPayload) at its start, or
// none when archives is nil (the layer goes over the share; the restore
// still needs the window's memory), and returns their size.
func writeLayerWindow(file string, mib int, archives [][]byte) (int64, error) {
	f, err := os.Create(file)
	if err != nil {
		return 0, fmt.Errorf("%w: layer window: %w", ErrInternal, err)
	}
	var size int64
	if archives != nil {
		size, err = protocol.WriteLayerPayload(f, archives...)
	}
	if err == nil {
		err = f.Truncate(int64(mib) << 20) // sparse: only the layer's pages are the file's
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%w: layer window: %w", ErrInternal, err)
	}
	return size, nil
}

// DefaultTemplateFormat is the save format of templates: the one that
// restored fastest as measured (README, "Snapshot start"): RAM in a file
// each restore maps copy-on-write, so a restore reads only the pages the
// guest touches and never copies the rest.
const DefaultTemplateFormat = vmm.SaveRAMFile

// templateFormat is this run's template format.
func (p *runPlan) templateFormat() string {
	if p.o.TemplateFormat != "" {
		return p.o.TemplateFormat
	}
	return DefaultTemplateFormat
}

// restoreVM is vm restored from a template saved as format (its RAM in
// ram, mapped copy-on-write, for vmm.SaveRAMFile).
func restoreVM(vm vmm.VM, format, ram string) vmm.VM {
	// The kernel keeps the command line it booted with, the template's:
	// quiet, whether this run is verbose or not (the guest init's
	// diagnostics follow the test's config), so one template serves both.
	vm.Quiet = true
	vm.SaveFormat = format
	if format == vmm.SaveRAMFile {
		vm.RAMFile, vm.RAMFilePrivate = ram, true
	}
	return vm
}

// TemplateBlocker says why o's VM cannot be restored from a template (""
// when it can); such a VM cold-boots under start = "auto".
func TemplateBlocker(o Options) string { return snapshotBlocker(o) }

// snapshotBlocker says why o's VM cannot be restored from a template, ""
// when it can: the template is a saved QEMU, which QEMU only migrates with
// a migratable channel (virtio-serial or kernel vhost-vsock: it refuses a
// vhost-user device), and its shape is kept to what its devices can carry
// across a restore as tested.
func snapshotBlocker(o Options) string {
	switch {
	case len(o.NICs) > 0:
		return "it has NICs"
	case o.MgmtNIC != "":
		return "it has a management NIC"
	case o.IOMMU:
		return "it has an IOMMU"
	case o.VFIONICs.All || len(o.VFIONICs.Indexes) > 0:
		return "it binds NICs to vfio-pci"
	case o.HostPages != "" && o.HostPages != qemu.HostPages4k:
		return "its RAM is on host pages " + o.HostPages
	case o.Transport == string(vsock.VhostUserVsock):
		return "transport " + o.Transport + " cannot be migrated (QEMU refuses to migrate a vhost-user device; a template's channel is virtio-serial or kernel vhost-vsock)"
	case len(o.Command) > 0 || o.Shell:
		return "a debug command or shell needs vsock"
	case o.Backend != "" && o.Backend != "qemu":
		return "backend " + o.Backend
	}
	return ""
}

// snapshotTransport is the channel of a restored guest: kernel
// vhost-vsock where this host's transport is that (the guest listens, and
// the host dials the CID it reserved for the restore: listen is true),
// else virtio-serial (QEMU refuses to migrate a vhost-user device).
func snapshotTransport(o Options) (c vsock.Choice, listen bool, err error) {
	c, err = chooseTransport(o)
	switch {
	case err != nil || c.Transport == vsock.VirtioSerial:
		return c, false, err
	case c.Transport == vsock.VhostVsock:
		c.Reason += "; snapshot start: the restored guest listens, the host dials it"
		return c, true, nil
	}
	return vsock.Choice{Transport: vsock.VirtioSerial,
		Reason: "snapshot start: a template's channel must be migratable (QEMU refuses to migrate a vhost-user device, and kernel vhost-vsock is not usable here: " + c.Reason + ")"}, false, nil
}

// restore is what a snapshot start restores: the template, and the test
// layer (the extra layers' archives and the test layer's), size bytes,
// via the template's layer window (the file window) or the layer share.
type restore struct {
	tmpl   Template
	share  string
	window string
	via    protocol.LayerVia
	size   int64
}

// prepareRestore finds (or makes) the template of this run's VM and reads
// the test layer it gets; an error wraps ErrTemplate or the cause, and
// means a cold boot.
func (p *runPlan) prepareRestore(ctx context.Context, pr *prepared, base string, cfg protocol.GuestConfig) (*restore, error) {
	archives, err := restoreArchives(p.o, cfg)
	if err != nil {
		return nil, err
	}
	t, err := p.findTemplate(ctx, pr, base)
	if err != nil {
		return nil, err
	}
	r := &restore{tmpl: t, share: layerShareDir(pr.state), via: protocol.LayerShared}
	if mib := t.Meta.LayerWindowMiB; mib > 0 {
		// The window's memory is the template's shape: every restore
		// has it, with the layer in it when the guest mapped it and the
		// layer fits.
		r.window = filepath.Join(pr.state, layerWindowFile)
		in := t.Meta.windowTakes(protocol.LayerPayloadSize(archives))
		var inWindow [][]byte
		if in {
			inWindow, r.via = archives, protocol.LayerInWindow
		}
		pr.removeLater(r.window)
		if r.size, err = writeLayerWindow(r.window, mib, inWindow); err != nil {
			return nil, err
		}
		if in { // the share is the template's shape too: there, empty
			if err := os.MkdirAll(r.share, 0o755); err != nil {
				return nil, fmt.Errorf("%w: layer share: %w", ErrInternal, err)
			}
			pr.removeLater(r.share)
			return r, nil
		}
	}
	if r.size, err = writeLayerShare(r.share, archives); err != nil {
		return nil, err
	}
	// The file, then its directory (the teardown removes in order).
	pr.removeLater(filepath.Join(r.share, protocol.LayerShareFile))
	pr.removeLater(r.share)
	return r, nil
}

// restoreArchives is what a cold boot appends to the base layer: the extra
// layers and the test layer (cfg, the binary, testdata), as archives.
func restoreArchives(o Options, cfg protocol.GuestConfig) ([][]byte, error) {
	var archives [][]byte
	for _, l := range o.ExtraLayers {
		b, err := os.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInternal, err)
		}
		archives = append(archives, b)
	}
	test, err := testLayer(o, cfg)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := test.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("%w: test layer: %w", ErrInternal, err)
	}
	return append(archives, b.Bytes()), nil
}

// templateWant is what this run needs of a template: its key (the VM's
// command line with placeholders for the run's own files, and the
// template's config tcfg), the contents of the kernel and the base layer,
// and QEMU's build id.
func (p *runPlan) templateWant(pr *prepared, base string, tcfg []byte) (TemplateMeta, error) {
	o := p.o
	vm := restoreVM(p.lower(vmDescription(p, pr)), p.templateFormat(), "@ram")
	// Booted, not restored (no -incoming): the key has the kernel command
	// line the template booted with, which a restore's leaves out.
	vm.Kernel, vm.Initrd, vm.Restore, vm.Channel.Socket, vm.Monitor = "@kernel", "@initrd", "", "@serial", "@monitor"
	vm.LayerShare = "@layershare"
	window := p.layerWindow(vm)
	vm = withWindow(vm, window, "@layerwindow")
	if vm.Channel.Transport == vsock.VhostVsock {
		vm.Channel.CID = vsock.FirstGuestCID // each restore's own
	}
	args, err := p.backend.Args(vm)
	if err != nil {
		return TemplateMeta{}, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	// A prebuilt template (Options.Template: go_vm_test's, built from the
	// very kernel and base layer the test has) is not re-hashed: its
	// build graph answers for them.
	var files string
	if o.Template == "" {
		if files, err = filesKey(filepath.Join(o.CacheDir, "digests"), o.Kernel, base); err != nil {
			return TemplateMeta{}, err
		}
	}
	id, err := QEMUBuildID(o.QEMU)
	if err != nil {
		return TemplateMeta{}, err
	}
	cpu, err := hostCPUKey(vm.Accel, o.CPUInfo)
	if err != nil {
		return TemplateMeta{}, err
	}
	return TemplateMeta{Version: TemplateMetaVersion, Key: templateKey(args, tcfg), Files: files, Format: p.templateFormat(), QEMUBuildID: id,
		HostCPU: cpu, QEMUVersion: p.qemuVersion, Arch: o.Arch, Accel: vm.Accel, Kernel: o.Kernel, LayerWindowMiB: window.mib}, nil
}

// findTemplate returns the template for this run: Options.Template when
// given (refused when it does not fit), else the cache directory's, made
// (or remade, when the one there does not fit, saying why) on a miss.
func (p *runPlan) findTemplate(ctx context.Context, pr *prepared, base string) (Template, error) {
	o := p.o
	tcfg, want, err := p.templateFor(pr, base)
	if err != nil {
		return Template{}, err
	}
	if o.Template != "" {
		t, err := ReadTemplate(o.Template)
		if err == nil {
			err = t.Meta.Check(want)
		}
		return t, err
	}
	dir := TemplateDir(o.CacheDir, o.Arch, want.Key+"-"+want.Files[:8])
	t, err := ReadTemplate(dir)
	if err == nil {
		if err = t.Meta.Check(want); err == nil {
			return t, nil
		}
		fmt.Fprintf(o.Log, "invm: template %s not used: %v; making a new one\n", dir, err)
	}
	return p.makeTemplate(ctx, pr, base, tcfg, want, dir, true)
}

// templateFor is the template config of this run's VM and what it needs
// of a template.
func (p *runPlan) templateFor(pr *prepared, base string) ([]byte, TemplateMeta, error) {
	tcfg, err := templateConfig(pr.ch.guest, p.hugeSizes(), p.layerWindow(vmDescription(p, pr)))
	if err != nil {
		return nil, TemplateMeta{}, err
	}
	want, err := p.templateWant(pr, base, tcfg)
	return tcfg, want, err
}

// hugeSizes are the guest hugepage sizes the guest mounts.
func (p *runPlan) hugeSizes() []string {
	if p.o.GuestHugepages.Count > 0 {
		return []string{p.o.GuestHugepages.Size}
	}
	return nil
}

// lower adds to vm what the backend needs of this host: the TSC frequency
// of an x86 microvm under TCG.
func (p *runPlan) lower(vm vmm.VM) vmm.VM {
	if p.profile.TSCEarly && vm.Accel == qemu.AccelTCG {
		var err error
		if vm.TSCkHz, err = qemu.HostTSCkHz(p.o.CPUInfo); err != nil {
			fmt.Fprintf(p.o.Log, "invm: warning: no tsc_early_khz (%v): microvm may hang under TCG\n", err)
		}
	}
	return vm
}

// layerListener is the session's listener of a restored guest: the
// guest's channel, once accepted, first carries the header of the test
// layer, which waits in the layer window or share.
type layerListener struct {
	net.Listener
	via  protocol.LayerVia
	size int64 // of the layer in the window or share
	now  func() time.Time
	sent bool
	// log gets when the header went, counted from start (QEMU's start).
	log   io.Writer
	start time.Time
}

// Accept accepts a connection; the first gets the layer's header (the
// host's clock and a fresh seed; the archives are in the window or share).
func (l *layerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || l.sent {
		return c, err
	}
	l.sent = true
	h := protocol.LayerHeader{Via: l.via, Now: l.now(), Size: l.size}
	_, _ = rand.Read(h.Seed[:])
	if err := protocol.WriteLayerHeader(c, h); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: sending the test layer: %w", ErrBootFailed, err)
	}
	if l.log != nil {
		where := "layer share"
		if l.via == protocol.LayerInWindow {
			where = "layer window"
		}
		fmt.Fprintf(l.log, "invm: test layer (%.1f MB) in the %s, channel connected %v after QEMU started\n",
			float64(l.size)/1e6, where, l.now().Sub(l.start).Round(time.Millisecond))
	}
	return c, nil
}

// coldFallback readies a cold boot after a restore that failed before the
// guest spoke: a fresh channel (the session closed the last) and the
// initrd the cold boot needs.
func (pr *prepared) coldFallback(p *runPlan) error {
	o := p.o
	pr.restore = nil
	pr.ch.close()
	var err error
	// A guest boots cold dialling the host, on kernel vhost-vsock too.
	if pr.ch, err = openChannel(o, pr.state, p.transport, false); err != nil {
		return err
	}
	pr.cfg.Channel = pr.ch.guest
	return pr.writeInitrd(o, pr.base, pr.cfg)
}

// templateMonitor is the monitor socket of a template being made, in the
// run's state directory (the cache directory's path may be too long for
// a socket); its channel's are in the directory "template" there
// (templateChannel).
func templateMonitor(state string) string { return filepath.Join(state, "template-qmp.sock") }
