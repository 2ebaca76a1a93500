package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRun: the two command lines Bazel uses, with collect_coverage.sh's
// filters and a source manifest.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(dir string) []string // writes inputs, returns the args (without --output_file)
		want  string
	}{
		{
			name: "coverage dir: *.dat below it, summed; others ignored",
			setup: func(dir string) []string {
				write(t, filepath.Join(dir, "cov/go_coverage.1.dat"), "SF:p/a.go\nDA:1,1\nDA:2,0\nend_of_record\n")
				write(t, filepath.Join(dir, "cov/sub/go_coverage.2.dat"), "SF:p/a.go\nDA:2,3\nend_of_record\n")
				write(t, filepath.Join(dir, "cov/coverage.dat.cover"), "mode: set\n")
				return []string{"--coverage_dir=" + filepath.Join(dir, "cov")}
			},
			want: "SF:p/a.go\nDA:1,1\nDA:2,3\nLH:2\nLF:2\nend_of_record\n",
		},
		{
			name: "filters and manifest",
			setup: func(dir string) []string {
				write(t, filepath.Join(dir, "cov/x.dat"), "SF:p/a.go\nDA:1,1\nend_of_record\nSF:p/a_test.go\nDA:1,1\nend_of_record\nSF:/usr/include/s.h\nDA:1,1\nend_of_record\n")
				write(t, filepath.Join(dir, "manifest"), "p/a.go\n/usr/include/s.h\n")
				return []string{"--coverage_dir=" + filepath.Join(dir, "cov"), "--filter_sources=/usr/include.+", "--source_file_manifest=" + filepath.Join(dir, "manifest")}
			},
			want: "SF:p/a.go\nDA:1,1\nLH:1\nLF:1\nend_of_record\n",
		},
		{
			name: "reports file",
			setup: func(dir string) []string {
				write(t, filepath.Join(dir, "a/coverage.dat"), "SF:p/a.go\nDA:1,0\nend_of_record\n")
				write(t, filepath.Join(dir, "b/coverage.dat"), "SF:p/a.go\nDA:1,2\nend_of_record\nSF:q/b.go\nDA:5,0\nend_of_record\n")
				write(t, filepath.Join(dir, "list"), filepath.Join(dir, "a/coverage.dat")+"\n"+filepath.Join(dir, "b/coverage.dat")+"\n\n")
				return []string{"--reports_file=" + filepath.Join(dir, "list")}
			},
			want: "SF:p/a.go\nDA:1,2\nLH:1\nLF:1\nend_of_record\nSF:q/b.go\nDA:5,0\nLH:0\nLF:1\nend_of_record\n",
		},
		{
			name:  "empty coverage dir",
			setup: func(dir string) []string { return []string{"--coverage_dir=" + dir} },
			want:  "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.dat")
			if err := run(append(tc.setup(dir), "--output_file="+out), io.Discard); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil || string(b) != tc.want {
				t.Errorf("output %q (%v), want %q", b, err, tc.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bad.dat"), "SF:a\nDA:1\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"--output_file=x"}, "usage"},
		{[]string{"--output_file=x", "--coverage_dir=a", "--reports_file=b"}, "usage"},
		{[]string{"--output_file=" + filepath.Join(dir, "o"), "--coverage_dir=" + dir}, "bad.dat:2"},
		{[]string{"--output_file=x", "--reports_file=" + filepath.Join(dir, "none")}, "--reports_file"},
		{[]string{"--output_file=x", "--coverage_dir=" + dir, "--filter_sources=("}, "filter_sources"},
	} {
		err := run(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
