// Package invm is what a Go test that must run inside a rules_go_vm guest
// imports.
//
//	func TestMain(m *testing.M) { invm.Main(m) }
//
//	func TestRing(t *testing.T) {
//		invm.Require(t) // fails (never skips) outside a guest
//		...
//	}
//
// With Main, a plain `go test ./pkg/` on the host boots the test binary in a
// guest (the same as `go test -exec invm ./pkg/`, with the same $INVM_*
// settings), so guest tests also run from `go test ./...`. Inside a guest
// (under invm, or a go_vm_test target in Bazel) Main just runs the tests.
//
// A test of the VM's shape finds its NICs by their fixed PCI addresses
// (NICs, NICByPCI: interface name, bound driver, MAC) and its hugetlbfs
// mounts (Hugepages, HugepageMount). BindVFIO hands a NIC to vfio-pci for a
// user-space driver such as DPDK (VFIOStatus, VFIONICs: those the guest
// init bound before the test, go_vm_test vfio_nics).
package invm

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// EnvMarker is the variable the guest init sets to "1" for the test (the
// same as guestinit.EnvMarker; this package does not import the init, so a
// guest test binary stays free of its dependencies, and of cgo).
const EnvMarker = "IN_VM"

// InGuest reports whether the process runs inside a rules_go_vm guest.
func InGuest() bool { return os.Getenv(EnvMarker) == "1" }

// Require fails the test unless it runs inside a guest. It never skips: a
// guest test that silently did not run would count as a pass.
func Require(t testing.TB) {
	t.Helper()
	if !InGuest() {
		t.Fatalf("%s is not set: this test must run inside a rules_go_vm guest; "+
			"use invm.Main in TestMain, `go test -exec invm`, or a go_vm_test target", EnvMarker)
	}
}

// Main runs the tests: directly inside a guest; on the host, by replacing
// this process with the invm command ($INVM_BIN, else `invm` on PATH)
// running this test binary in a guest. Without invm it fails, saying how to
// install it. (It execs invm rather than linking the runner in, so guest
// test binaries stay small and free of cgo.)
func Main(m *testing.M) {
	if InGuest() {
		os.Exit(m.Run())
	}
	fail := func(msg string) {
		os.Stderr.WriteString("invm: " + msg + "\n")
		os.Exit(1)
	}
	exe, err := os.Executable()
	if err != nil {
		fail("cannot find the test binary: " + err.Error())
	}
	bin := os.Getenv("INVM_BIN")
	if bin == "" {
		if bin, err = exec.LookPath("invm"); err != nil {
			fail("this test runs in a guest, and the invm command is not on PATH: " +
				"go install github.com/rules-go-vm/rules_go_vm/runner/cmd/invm@latest (or set $INVM_BIN)")
		}
	}
	args := append([]string{"invm", "--", exe}, hostOnlyArgsRemoved(os.Args[1:])...)
	fail("exec " + bin + ": " + syscall.Exec(bin, args, os.Environ()).Error())
}

// hostOnlyArgsRemoved drops the flags `go test` adds that name host paths the
// guest cannot reach: -test.testlogfile (go test's cache log; without it the
// result is just not cached) and -test.gocoverdir.
func hostOnlyArgsRemoved(args []string) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "test.testlogfile" || name == "test.gocoverdir" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// EnvOutputsDir is the variable naming the directory for the test's
// undeclared outputs: the guest init sets it to /invm/outputs and ships
// the files written there to the host after the test (invm -outputs-dir,
// or Bazel's TEST_UNDECLARED_OUTPUTS_DIR, i.e. outputs.zip, for go_vm_test).
const EnvOutputsDir = "TEST_UNDECLARED_OUTPUTS_DIR"

// OutputsDir returns the directory where the test may write files to get
// them back on the host ($TEST_UNDECLARED_OUTPUTS_DIR), or "" when unset.
func OutputsDir() string { return os.Getenv(EnvOutputsDir) }
