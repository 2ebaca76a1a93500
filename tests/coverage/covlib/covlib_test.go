package covlib

import (
	"os"
	"strconv"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

// TestKind covers some of Kind's cases and leaves the others (hugetlbfs,
// fuse.*) unrun: a coverage report shows both.
func TestKind(t *testing.T) {
	t.Logf("in a guest: %v", invm.InGuest())
	for _, tc := range []struct{ fstype, want string }{
		{"proc", "kernel"},
		{"tmpfs", "memory"},
		{"ext4", "other"},
	} {
		if got := Kind(tc.fstype); got != tc.want {
			t.Errorf("Kind(%q) = %q, want %q", tc.fstype, got, tc.want)
		}
	}
}

// TestParseMounts parses a fixed text, the same on the host and in the
// guest, so that both report the same coverage.
func TestParseMounts(t *testing.T) {
	got := ParseMounts("proc /proc proc rw 0 0\n\nnone /dev/hugepages hugetlbfs rw 0 0\n")
	if len(got) != 2 || got[1] != (Mount{"none", "/dev/hugepages", "hugetlbfs"}) {
		t.Errorf("ParseMounts = %+v", got)
	}
}

// TestExitMidway exits the test binary with COVLIB_EXIT's code in the middle
// of a test (a crashing test): Go's runtime still writes the coverage
// counters to $GOCOVERDIR on the way out, and invm brings them back
// (tests/invm's TestGoTestExecCoverage). Skipped unless COVLIB_EXIT is set.
func TestExitMidway(t *testing.T) {
	code, err := strconv.Atoi(os.Getenv("COVLIB_EXIT"))
	if err != nil {
		t.Skip("COVLIB_EXIT is not a number: not exiting mid-test")
	}
	if Kind("fuse.sshfs") != "user" {
		t.Error("Kind(fuse.sshfs)")
	}
	os.Exit(code)
}
