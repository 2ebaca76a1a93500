package invm

import (
	"slices"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/guestinit"
)

func TestEnvMarkerMatchesInit(t *testing.T) {
	if EnvMarker != guestinit.EnvMarker {
		t.Fatalf("invm.EnvMarker %q != guestinit.EnvMarker %q", EnvMarker, guestinit.EnvMarker)
	}
}

func TestInGuest(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want bool
	}{{"1", true}, {"", false}, {"0", false}, {"yes", false}} {
		t.Setenv(guestinit.EnvMarker, tc.val)
		if got := InGuest(); got != tc.want {
			t.Errorf("%s=%q: InGuest() = %v, want %v", guestinit.EnvMarker, tc.val, got, tc.want)
		}
	}
}

func TestHostOnlyArgsRemoved(t *testing.T) {
	in := []string{"-test.paniconexit0", "-test.testlogfile=/tmp/go-build1/b1/testlog.txt", "-test.timeout=10m0s", "-test.gocoverdir=/tmp/c", "-test.v=true"}
	want := []string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true"}
	if got := hostOnlyArgsRemoved(in); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
