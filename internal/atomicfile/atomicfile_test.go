package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// only fails unless dir holds exactly the names want.
func only(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := entries(t, dir)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	// 0644 before the umask: never more, always the owner's rw.
	if fi, _ := os.Stat(p); fi.Mode().Perm()&^0o644 != 0 || fi.Mode().Perm()&0o600 != 0o600 {
		t.Errorf("mode %v, want 0644 less the umask", fi.Mode())
	}
	only(t, dir, "f.json")
}

func TestCreateCommit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.cpio")
	f, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if !strings.HasPrefix(filepath.Base(f.Name()), ".out.cpio.tmp") || filepath.Dir(f.Name()) != dir {
		t.Errorf("temporary file %s", f.Name())
	}
	if _, err := io.Copy(f, strings.NewReader("streamed")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target exists before Commit: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // a no-op now
	if b, _ := os.ReadFile(p); string(b) != "streamed" {
		t.Errorf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	if err := f.Commit(); err == nil {
		t.Error("a second Commit: no error")
	}
	only(t, dir, "out.cpio")
}

// TestErrorsLeaveNoTemporaryFile: every failure path removes the temporary
// file and leaves the target as it was.
func TestErrorsLeaveNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("old"), 0o644)
	boom := errors.New("boom")

	if err := Write(p, 0o644, func(w io.Writer) error { io.WriteString(w, "part"); return boom }); !errors.Is(err, boom) {
		t.Errorf("Write with a failing fill = %v", err)
	}
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "part")
	f.Abort()
	if err := Produce(p, 0o755, func(tmp string) error { os.WriteFile(tmp, []byte("part"), 0o755); return boom }); !errors.Is(err, boom) {
		t.Errorf("Produce with a failing producer = %v", err)
	}
	if err := Produce(p, 0o755, func(tmp string) error { return os.Remove(tmp) }); err == nil {
		t.Error("Produce whose producer removed the file: no error")
	}
	only(t, dir, "f")
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("target changed to %q", b)
	}

	// The rename fails: the target is a non-empty directory.
	d := filepath.Join(dir, "d")
	os.MkdirAll(filepath.Join(d, "x"), 0o755)
	if err := WriteFile(d, []byte("x"), 0o644); err == nil {
		t.Error("WriteFile over a directory: no error")
	}
	only(t, dir, "d", "f")

	// No directory: nothing to clean up, an error.
	if err := WriteFile(filepath.Join(dir, "none", "f"), []byte("x"), 0o644); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory = %v", err)
	}
}

func TestProduce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "init")
	err := Produce(p, 0o755, func(tmp string) error {
		if fi, err := os.Stat(tmp); err != nil || fi.Size() != 0 {
			t.Errorf("temporary file %s: %v, %v", tmp, fi, err)
		}
		// Like go build: replace it with a new file.
		if err := os.Remove(tmp); err != nil {
			return err
		}
		return os.WriteFile(tmp, []byte("\x7fELF"), 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "\x7fELF" {
		t.Errorf("content %q", b)
	}
	only(t, dir, "init")
}
