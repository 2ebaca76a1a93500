package runner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

func TestExitCode(t *testing.T) {
	v := func(pass bool, code int, sig string, leaked ...string) Result {
		return Result{Verdict: &protocol.Verdict{Pass: pass, ExitCode: code, Signal: sig, Leaked: leaked}}
	}
	for _, tc := range []struct {
		name string
		res  Result
		err  error
		want int
	}{
		{"pass", v(true, 0, ""), nil, ExitPass},
		{"test exit 1", v(false, 1, ""), nil, 1},
		{"test exit 2 (panic)", v(false, 2, ""), nil, 2},
		{"killed by SIGKILL", v(false, -1, "SIGKILL"), nil, 128 + 9},
		{"leaked process", v(false, 0, "", "42 sleep"), nil, ExitVerdictFail},
		{"unknown signal", v(false, -1, "SIGNOPE"), nil, ExitVerdictFail},
		{"exit code 255", v(false, 255, ""), nil, 255},
		{"exit code 256 (status 0 if passed through)", v(false, 256, ""), nil, ExitVerdictFail},
		{"exit code 512", v(false, 512, ""), nil, ExitVerdictFail},
		{"negative exit code", v(false, -256, ""), nil, ExitVerdictFail},
		{"no verdict, no error", Result{}, nil, ExitBadSession},
		{"usage", Result{}, fmt.Errorf("x: %w", ErrInvalidOptions), ExitUsage},
		{"no kernel", Result{}, ErrNoKernel, ExitNoKernel},
		{"no qemu", Result{}, ErrNoQEMU, ExitNoQEMU},
		{"no daemon", Result{}, ErrNoDaemon, ExitNoDaemon},
		{"boot failed", Result{}, ErrBootFailed, ExitBootFailed},
		{"panic", v(true, 0, ""), ErrGuestPanic, ExitGuestPanic},
		{"panic wins over boot failure", Result{}, fmt.Errorf("%w: %w", ErrGuestPanic, ErrBootFailed), ExitGuestPanic},
		{"no channel", Result{}, ErrNoChannel, ExitNoChannel},
		{"timeout", Result{}, fmt.Errorf("%w: %w", ErrTimeout, ErrNoChannel), ExitTimeout},
		{"daemon died beats all", v(true, 0, ""), fmt.Errorf("%w %w %w", ErrTimeout, ErrDaemonDied, ErrBadSession), ExitDaemonDied},
		{"bad session", v(true, 0, ""), ErrBadSession, ExitBadSession},
		{"internal", Result{}, ErrInternal, ExitInternal},
		{"unknown error", Result{}, errors.New("?"), ExitInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.res, tc.err); got != tc.want {
				t.Errorf("ExitCode = %d, want %d", got, tc.want)
			}
		})
	}
	// Infrastructure codes are distinct.
	seen := map[int]error{}
	for _, e := range exitCodes {
		if prev, ok := seen[e.code]; ok {
			t.Errorf("%v and %v share exit code %d", prev, e.err, e.code)
		}
		seen[e.code] = e.err
	}
}

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "x.test")
	os.WriteFile(bin, []byte("x"), 0o755)
	ok := func(mod func(*Options)) Options {
		o := Options{TestBinary: bin}
		if mod != nil {
			mod(&o)
		}
		return o.WithDefaults()
	}
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"defaults", ok(nil), nil},
		{"no binary", ok(func(o *Options) { o.TestBinary = "" }), ErrInvalidOptions},
		{"missing binary", ok(func(o *Options) { o.TestBinary = filepath.Join(dir, "nope") }), ErrInvalidOptions},
		{"binary is a dir", ok(func(o *Options) { o.TestBinary = dir }), ErrInvalidOptions},
		{"bad arch", ok(func(o *Options) { o.Arch = "mips" }), ErrInvalidOptions},
		{"aarch64", ok(func(o *Options) { o.Arch = arch.AArch64 }), nil},
		{"bad accel", ok(func(o *Options) { o.Accel = "hax" }), ErrInvalidOptions},
		{"tiny memory", ok(func(o *Options) { o.MemoryMiB = 16 }), ErrInvalidOptions},
		{"too many cpus", ok(func(o *Options) { o.CPUs = 65 }), ErrInvalidOptions},
		{"negative timeout", ok(func(o *Options) { o.Timeout = -time.Second }), ErrInvalidOptions},
		{"relative workdir", ok(func(o *Options) { o.WorkDir = "pkg" }), ErrInvalidOptions},
		{"testdata not a dir", ok(func(o *Options) { o.TestdataDir = bin }), ErrInvalidOptions},
		{"testdata dir", ok(func(o *Options) { o.TestdataDir = dir }), nil},
		{"missing kernel", ok(func(o *Options) { o.Kernel = filepath.Join(dir, "vmlinux") }), ErrNoKernel},
		{"bad env", ok(func(o *Options) { o.Env = []string{"NOEQUALS"} }), ErrInvalidOptions},
		{"missing layer", ok(func(o *Options) { o.ExtraLayers = []string{filepath.Join(dir, "l.cpio")} }), ErrInvalidOptions},
		{"transport", ok(func(o *Options) { o.Transport = "virtio-serial" }), nil},
		{"bad transport", ok(func(o *Options) { o.Transport = "tcp" }), ErrInvalidOptions},
		{"shell over serial", ok(func(o *Options) { o.Transport = "virtio-serial"; o.Shell = true }), ErrInvalidOptions},
		{"negative stacks grace", ok(func(o *Options) { o.StacksGrace = -time.Second }), ErrInvalidOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	o := Options{TestBinary: "x", TestTimeout: time.Minute}.WithDefaults()
	if o.MemoryMiB != DefaultMemoryMiB || o.CPUs != DefaultCPUs || o.WorkDir != GuestDir || o.Hostname != DefaultHostname {
		t.Errorf("defaults: %+v", o)
	}
	if want := time.Minute + protocol.DefaultKillGrace + BootAllowance; o.Timeout != want {
		t.Errorf("Timeout = %v, want %v", o.Timeout, want)
	}
}

// elfHeader returns a minimal ELF header for class and machine.
func elfHeader(class byte, machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = class, 1, 1
	binary.LittleEndian.PutUint16(h[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine)
	binary.LittleEndian.PutUint32(h[20:], 1)
	if class == 2 {
		binary.LittleEndian.PutUint16(h[52:], 64) // ehsize
	} else {
		binary.LittleEndian.PutUint16(h[40:], 52)
	}
	return h
}

func TestArchOfELF(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want arch.Arch
		ok   bool
	}{
		{"x86_64", elfHeader(2, 62), arch.X86_64, true},
		{"aarch64", elfHeader(2, 183), arch.AArch64, true},
		{"riscv64", elfHeader(2, 243), "", false},
		{"i386", elfHeader(1, 3), "", false},
		{"not ELF", []byte("#!/bin/sh\necho hi\n"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, tc.data, 0o755)
			got, err := ArchOfELF(p)
			if got != tc.want || (err == nil) != tc.ok {
				t.Errorf("ArchOfELF = %q, %v; want %q ok=%v", got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrUnsupportedBinary) {
				t.Errorf("err %v does not wrap ErrUnsupportedBinary", err)
			}
		})
	}
	// The running test binary itself.
	self, _ := os.Executable()
	if got, err := ArchOfELF(self); err != nil || got != arch.Host() {
		t.Errorf("ArchOfELF(self) = %q, %v; want %q", got, err, arch.Host())
	}
}

func TestParseKernelRelease(t *testing.T) {
	bz := make([]byte, 0x4000)
	copy(bz[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(bz[0x20e:], 0x3000-0x200)
	copy(bz[0x3000:], "6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP\x00")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"bzImage header", bz, "6.1.0-56-cloud-amd64"},
		{"vmlinux string", []byte("junk\x00Linux version %s (%s)\x00more Linux version 6.1.192-rules-go-vm (root@h) #1 SMP\n"), "6.1.192-rules-go-vm"},
		{"nothing", []byte("no kernel here"), ""},
	} {
		if got := ParseKernelRelease(tc.data); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestFindKernel(t *testing.T) {
	dir := t.TempDir()
	mk := func(key, arch, file string, age time.Duration) string {
		d := filepath.Join(dir, key)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, file), []byte("k"), 0o644)
		m := filepath.Join(d, "manifest.json")
		os.WriteFile(m, []byte(fmt.Sprintf(`{"arch":%q,"kernel_release":"6.1-%s","files":{}}`, arch, key)), 0o644)
		tm := time.Now().Add(-age)
		os.Chtimes(m, tm, tm)
		return filepath.Join(d, file)
	}
	mk("old", "x86_64", "vmlinux", time.Hour)
	newX := mk("new", "x86_64", "vmlinux", time.Minute)
	arm := mk("arm", "aarch64", "Image", time.Hour)
	mk("incomplete", "aarch64", "bzImage", 0) // no Image: skipped
	if got, err := FindKernel(arch.X86_64, dir); err != nil || got != newX {
		t.Errorf("x86_64: %q, %v; want %q", got, err, newX)
	}
	if got, err := FindKernel(arch.AArch64, dir); err != nil || got != arm {
		t.Errorf("aarch64: %q, %v; want %q", got, err, arm)
	}
	if got := KernelRelease(newX); got != "6.1-new" {
		t.Errorf("KernelRelease = %q", got)
	}
	if _, err := FindKernel(arch.X86_64, t.TempDir()); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "kbuild") || !strings.Contains(err.Error(), "tools/setup") {
		t.Errorf("empty cache: %v", err)
	}
}

func TestTailLines(t *testing.T) {
	if got := TailLines("a\nb\nc\nd\n", 2); got != "c\nd" {
		t.Errorf("got %q", got)
	}
	if got := TailLines("a", 5); got != "a" {
		t.Errorf("got %q", got)
	}
}

func TestNewBaseLayer(t *testing.T) {
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	os.WriteFile(initBin, []byte("\x7fELF fake init"), 0o755)
	bb := filepath.Join(dir, "busybox")
	os.WriteFile(bb, []byte("\x7fELF fake busybox"), 0o755)
	l, err := NewBaseLayer(initBin, bb)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := l.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := initramfs.ReadArchivesBytes(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	files := initramfs.Flatten(recs)
	console, ok := files["dev/console"]
	if !ok || console.Mode&0o170000 != 0o020000 || console.Rmajor != 5 || console.Rminor != 1 {
		t.Errorf("dev/console: %+v, want char 5:1", console.Info)
	}
	if in, ok := files["init"]; !ok || in.Mode&0o777 != 0o755 {
		t.Errorf("init: %+v", in.Info)
	}
	if tmp, ok := files["tmp"]; !ok || tmp.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp: %+v", tmp.Info)
	}
	for _, d := range []string{"proc", "sys", "dev", "run"} {
		if _, ok := files[d]; !ok {
			t.Errorf("no %s", d)
		}
	}
	if b, ok := files["bin/busybox"]; !ok || b.Mode&0o777 != 0o755 {
		t.Errorf("bin/busybox: %+v", b.Info)
	}
	for _, a := range []string{"sh", "sleep", "true", "cat", "ip"} {
		l, ok := files["bin/"+a]
		if !ok || l.Mode&0o170000 != 0o120000 {
			t.Errorf("bin/%s: %+v, want a symlink", a, l.Info)
			continue
		}
		target, err := io.ReadAll(io.NewSectionReader(l.ReaderAt, 0, int64(l.FileSize)))
		if err != nil || string(target) != "busybox" {
			t.Errorf("bin/%s -> %q (%v), want busybox", a, target, err)
		}
	}
}

func TestResultTimings(t *testing.T) {
	v := &protocol.Verdict{Pass: true}
	v.Timings.Boot, v.Timings.Setup, v.Timings.Test, v.Timings.Teardown = 600*time.Millisecond, 80*time.Millisecond, 250*time.Millisecond, 15*time.Millisecond
	for _, tc := range []struct {
		name string
		res  Result
		want string
	}{
		{"verdict", Result{Verdict: v, Boot: 700400 * time.Microsecond, VM: 1100 * time.Millisecond, AfterVerdict: 55 * time.Millisecond, Total: 1200 * time.Millisecond},
			"host boot 700ms, VM 1.1s, after verdict 55ms, total 1.2s; guest kernel 600ms, setup 80ms, test 250ms, teardown 15ms; host overhead (total - guest clock) 255ms, outside the test (total - guest test) 950ms"},
		{"translations", Result{Verdict: v, Total: 1200 * time.Millisecond, Translations: 64739},
			"host boot 0s, VM 0s, after verdict 0s, total 1.2s; guest kernel 600ms, setup 80ms, test 250ms, teardown 15ms; host overhead (total - guest clock) 255ms, outside the test (total - guest test) 950ms; 64739 translation blocks at the verdict"},
		{"no verdict", Result{Boot: 0, VM: 3 * time.Second, Total: 3100 * time.Millisecond},
			"host boot 0s, VM 3s, after verdict 0s, total 3.1s; no verdict"},
	} {
		if got := tc.res.Timings(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
