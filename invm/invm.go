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
package invm

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/guestinit"
	"github.com/rules-go-vm/rules_go_vm/runner/invmcli"
)

// InGuest reports whether the process runs inside a rules_go_vm guest: the
// guest init sets guestinit.EnvMarker for the test.
func InGuest() bool { return os.Getenv(guestinit.EnvMarker) == "1" }

// Require fails the test unless it runs inside a guest. It never skips: a
// guest test that silently did not run would count as a pass.
func Require(t testing.TB) {
	t.Helper()
	if !InGuest() {
		t.Fatalf("%s is not set: this test must run inside a rules_go_vm guest; "+
			"use invm.Main in TestMain, `go test -exec invm`, or a go_vm_test target", guestinit.EnvMarker)
	}
}

// Main runs the tests: directly inside a guest; on the host, by booting this
// test binary in a guest with the invm runner and exiting with its exit code.
func Main(m *testing.M) {
	if InGuest() {
		os.Exit(m.Run())
	}
	exe, err := os.Executable()
	if err != nil {
		os.Stderr.WriteString("invm: cannot find the test binary: " + err.Error() + "\n")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := invmcli.Run(ctx, append([]string{"--", exe}, os.Args[1:]...), os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
