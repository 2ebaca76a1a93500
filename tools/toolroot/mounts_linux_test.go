package toolroot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRemoveRealBindMount does what tools/setup --remove does, on a real bind
// mount: the directory shown inside the root must survive the removal. It
// needs CAP_SYS_ADMIN (tools/bazel runs as root; a Bazel sandbox may not allow
// mounting), and the fake-mount tests above cover the logic everywhere else.
func TestRemoveRealBindMount(t *testing.T) {
	precious := t.TempDir()
	keep := filepath.Join(precious, "keep.txt")
	if err := os.WriteFile(keep, []byte("do not delete"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRoot(t, true)
	target := filepath.Join(root, "work")
	if err := unix.Mount(precious, target, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here (%v); covered by the fake-mount tests", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })

	if err := (Remover{}).Remove(root); !errors.Is(err, ErrLiveMounts) {
		t.Fatalf("Remove without Unmount: got %v, want ErrLiveMounts", err)
	}
	if err := (Remover{Unmount: func(p string) error { return unix.Unmount(p, 0) }}).Remove(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root not removed: %v", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "do not delete" {
		t.Fatalf("the bind-mounted directory was damaged: %q, %v", b, err)
	}
}
