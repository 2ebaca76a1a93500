package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestShortPath(t *testing.T) {
	links := t.TempDir()
	// A dangling link of a SIGKILLed launcher, a live one, and a file.
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Symlink(gone, filepath.Join(links, "vmtest-dead")); err != nil {
		t.Fatal(err)
	}
	live := t.TempDir()
	if err := os.Symlink(live, filepath.Join(links, "vmtest-live")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(links, "vmtest-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(t.TempDir(), strings.Repeat("deep/", 15), "state")
	short, cleanup, err := ShortPath(deep, links, "vmtest-")
	if err != nil {
		t.Fatal(err)
	}
	if dst, err := os.Readlink(short); err != nil || dst != deep || filepath.Dir(short) != links {
		t.Errorf("short path %s -> %q (%v), want a link in %s to %s", short, dst, err, links, deep)
	}
	cleanup()
	left, _ := filepath.Glob(filepath.Join(links, "vmtest-*"))
	want := []string{filepath.Join(links, "vmtest-file"), filepath.Join(links, "vmtest-live")}
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q (dangling and own link removed, others kept)", left, want)
	}
	// A short directory is used as it is.
	if p, cleanup, err := ShortPath(live, links, "vmtest-"); err != nil || p != live {
		t.Errorf("short dir: %q, %v", p, err)
	} else {
		cleanup()
	}
}
