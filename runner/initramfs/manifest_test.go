package initramfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "init"), []byte("INIT"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "td"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "td", "in.txt"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	js := `{"entries": [
	  {"type": "file", "path": "init", "src": "` + filepath.Join(dir, "init") + `", "mode": "0755"},
	  {"type": "bytes", "path": "etc/test.json", "data": "{}"},
	  {"type": "dir", "path": "tmp", "mode": "1777"},
	  {"type": "symlink", "path": "bin/sh", "target": "/init"},
	  {"type": "tree", "path": "testdata", "src": "` + filepath.Join(dir, "td") + `"},
	  {"type": "chardev", "path": "dev/console", "major": 5, "minor": 1},
	  {"type": "assume-dir", "path": "run"},
	  {"type": "bytes", "path": "run/x"}
	]}`
	m, err := ParseManifest(strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.Layer()
	if err != nil {
		t.Fatal(err)
	}
	want := "bin bin/sh dev dev/console etc etc/test.json init run/x testdata testdata/in.txt tmp"
	if got := strings.Join(l.Paths(), " "); got != want {
		t.Errorf("paths %q, want %q", got, want)
	}
	var buf bytes.Buffer
	if _, err := l.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadArchivesBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]uint64{}
	for _, r := range recs {
		modes[r.Name] = r.Mode
	}
	for p, want := range map[string]uint64{"tmp": 0o41777, "dev/console": 0o20600, "etc/test.json": 0o100644, "init": 0o100755} {
		if modes[p] != want {
			t.Errorf("%s mode %o, want %o", p, modes[p], want)
		}
	}
}

func TestManifestErrors(t *testing.T) {
	tests := []struct {
		name string
		js   string
		want error
	}{
		{"unknown field", `{"entries":[{"type":"dir","path":"a","bogus":1}]}`, ErrManifest},
		{"trailing data", `{"entries":[]} {}`, ErrManifest},
		{"not json", `entries`, ErrManifest},
		{"unknown type", `{"entries":[{"type":"hardlink","path":"a"}]}`, ErrManifest},
		{"file without src", `{"entries":[{"type":"file","path":"a"}]}`, ErrManifest},
		{"symlink with mode", `{"entries":[{"type":"symlink","path":"a","target":"b","mode":"0644"}]}`, ErrManifest},
		{"decimal mode", `{"entries":[{"type":"dir","path":"a","mode":"493"}]}`, ErrBadMode},
		{"mode too big", `{"entries":[{"type":"dir","path":"a","mode":"17777"}]}`, ErrBadMode},
		{"absolute path", `{"entries":[{"type":"dir","path":"/a"}]}`, ErrBadPath},
		{"duplicate", `{"entries":[{"type":"dir","path":"a"},{"type":"bytes","path":"a"}]}`, ErrDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest(strings.NewReader(tc.js))
			if err == nil {
				_, err = m.Layer()
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}
