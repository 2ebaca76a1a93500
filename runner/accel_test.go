package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
)

func TestChooseAccel(t *testing.T) {
	dir := t.TempDir()
	kvm := filepath.Join(dir, "kvm")
	os.WriteFile(kvm, nil, 0o600)
	qemuBin := filepath.Join(dir, "qemu")
	os.WriteFile(qemuBin, []byte("q"), 0o755)
	kernel := filepath.Join(dir, "vmlinux")
	os.WriteFile(kernel, []byte("k"), 0o644)
	calls := 0
	probe := func(canaryErr error) AccelProbe {
		return AccelProbe{Arch: arch.X86_64, HostArch: arch.X86_64, QEMU: qemuBin, Kernel: kernel,
			CacheDir: filepath.Join(dir, "cache"), KVMDevice: kvm,
			Canary: func(context.Context, AccelProbe) error { calls++; return canaryErr }}
	}
	ctx := context.Background()

	// Cross-arch and no device: TCG without a canary.
	p := probe(nil)
	p.HostArch = arch.AArch64
	if c := ChooseAccel(ctx, p); c.Accel != qemu.AccelTCG || calls != 0 {
		t.Errorf("cross-arch: %+v, %d canaries", c, calls)
	}
	p = probe(nil)
	p.KVMDevice = filepath.Join(dir, "nokvm")
	if c := ChooseAccel(ctx, p); c.Accel != qemu.AccelTCG || calls != 0 || !strings.Contains(c.Reason, "nokvm") {
		t.Errorf("no device: %+v, %d canaries", c, calls)
	}

	// Canary fails: TCG, cached; the second call does not boot again.
	if c := ChooseAccel(ctx, probe(errors.New("KVM internal error"))); c.Accel != qemu.AccelTCG || c.Cached || !strings.Contains(c.Reason, "KVM internal error") {
		t.Errorf("failed canary: %+v", c)
	}
	if c := ChooseAccel(ctx, probe(nil)); c.Accel != qemu.AccelTCG || !c.Cached || calls != 1 {
		t.Errorf("cached: %+v, %d canaries", c, calls)
	}

	// Another kernel is another key: the canary runs, and succeeds.
	os.WriteFile(kernel, []byte("another kernel"), 0o644)
	if c := ChooseAccel(ctx, probe(nil)); c.Accel != qemu.AccelKVM || calls != 2 {
		t.Errorf("new kernel: %+v, %d canaries", c, calls)
	}
}

// TestAccelKeyByKernelContent: the same kernel image at another path (a new
// Bazel output base, a sandbox) keeps the cached verdict; another image
// does not.
func TestAccelKeyByKernelContent(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	img := bytes.Repeat([]byte("kernel"), 1<<19) // 3 MiB: head and tail differ from the middle
	a := write("vmlinux-a", img)
	b := write("vmlinux-b", img)
	other := append(bytes.Clone(img), 'x')
	c := write("vmlinux-c", other)
	key := func(k string) string { return accelKey(AccelProbe{QEMU: "/nonexistent/qemu", Kernel: k}) }
	if key(a) != key(b) {
		t.Error("the same kernel image at two paths has two cache keys")
	}
	if key(a) == key(c) {
		t.Error("different kernel images share a cache key")
	}
}

func TestKernelContentKeyMemo(t *testing.T) {
	dir, memo := t.TempDir(), t.TempDir()
	k := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(k, bytes.Repeat([]byte("A"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(k, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	first := memoContentKey(memo, k)
	if first != contentKey(k) {
		t.Fatalf("memoised key %q differs from the content key %q", first, contentKey(k))
	}
	// Same path, size and mtime: the memo answers without hashing (the
	// content changed behind its back, the answer did not).
	if err := os.WriteFile(k, bytes.Repeat([]byte("B"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(k, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if got := memoContentKey(memo, k); got != first {
		t.Errorf("same identity, got a new key %q: the memo was not used", got)
	}
	// A new mtime (a rebuilt kernel) is a new identity: hashed again.
	later := mtime.Add(time.Second)
	if err := os.Chtimes(k, later, later); err != nil {
		t.Fatal(err)
	}
	if got := memoContentKey(memo, k); got == first || got != contentKey(k) {
		t.Errorf("after a new mtime: key %q, want the new content's %q", got, contentKey(k))
	}
	// No memo directory: plain hashing.
	if got := memoContentKey("", k); got != contentKey(k) {
		t.Errorf("without a memo dir: %q, want %q", got, contentKey(k))
	}
}

func TestMachineName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		worker, want string
	}{
		{"", "host " + host},
		{"kvm-pool-3", "worker kvm-pool-3 (host " + host + ")"},
	} {
		t.Setenv(WorkerEnv, tc.worker)
		if got := MachineName(); got != tc.want {
			t.Errorf("MachineName() with $%s=%q = %q, want %q", WorkerEnv, tc.worker, got, tc.want)
		}
	}
}

func TestNoKVMIsInfrastructure(t *testing.T) {
	err := fmt.Errorf("%w: accel = \"kvm\", but KVM does not work on %s: no usable /dev/kvm", ErrNoKVM, MachineName())
	if got := ExitCode(Result{}, err); got != ExitNoQEMU {
		t.Errorf("ExitCode(%v) = %d, want %d (ExitNoQEMU)", err, got, ExitNoQEMU)
	}
	if !IsInfrastructure(Result{}, err) {
		t.Errorf("IsInfrastructure(%v) = false, want true", err)
	}
}
