package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// op adds one entry to a layer.
type op func(*Layer) error

func build(t *testing.T, ops []op) []byte {
	t.Helper()
	l := NewLayer()
	for i, o := range ops {
		if err := o(l); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	var buf bytes.Buffer
	n, err := l.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

func sampleOps(t *testing.T) []op {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("\x7fELF fake binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []op{
		func(l *Layer) error { return l.AddFile("init", bin, 0o755) },
		func(l *Layer) error { return l.AddBytes("etc/rules_go_vm/config.json", []byte(`{"test":"/t"}`), 0o644) },
		func(l *Layer) error { return l.AddDir("tmp", 0o777|fs.ModeSticky) },
		func(l *Layer) error { return l.AddSymlink("bin/sh", "/init") },
		func(l *Layer) error { return l.AddCharDev("dev/console", 0o600, 5, 1) },
		func(l *Layer) error { return l.AddBytes("a-b", []byte("x"), 0o644) },
		func(l *Layer) error { return l.AddBytes("a/b/c", nil, 0o400) },
	}
}

func TestDeterministic(t *testing.T) {
	ops := sampleOps(t)
	first := build(t, ops)
	if again := build(t, ops); !bytes.Equal(first, again) {
		t.Error("same input written twice differs")
	}
	rev := make([]op, len(ops))
	for i := range ops {
		rev[len(ops)-1-i] = ops[i]
	}
	if reversed := build(t, rev); !bytes.Equal(first, reversed) {
		t.Error("different insertion order gives different bytes")
	}
	if len(first)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(first))
	}
}

func TestRoundTrip(t *testing.T) {
	img := build(t, sampleOps(t))

	// u-root's reader, single archive.
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(img)))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		name    string
		mode    uint64
		content string
		rmajor  uint64
		rminor  uint64
	}
	wants := []want{
		{name: "a", mode: cpio.S_IFDIR | 0o755},
		{name: "a-b", mode: cpio.S_IFREG | 0o644, content: "x"},
		{name: "a/b", mode: cpio.S_IFDIR | 0o755},
		{name: "a/b/c", mode: cpio.S_IFREG | 0o400},
		{name: "bin", mode: cpio.S_IFDIR | 0o755},
		{name: "bin/sh", mode: cpio.S_IFLNK | 0o777, content: "/init"},
		{name: "dev", mode: cpio.S_IFDIR | 0o755},
		{name: "dev/console", mode: cpio.S_IFCHR | 0o600, rmajor: 5, rminor: 1},
		{name: "etc", mode: cpio.S_IFDIR | 0o755},
		{name: "etc/rules_go_vm", mode: cpio.S_IFDIR | 0o755},
		{name: "etc/rules_go_vm/config.json", mode: cpio.S_IFREG | 0o644, content: `{"test":"/t"}`},
		{name: "init", mode: cpio.S_IFREG | 0o755, content: "\x7fELF fake binary"},
		{name: "tmp", mode: cpio.S_IFDIR | cpio.S_ISVTX | 0o777},
	}
	if len(recs) != len(wants) {
		var names []string
		for _, r := range recs {
			names = append(names, r.Name)
		}
		t.Fatalf("got %d records %q, want %d", len(recs), names, len(wants))
	}
	for i, w := range wants {
		r := recs[i]
		if r.Name != w.name || r.Mode != w.mode || r.Rmajor != w.rmajor || r.Rminor != w.rminor {
			t.Errorf("record %d = %s mode %o dev %d,%d; want %s mode %o dev %d,%d", i, r.Name, r.Mode, r.Rmajor, r.Rminor, w.name, w.mode, w.rmajor, w.rminor)
		}
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 || r.Major != 0 || r.Minor != 0 {
			t.Errorf("%s: not reproducible: %+v", r.Name, r.Info)
		}
		if r.Ino != uint64(i+1) {
			t.Errorf("%s: inode %d, want %d", r.Name, r.Ino, i+1)
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != w.content {
			t.Errorf("%s: content %q, want %q", r.Name, got, w.content)
		}
	}
}

func TestGNUCpioReads(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio not installed")
	}
	img := build(t, sampleOps(t))
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(img)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	got := strings.Fields(string(out))
	want := []string{"a", "a-b", "a/b", "a/b/c", "bin", "bin/sh", "dev", "dev/console", "etc", "etc/rules_go_vm", "etc/rules_go_vm/config.json", "init", "tmp"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cpio -t = %q, want %q", got, want)
	}
}

func TestAddErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", MaxPathLen+1)
	tests := []struct {
		name string
		ops  []op
		want error
	}{
		{"empty", []op{func(l *Layer) error { return l.AddBytes("", nil, 0o644) }}, ErrBadPath},
		{"absolute", []op{func(l *Layer) error { return l.AddBytes("/init", nil, 0o644) }}, ErrBadPath},
		{"dotdot", []op{func(l *Layer) error { return l.AddBytes("a/../../b", nil, 0o644) }}, ErrBadPath},
		{"dotdot only", []op{func(l *Layer) error { return l.AddDir("..", 0o755) }}, ErrBadPath},
		{"dot", []op{func(l *Layer) error { return l.AddDir(".", 0o755) }}, ErrBadPath},
		{"dot prefix", []op{func(l *Layer) error { return l.AddBytes("./a", nil, 0o644) }}, ErrBadPath},
		{"double slash", []op{func(l *Layer) error { return l.AddBytes("a//b", nil, 0o644) }}, ErrBadPath},
		{"trailing slash", []op{func(l *Layer) error { return l.AddDir("a/", 0o755) }}, ErrBadPath},
		{"nul", []op{func(l *Layer) error { return l.AddBytes("a\x00b", nil, 0o644) }}, ErrBadPath},
		{"too long", []op{func(l *Layer) error { return l.AddBytes(long, nil, 0o644) }}, ErrBadPath},
		{"empty symlink target", []op{func(l *Layer) error { return l.AddSymlink("a", "") }}, ErrBadPath},
		{"duplicate file", []op{
			func(l *Layer) error { return l.AddBytes("a", nil, 0o644) },
			func(l *Layer) error { return l.AddFile("a", file, 0o644) },
		}, ErrDuplicate},
		{"duplicate explicit dir", []op{
			func(l *Layer) error { return l.AddDir("d", 0o755) },
			func(l *Layer) error { return l.AddDir("d", 0o700) },
		}, ErrDuplicate},
		{"file over implicit dir", []op{
			func(l *Layer) error { return l.AddBytes("d/x", nil, 0o644) },
			func(l *Layer) error { return l.AddBytes("d", nil, 0o644) },
		}, ErrDuplicate},
		{"parent is a file", []op{
			func(l *Layer) error { return l.AddBytes("f", nil, 0o644) },
			func(l *Layer) error { return l.AddBytes("f/x", nil, 0o644) },
		}, ErrNotDir},
		{"parent is a symlink", []op{
			func(l *Layer) error { return l.AddSymlink("s", "/tmp") },
			func(l *Layer) error { return l.AddBytes("s/x", nil, 0o644) },
		}, ErrNotDir},
		{"type bits in mode", []op{func(l *Layer) error { return l.AddBytes("a", nil, fs.ModeDir|0o755) }}, ErrBadMode},
		{"missing host file", []op{func(l *Layer) error { return l.AddFile("a", filepath.Join(dir, "nope"), 0o644) }}, fs.ErrNotExist},
		{"host dir as file", []op{func(l *Layer) error { return l.AddFile("a", dir, 0o644) }}, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLayer()
			var err error
			for _, o := range tc.ops {
				if err = o(l); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestExplicitDirOverImplicit(t *testing.T) {
	img := build(t, []op{
		func(l *Layer) error { return l.AddBytes("d/x", nil, 0o644) },
		func(l *Layer) error { return l.AddDir("d", 0o700) },
	})
	recs, err := ReadArchivesBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Name != "d" || recs[0].Mode != cpio.S_IFDIR|0o700 {
		t.Errorf("got %s %o, want d %o", recs[0].Name, recs[0].Mode, cpio.S_IFDIR|0o700)
	}
}

func TestAddTree(t *testing.T) {
	src := t.TempDir()
	mk := func(p string, data string, mode fs.FileMode) {
		t.Helper()
		p = filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("a.txt", "A", 0o600)
	mk("sub/run.sh", "#!/bin/sh", 0o700)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "real"), []byte("R"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "real"), filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(src, "linkdir")); err != nil {
		t.Fatal(err)
	}

	l := NewLayer()
	if err := l.AddTree("pkg/testdata", src); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := l.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadArchivesBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		data, _ := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		typ := "f"
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			typ = "d"
		}
		got[r.Name] = fmt.Sprintf("%s %o %s", typ, r.Mode&0o7777, data)
	}
	want := map[string]string{
		"pkg":                       "d 755 ",
		"pkg/testdata":              "d 755 ",
		"pkg/testdata/a.txt":        "f 644 A",
		"pkg/testdata/sub":          "d 755 ",
		"pkg/testdata/sub/run.sh":   "f 755 #!/bin/sh",
		"pkg/testdata/link":         "f 644 R",
		"pkg/testdata/linkdir":      "d 755 ",
		"pkg/testdata/linkdir/real": "f 644 R",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tree:\n got %q\nwant %q", got, want)
	}

	// A second tree into the same directory reuses directories but
	// refuses to overwrite files.
	if err := l.AddTree("pkg/testdata", src); !errors.Is(err, ErrDuplicate) {
		t.Errorf("second AddTree: got %v, want ErrDuplicate", err)
	}
}

func TestAddTreeCycle(t *testing.T) {
	src := t.TempDir()
	if err := os.Symlink(src, filepath.Join(src, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := NewLayer().AddTree(".", src); !errors.Is(err, ErrUnsupported) {
		t.Errorf("got %v, want ErrUnsupported (cycle)", err)
	}
}

func TestWriteToMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := NewLayer()
	if err := l.AddFile("f", p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WriteTo(io.Discard); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want ErrNotExist", err)
	}
}

func TestModeSpellings(t *testing.T) {
	unix := build(t, []op{func(l *Layer) error { return l.AddDir("tmp", 0o1777) }, func(l *Layer) error { return l.AddBytes("su", nil, 0o4755) }})
	goish := build(t, []op{func(l *Layer) error { return l.AddDir("tmp", 0o777|fs.ModeSticky) }, func(l *Layer) error { return l.AddBytes("su", nil, 0o755|fs.ModeSetuid) }})
	if !bytes.Equal(unix, goish) {
		t.Error("0o1777 and 0o777|fs.ModeSticky (or 0o4755 and 0o755|fs.ModeSetuid) differ")
	}
}

func TestAssumeDir(t *testing.T) {
	img := build(t, []op{
		func(l *Layer) error { return l.AssumeDir("tmp") },
		func(l *Layer) error { return l.AssumeDir("etc/rules_go_vm") },
		func(l *Layer) error { return l.AddBytes("tmp/x", []byte("x"), 0o644) },
		func(l *Layer) error { return l.AddBytes("etc/rules_go_vm/cfg", nil, 0o644) },
		func(l *Layer) error { return l.AddDir("etc", 0o700) }, // explicit replaces assumed
	})
	recs, err := ReadArchivesBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, " "), "etc etc/rules_go_vm/cfg tmp/x"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}

	l := NewLayer()
	if err := l.AssumeDir("tmp"); err != nil {
		t.Fatal(err)
	}
	if err := l.AddBytes("tmp", nil, 0o644); !errors.Is(err, ErrDuplicate) {
		t.Errorf("file over assumed dir: got %v, want ErrDuplicate", err)
	}
	if err := l.AddBytes("f", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.AssumeDir("f/g"); !errors.Is(err, ErrNotDir) {
		t.Errorf("assume below a file: got %v, want ErrNotDir", err)
	}
	if err := l.AssumeDir("/abs"); !errors.Is(err, ErrBadPath) {
		t.Errorf("assume absolute: got %v, want ErrBadPath", err)
	}
	if l.Len() != 1 {
		t.Errorf("Len = %d, want 1 (assumed dirs are not written)", l.Len())
	}
}
