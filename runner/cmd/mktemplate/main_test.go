package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSpec writes a launch file with the given shape fields (JSON) and
// returns its path.
func writeSpec(t *testing.T, shape string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.template.json")
	spec := `{"arch": "x86_64", "args": [], "env": {}, "kernel": "k", "layers": ["b"], "shape": {` + shape + `}, "test": "/invm/template", "workdir": "/"}`
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunWithoutQEMU covers what mktemplate decides before it boots: bad
// command lines, a cold spec, and a spec a template cannot carry (a
// directory saying why, no error).
func TestRunWithoutQEMU(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shape    string
		args     func(spec, out string) []string
		wantErr  string // "" for none
		wantNote string // in NoTemplateFile
	}{
		{name: "usage", args: func(spec, out string) []string { return []string{"-o", out} }, wantErr: "usage"},
		{name: "cold", shape: `"start": "cold"`, args: all, wantErr: `start = "cold": no template`},
		{name: "auto with NICs", shape: `"start": "auto", "nics": ["e1000"]`, args: all, wantNote: "no template: it has NICs"},
		{name: "bad spec", shape: `"start": "warm"`, args: all, wantErr: `start: "warm" is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "tmpl")
			err := run(context.Background(), tc.args(writeSpec(t, tc.shape), out), func(string) string { return "" }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if tc.name == "usage" && !errors.Is(err, errUsage) {
					t.Errorf("err = %v, want errUsage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(out, NoTemplateFile))
			if err != nil || !strings.Contains(string(b), tc.wantNote) {
				t.Errorf("%s: %q, %v; want %q", NoTemplateFile, b, err, tc.wantNote)
			}
		})
	}
}

func all(spec, out string) []string {
	return []string{"-o", out, "-spec", spec, "-kernel", "/k", "-base", "/b"}
}
