package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
)

// AccelChoice is the accelerator chosen for a (host, QEMU, kernel) and why.
type AccelChoice struct {
	// Accel is qemu.AccelKVM or qemu.AccelTCG.
	Accel string `json:"accel"`
	// Reason explains the choice in one line.
	Reason string `json:"reason"`
	// Cached is true when the choice came from the cache.
	Cached bool `json:"-"`
}

// AccelProbe is what ChooseAccel needs; the fields with functions are
// injected for tests.
type AccelProbe struct {
	// Arch is the guest architecture.
	Arch arch.Arch
	// QEMU is the QEMU binary; Kernel the guest kernel.
	QEMU, Kernel string
	// CacheDir holds the cached choices (<cache>/accel).
	CacheDir string
	// KVMDevice is /dev/kvm.
	KVMDevice string
	// HostArch is the host's architecture (arch.Host).
	HostArch arch.Arch
	// Canary boots the kernel under KVM and reports whether it got far
	// enough; nil means CanaryBoot.
	Canary func(ctx context.Context, p AccelProbe) error
}

// WorkerEnv names the machine in MachineName when set: a remote-execution
// worker's name (Buildbarn: the runner's environmentVariables), so that an
// infrastructure failure says which worker it happened on.
const WorkerEnv = "RULES_GO_VM_WORKER"

// MachineName says which machine this is: "worker W (host H)" on a worker
// that sets $RULES_GO_VM_WORKER, else "host H".
func MachineName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown (" + err.Error() + ")"
	}
	if w := os.Getenv(WorkerEnv); w != "" {
		return fmt.Sprintf("worker %s (host %s)", w, host)
	}
	return "host " + host
}

// ChooseAccel returns KVM only when a canary boot of p.Kernel under KVM
// with p.QEMU worked on this host; the answer is cached in p.CacheDir per
// (host name, host kernel, QEMU binary, kernel). Cross-arch guests and
// hosts without a usable KVM device get TCG without a canary.
func ChooseAccel(ctx context.Context, p AccelProbe) AccelChoice {
	if p.HostArch != p.Arch {
		return AccelChoice{Accel: qemu.AccelTCG, Reason: fmt.Sprintf("guest %s on host %s", p.Arch, p.HostArch)}
	}
	f, err := os.OpenFile(p.KVMDevice, os.O_RDWR, 0)
	if err != nil {
		return AccelChoice{Accel: qemu.AccelTCG, Reason: fmt.Sprintf("no usable %s: %v", p.KVMDevice, err)}
	}
	f.Close()
	key := accelKey(p)
	file := filepath.Join(p.CacheDir, key+".json")
	if b, err := os.ReadFile(file); err == nil {
		var c AccelChoice
		if json.Unmarshal(b, &c) == nil && (c.Accel == qemu.AccelKVM || c.Accel == qemu.AccelTCG) {
			c.Cached = true
			return c
		}
	}
	canary := p.Canary
	if canary == nil {
		canary = CanaryBoot
	}
	c := AccelChoice{Accel: qemu.AccelKVM, Reason: "KVM canary boot succeeded"}
	if err := canary(ctx, p); err != nil {
		c = AccelChoice{Accel: qemu.AccelTCG, Reason: "KVM canary boot failed: " + err.Error()}
	}
	if b, err := json.Marshal(c); err == nil {
		writeCacheFile(file, b)
	}
	return c
}

// writeCacheFile writes a cache entry atomically (atomicfile), creating
// its directory; a cache that cannot be written is not an error, the
// answer is just computed again next time.
func writeCacheFile(file string, b []byte) {
	if os.MkdirAll(filepath.Dir(file), 0o755) != nil {
		return
	}
	_ = atomicfile.WriteFile(file, b, 0o644)
}

func accelKey(p AccelProbe) string {
	h := sha256.New()
	host, _ := os.Hostname()
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(h, "host=%s\nrelease=%s\n", host, bytes.TrimSpace(rel))
	// QEMU by its real path and stat (an installed binary).
	q := p.QEMU
	if real, err := filepath.EvalSymlinks(q); err == nil {
		q = real
	}
	if fi, err := os.Stat(q); err == nil {
		fmt.Fprintf(h, "%s %d %d\n", q, fi.Size(), fi.ModTime().UnixNano())
	} else {
		fmt.Fprintf(h, "%s missing\n", q)
	}
	// The kernel by content, not path: Bazel reaches the same image through
	// per-run sandbox paths and a new output base per checkout, and the
	// verdict must not be re-probed (10 s) for each.
	fmt.Fprintf(h, "kernel %s\n", memoContentKey(p.CacheDir, p.Kernel))
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// memoContentKey is contentKey(path), remembered in dir under the file's
// identity (real path, size, modification time): hashing costs ~3 ms on
// every run, a stat and a small read do not. Without dir it just hashes.
func memoContentKey(dir, path string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil || dir == "" {
		return contentKey(path)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return contentKey(path)
	}
	id := sha256.Sum256(fmt.Appendf(nil, "%s\n%d %d", real, fi.Size(), fi.ModTime().UnixNano()))
	memo := filepath.Join(dir, "kernel-"+hex.EncodeToString(id[:12]))
	if b, err := os.ReadFile(memo); err == nil && len(b) > 0 {
		return string(b)
	}
	key := contentKey(path)
	writeCacheFile(memo, []byte(key))
	return key
}

// contentKey identifies a file by its size and the SHA-256 of its first and
// last MiB (a kernel image differs there when its build differs), cheaply.
func contentKey(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "missing " + path
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "unreadable " + path
	}
	h := sha256.New()
	const chunk = 1 << 20
	_, _ = io.Copy(h, io.NewSectionReader(f, 0, chunk))
	if fi.Size() > chunk {
		_, _ = io.Copy(h, io.NewSectionReader(f, max(chunk, fi.Size()-chunk), chunk))
	}
	return fmt.Sprintf("%d %x", fi.Size(), h.Sum(nil))
}

// CanaryTimeout bounds a KVM canary boot.
const CanaryTimeout = 10 * time.Second

// CanaryBoot boots p.Kernel under KVM without an initramfs: a working KVM
// gets the kernel to "VFS: Unable to mount root" and a panic (QEMU then
// exits, -no-reboot). Anything else (QEMU aborting, a KVM internal error,
// a hang) is an error.
func CanaryBoot(ctx context.Context, p AccelProbe) error {
	ctx, cancel := context.WithTimeout(ctx, CanaryTimeout)
	defer cancel()
	args, err := qemu.Args(qemu.Spec{Arch: p.Arch, Accel: qemu.AccelKVM, Kernel: p.Kernel, MemoryMiB: 128, CPUs: 1})
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.Command(p.QEMU, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	pr, err := proc.Start(cmd)
	if err != nil {
		return err
	}
	select {
	case <-pr.Done():
	case <-ctx.Done():
		pr.Kill()
		return fmt.Errorf("no result after %v", CanaryTimeout)
	}
	if s := out.String(); strings.Contains(s, "Unable to mount root") || strings.Contains(s, "No working init found") {
		return nil
	}
	return fmt.Errorf("QEMU exited (%v) without reaching the root mount: %s", pr.Err(), lastLine(out.String()))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
