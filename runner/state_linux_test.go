package runner

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, lock bool) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(p, stateLock), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	dead := mk(StatePrefix+"dead", true)      // lock file, nobody holds it
	nolock := mk(StatePrefix+"nolock", false) // no lock file: not known to be ours
	other := mk("other-dead", true)           // not a runner's directory
	live, release, err := newStateDir(dir)    // held by this process
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	// Within the grace, nothing goes.
	if removed, err := CleanStale(dir, time.Now()); err != nil || len(removed) != 0 {
		t.Fatalf("CleanStale within the grace removed %v (err %v), want nothing", removed, err)
	}
	removed, err := CleanStale(dir, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{dead}) {
		t.Errorf("removed %v, want only %s", removed, dead)
	}
	for _, p := range []string{nolock, other, live} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	release()
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("release left %s behind (%v)", live, err)
	}
}
