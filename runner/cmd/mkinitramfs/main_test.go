package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	initBin := write("init", "INIT", 0o700)
	write("td/a.txt", "A", 0o600)
	manifest := write("m.json", `{"entries":[{"type":"dir","path":"tmp","mode":"1777"}]}`, 0o644)

	base := filepath.Join(dir, "base.cpio")
	if err := run([]string{"-o", base, "-manifest", manifest, "-file", "init=" + initBin, "-symlink", "bin/sh=/init"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img.cpio")
	if err := run([]string{"-o", img, "-tree", "testdata=" + filepath.Join(dir, "td"), "-bytes", "etc/cfg=x", "-dir", "run", base}, nil, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-list", img}, &out, nil); err != nil {
		t.Fatal(err)
	}
	want := `040755 0 bin
120777 5 bin/sh -> /init
100755 4 init
041777 0 tmp
040755 0 etc
100644 1 etc/cfg
040755 0 run
040755 0 testdata
100644 1 testdata/a.txt
`
	if out.String() != want {
		t.Errorf("-list:\n%s\nwant:\n%s", out.String(), want)
	}

	// Same input, same bytes; stdout output equals the file output.
	var stdout bytes.Buffer
	if err := run([]string{"-o", "-", "-manifest", manifest, "-file", "init=" + initBin, "-symlink", "bin/sh=/init"}, &stdout, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, stdout.Bytes()) {
		t.Error("rebuilding the same layer gave different bytes")
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.cpio")
	tests := []struct {
		name string
		args []string
	}{
		{"no output", []string{"-dir", "a"}},
		{"bad flag", []string{"-o", out, "-bogus"}},
		{"file missing", []string{"-o", out, "-file", "a=" + filepath.Join(dir, "nope")}},
		{"file without =", []string{"-o", out, "-file", "a"}},
		{"absolute path", []string{"-o", out, "-dir", "/a"}},
		{"duplicate", []string{"-o", out, "-dir", "a", "-bytes", "a=x"}},
		{"missing archive", []string{"-o", out, filepath.Join(dir, "nope.cpio")}},
		{"list with others", []string{"-list", out, "-o", out}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(tc.args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
				t.Error("no error")
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output written despite the error: %v", err)
			}
		})
	}
}
