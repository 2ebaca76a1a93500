// Package hello is the first guest test: it passes only inside a rules_go_vm
// guest, and proves it is there. Run it with
//
//	go test -exec invm ./tests/hello/...
//	GOARCH=arm64 go test -exec invm ./tests/hello/...
//
// A plain `go test ./tests/hello/` boots it in a guest too (invm.Main); a
// test function run outside a guest fails (invm.Require): it never skips.
package hello

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

// TestMain boots this test binary in a guest when it runs on the host, so
// `go test ./tests/hello/` works as well as `go test -exec invm`.
func TestMain(m *testing.M) { invm.Main(m) }

func TestPID1IsOurInit(t *testing.T) {
	invm.Require(t)
	cmdline, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	if string(argv0) != "/init" {
		t.Errorf("PID 1 is %q, want /init", argv0)
	}
	if _, err := os.Stat("/invm/config.json"); err != nil {
		t.Errorf("no guest config: %v", err)
	}
	if ppid := os.Getppid(); ppid != 1 {
		t.Errorf("parent PID %d, want 1 (init runs the test)", ppid)
	}
	if os.Getpid() == 1 {
		t.Error("the test itself is PID 1")
	}
}

func TestKernelIsOurs(t *testing.T) {
	invm.Require(t)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	machine := unix.ByteSliceToString(u.Machine[:])
	t.Logf("guest kernel %s %s, GOARCH %s", release, machine, runtime.GOARCH)
	want := os.Getenv("INVM_KERNEL_RELEASE")
	if want == "" {
		t.Error("INVM_KERNEL_RELEASE is not set: the runner could not read the booted kernel's release")
	} else if release != want {
		t.Errorf("kernel release %q, want the booted image's %q", release, want)
	}
	if host := os.Getenv("INVM_HOST_KERNEL_RELEASE"); host == "" || host == release {
		t.Errorf("kernel release %q vs host %q: want a different, known host release", release, host)
	}
	if want := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]; machine != want {
		t.Errorf("uname machine %q, want %q for GOARCH %s", machine, want, runtime.GOARCH)
	}
}

func TestNotTheHost(t *testing.T) {
	invm.Require(t)
	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if host := os.Getenv("INVM_HOST_HOSTNAME"); host == "" || name == host {
		t.Errorf("hostname %q vs host %q: want a different, known host name", name, host)
	}
	bootID, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	if host := os.Getenv("INVM_HOST_BOOT_ID"); host == "" || strings.TrimSpace(string(bootID)) == host {
		t.Errorf("boot_id %q vs host %q: want a different, known host boot", bytes.TrimSpace(bootID), host)
	}
	// The whole root is the initramfs: the test binary sits under /invm
	// (/invm/pkg with invm, /invm/runfiles/... with go_vm_test).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(exe, "/invm/") {
		t.Errorf("test binary at %s, want it under /invm", exe)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		t.Errorf("root filesystem type %#x, want the initramfs (ramfs or tmpfs)", st.Type)
	}
}

func TestTestdataIsThere(t *testing.T) {
	invm.Require(t)
	b, err := os.ReadFile("testdata/greeting.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "hello from the host" {
		t.Errorf("testdata/greeting.txt = %q", got)
	}
}
