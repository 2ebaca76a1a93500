package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/kernel/kbuild"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

func TestLoadFragments(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.config")
	b := filepath.Join(dir, "b.config")
	os.WriteFile(a, []byte("CONFIG_A=y\n"), 0o644)
	os.WriteFile(b, []byte("CONFIG_B=y\n"), 0o644)
	tests := []struct {
		name, spec string
		want       []string
	}{
		{"embedded", "", nil},
		{"dir", dir, []string{"a.config", "b.config"}},
		{"list keeps order", b + "," + a, []string{"b.config", "a.config"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frags, err := loadFragments(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range frags {
				names = append(names, f.Name)
			}
			if tc.want == nil {
				if len(names) < 5 || names[0] != "00-base.config" {
					t.Errorf("embedded fragments %q", names)
				}
				return
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %q, want %q", names, tc.want)
			}
		})
	}
	bad := filepath.Join(dir, "bad.config")
	os.WriteFile(bad, []byte("CONFIG_A=y\nCONFIG_B yes\n"), 0o644)
	if _, err := loadFragments(bad); !errors.Is(err, kconfig.ErrSyntax) || !strings.Contains(err.Error(), "bad.config:2") {
		t.Errorf("got %v, want bad.config:2 syntax error", err)
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"bad flag", []string{"--bogus"}, errUsage},
		{"extra args", []string{"--source", "x", "y"}, errUsage},
		{"no source", []string{"--cache", t.TempDir()}, kbuild.ErrInvalidOptions},
		{"bad arch", []string{"--arch", "mips", "--source", "/dev/null", "--cache", t.TempDir()}, kbuild.ErrInvalidOptions},
		{"patches with a base tree", []string{"--base-tree", "t.tar.gz", "--patches", "x.patch", "--source", "x"}, errUsage},
		{"missing base tree", []string{"--base-tree", "/nonexistent/tree.tar.gz", "--source", "/dev/null", "--cache", t.TempDir()}, kbuild.ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoadPatches(t *testing.T) {
	dir := t.TempDir()
	diff := []byte("--- a/x/y\n+++ b/x/y\n@@ -1 +1 @@\n-a\n+b\n")
	a := filepath.Join(dir, "0001-a.patch")
	b := filepath.Join(dir, "0002-b.patch")
	os.WriteFile(a, diff, 0o644)
	os.WriteFile(b, diff, 0o644)
	tests := []struct {
		name, spec string
		want       string
	}{
		{"embedded", "", "0001-no-init-memory-poison.patch"},
		{"none", "none", ""},
		{"dir", dir, "0001-a.patch,0002-b.patch"},
		{"list keeps order", b + "," + a, "0002-b.patch,0001-a.patch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := loadPatches(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if got := strings.Join(names, ","); tc.name == "embedded" && !strings.HasPrefix(got, tc.want) || tc.name != "embedded" && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	bad := filepath.Join(dir, "bad.patch")
	os.WriteFile(bad, []byte("words\n"), 0o644)
	if _, err := loadPatches(bad); !errors.Is(err, kbuild.ErrInvalidPatch) || !strings.Contains(err.Error(), "bad.patch") {
		t.Errorf("got %v, want an ErrInvalidPatch naming bad.patch", err)
	}
	if _, err := loadPatches(filepath.Join(dir, "missing.patch")); err == nil {
		t.Error("a missing patch file was accepted")
	}
}
