package kbuild

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/kernel"
)

const goodPatch = `Make the fake source say hello

--- a/mm/init.c
+++ b/mm/init.c
@@ -1,3 +1,3 @@
 line one
-poison here
+no poison
 line three
`

func TestParsePatch(t *testing.T) {
	tests := []struct {
		name, file, content, wantErr string
	}{
		{"good", "0001-x.patch", goodPatch, ""},
		{"git diff", "a.patch", "diff --git a/x/y b/x/y\nindex 1..2 100644\n--- a/x/y\n+++ b/x/y\n@@ -1 +1 @@\n-a\n+b\n", ""},
		{"wrong extension", "0001-x.diff", goodPatch, "0001-x.diff: want a file name ending in .patch"},
		{"no diff", "empty.patch", "just words\n", "empty.patch: no unified diff in it"},
		{"no +++", "a.patch", "--- a/x\n@@ -1 +1 @@\n-a\n+b\n", `a.patch: line 1: "--- a/x" is not followed by a "+++ " line`},
		{"no hunk", "a.patch", "--- a/x/y\n+++ b/x/y\n-a\n+b\n", "a.patch: line 3: no hunk header"},
		{"p0 paths", "a.patch", "--- init.c\n+++ init.c\n@@ -1 +1 @@\n-a\n+b\n", `a.patch: line 2: "+++ init.c": want a path with a leading directory`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePatch(tc.file, []byte(tc.content))
			if tc.wantErr == "" {
				if err != nil || p.Name != tc.file || string(p.Content) != tc.content {
					t.Fatalf("got %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPatch) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want ErrInvalidPatch with %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadPatchesOrder(t *testing.T) {
	fsys := fstest.MapFS{
		"0002-b.patch": {Data: []byte(goodPatch)},
		"0001-a.patch": {Data: []byte(goodPatch)},
		"README.md":    {Data: []byte("not a patch")},
	}
	ps, err := LoadPatches(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "0001-a.patch" || ps[1].Name != "0002-b.patch" {
		t.Errorf("got %+v", ps)
	}
	fsys["0003-bad.patch"] = &fstest.MapFile{Data: []byte("nothing")}
	if _, err := LoadPatches(fsys); !errors.Is(err, ErrInvalidPatch) || !strings.Contains(err.Error(), "0003-bad.patch") {
		t.Errorf("got %v, want an error naming 0003-bad.patch", err)
	}
}

// The embedded default patches parse; that they apply to the pinned source
// is proven by every kernel build (tools/setup, the kernel_image actions).
func TestEmbeddedPatches(t *testing.T) {
	ps, err := LoadPatches(kernel.Patches())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatal("no embedded patches")
	}
	for _, p := range ps {
		if !strings.Contains(string(p.Content), "rules_go_vm") {
			t.Errorf("%s: its added lines should say they are rules_go_vm's (grep-able in the tree)", p.Name)
		}
	}
}

func TestKeyPatches(t *testing.T) {
	base := KeyInputs{SourceSHA256: "s", Arch: arch.X86_64, CompilerVersion: "gcc"}
	p1, _ := ParsePatch("0001-a.patch", []byte(goodPatch))
	p2, _ := ParsePatch("0002-b.patch", []byte(goodPatch))
	with := base
	with.Patches = []Patch{p1, p2}
	swapped := base
	swapped.Patches = []Patch{p2, p1}
	edited := base
	edited.Patches = []Patch{p1, {Name: p2.Name, Content: []byte(goodPatch + " ")}}
	keys := map[string]string{}
	for name, in := range map[string]KeyInputs{"none": base, "two": with, "swapped": swapped, "edited": edited} {
		k := Key(in)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share a key", name, other)
		}
		keys[k] = name
	}
}

// fakeSourceToolchain is fakeToolchain whose tar extracts a small tree
// with mm/init.c, so that real patches apply to it.
func fakeSourceToolchain(t *testing.T) (*Options, string) {
	t.Helper()
	if _, err := exec.LookPath("patch"); err != nil {
		t.Fatalf("GNU patch is needed to build kernels (and by this test): %v", err)
	}
	o, dir := fakeToolchain(t)
	tar := filepath.Join(dir, "tar-src")
	script := `#!/bin/sh
mkdir -p "$4/mm" && echo extracted > "$4/Makefile" && printf 'line one\npoison here\nline three\n' > "$4/mm/init.c"
`
	if err := os.WriteFile(tar, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	o.Tar = tar
	return o, dir
}

func TestBuildFakePatched(t *testing.T) {
	o, _ := fakeSourceToolchain(t)
	ctx := context.Background()
	unpatched, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePatch("0001-no-poison.patch", []byte(goodPatch))
	if err != nil {
		t.Fatal(err)
	}
	o.Patches = []Patch{p}
	o.KeepWorkDir = true
	r, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached || r.Dir == unpatched.Dir {
		t.Errorf("adding a patch did not change the cache entry (cached=%v)", r.Cached)
	}
	if strings.Join(r.Manifest.Patches, ",") != "0001-no-poison.patch" {
		t.Errorf("manifest patches %q", r.Manifest.Patches)
	}
	// The patched file is in the kept work tree.
	matches, _ := filepath.Glob(filepath.Join(o.CacheDir, ".build-*", "src", "mm", "init.c"))
	if len(matches) != 1 {
		t.Fatalf("kept work trees: %q", matches)
	}
	if got := readFile(t, matches[0]); got != "line one\nno poison\nline three\n" {
		t.Errorf("patched mm/init.c = %q", got)
	}
}

func TestBuildFakePatchDoesNotApply(t *testing.T) {
	o, dir := fakeSourceToolchain(t)
	stale := strings.Replace(goodPatch, "-poison here", "-poison was here", 1)
	p, err := ParsePatch("0002-stale.patch", []byte(stale))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ParsePatch("0001-good.patch", []byte(goodPatch))
	for name, ps := range map[string][]Patch{
		"stale":         {p},
		"applied twice": {good, {Name: "0002-again.patch", Content: good.Content}},
	} {
		t.Run(name, func(t *testing.T) {
			o.Patches = ps
			_, err := Build(context.Background(), o)
			last := ps[len(ps)-1].Name
			if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "kernel patch "+last+" does not apply to linux-source-9.9.tar.xz") {
				t.Fatalf("got %v, want ErrBuild naming %s", err, last)
			}
			if ents, _ := os.ReadDir(o.CacheDir); len(ents) != 0 {
				t.Errorf("a failed build left %d cache entries", len(ents))
			}
			if _, err := os.Stat(filepath.Join(dir, "make.log")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("make ran despite the failed patch (make.log: %v)", err)
			}
		})
	}
}

func TestValidatePatches(t *testing.T) {
	o, _ := fakeToolchain(t)
	p, _ := ParsePatch("0001-a.patch", []byte(goodPatch))
	o.Patches = []Patch{p, p, {Name: "x.patch", Content: []byte("no diff")}}
	err := o.Validate()
	if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "patch 0001-a.patch given twice") || !strings.Contains(err.Error(), "x.patch: no unified diff") {
		t.Errorf("got %v", err)
	}
}
