package arch

import (
	"runtime"
	"testing"
)

func TestGOARCH(t *testing.T) {
	for _, a := range All() {
		if a.GOARCH() == "" || FromGOARCH(a.GOARCH()) != a {
			t.Errorf("%s: GOARCH %q, back %q", a, a.GOARCH(), FromGOARCH(a.GOARCH()))
		}
	}
	if X86_64.GOARCH() != "amd64" || AArch64.GOARCH() != "arm64" {
		t.Errorf("GOARCH: %s, %s", X86_64.GOARCH(), AArch64.GOARCH())
	}
	if Arch("mips").GOARCH() != "" || FromGOARCH("riscv64") != "" {
		t.Error("an unsupported arch has a name")
	}
	if h := Host(); h != "" && h.GOARCH() != runtime.GOARCH {
		t.Errorf("Host() = %s on %s", h, runtime.GOARCH)
	}
}
