package toolroot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDebianMirror(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    string
		wantErr error
	}{
		{
			name: "deb822, security first",
			files: map[string]string{"sources.list.d/debian.sources": `Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
`},
			want: "http://mirror.example/debian",
		},
		{
			name: "one-line with options",
			files: map[string]string{"sources.list": `# deb http://old.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib
`},
			want: "http://mirror.example/debian",
		},
		{
			name:    "disabled and non-main only",
			files:   map[string]string{"sources.list.d/x.sources": "Types: deb\nURIs: http://a/\nSuites: bookworm\nComponents: main\nEnabled: no\n\nTypes: deb\nURIs: http://b/\nSuites: bookworm\nComponents: contrib\n"},
			wantErr: ErrNoMirror,
		},
		{name: "nothing", files: map[string]string{}, wantErr: ErrNoMirror},
	} {
		srcs, err := ReadAptSources(writeFiles(t, tc.files))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := DebianMirror(srcs)
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
