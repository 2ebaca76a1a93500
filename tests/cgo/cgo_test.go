package cgo

import (
	"debug/elf"
	"os"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestMain(m *testing.M) { invm.Main(m) }

// TestCallsLibc runs in the guest: the binary started through its ELF
// interpreter, and libc answers.
func TestCallsLibc(t *testing.T) {
	invm.Require(t)
	if got, want := Getpid(), os.Getpid(); got != want {
		t.Errorf("getpid through libc = %d, os.Getpid = %d", got, want)
	}
	if v := LibcVersion(); !strings.HasPrefix(v, "2.") {
		t.Errorf("gnu_get_libc_version = %q", v)
	}
	t.Logf("libc %s", LibcVersion())
}

// TestIsDynamic keeps this test honest: the binary really is dynamically
// linked (a static one would pass TestCallsLibc without a loader).
func TestIsDynamic(t *testing.T) {
	invm.Require(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return
		}
	}
	t.Fatalf("%s has no ELF interpreter: it is static, so this test proves nothing about the dynamic path", exe)
}
