package kbuild

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// PatchExt is the file name extension of a kernel source patch.
const PatchExt = ".patch"

// ErrInvalidPatch reports a patch file that is not a unified diff.
var ErrInvalidPatch = errors.New("invalid kernel patch")

// Patch is a unified diff applied to the extracted source tree with
// `patch -p1` before the kernel is configured. Patches are applied in
// order; their names and contents are part of the cache key.
type Patch struct {
	// Name identifies the patch in errors and the manifest (its file name).
	Name string
	// Content is the patch text: a free-form description, then the diff
	// ("--- a/PATH", "+++ b/PATH", hunks), as `git format-patch` or
	// `diff -u` write it.
	Content []byte
}

// ParsePatch checks that content looks like a unified diff for `patch -p1`:
// at least one "--- " line directly followed by a "+++ " line and a hunk
// header. It does not check that it applies (Build does, against the
// source).
func ParsePatch(name string, content []byte) (Patch, error) {
	bad := func(format string, a ...any) (Patch, error) {
		return Patch{}, fmt.Errorf("%w: %s: %s", ErrInvalidPatch, name, fmt.Sprintf(format, a...))
	}
	if !strings.HasSuffix(name, PatchExt) {
		return bad("want a file name ending in %s", PatchExt)
	}
	lines := strings.Split(string(content), "\n")
	files := 0
	for i := 0; i+2 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "--- ") {
			continue
		}
		if !strings.HasPrefix(lines[i+1], "+++ ") {
			return bad("line %d: %q is not followed by a \"+++ \" line", i+1, lines[i])
		}
		if !strings.HasPrefix(lines[i+2], "@@ ") {
			return bad("line %d: no hunk header (\"@@ -l,n +l,n @@\") after the file names", i+3)
		}
		target := strings.Fields(strings.TrimPrefix(lines[i+1], "+++ "))
		if len(target) == 0 || !strings.Contains(target[0], "/") {
			return bad("line %d: %q: want a path with a leading directory (a/..., b/...) for patch -p1", i+2, lines[i+1])
		}
		files++
		i += 2
	}
	if files == 0 {
		return bad("no unified diff in it (no \"--- a/FILE\" / \"+++ b/FILE\" lines); write it with git diff or diff -u")
	}
	return Patch{Name: name, Content: bytes.Clone(content)}, nil
}

// LoadPatches parses every *.patch at the top of fsys, sorted by name
// (prefix them with numbers to order them).
func LoadPatches(fsys fs.FS) ([]Patch, error) {
	names, err := fs.Glob(fsys, "*"+PatchExt)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ps []Patch
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		p, err := ParsePatch(path.Base(n), b)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// applyPatches applies o.Patches to the extracted tree in order; a patch
// that does not apply cleanly (or was already applied) is an error naming
// it, with patch's output.
func (b *builder) applyPatches() error {
	for i, p := range b.o.Patches {
		file := filepath.Join(b.out, "..", fmt.Sprintf("patch-%02d%s", i, PatchExt))
		if err := os.WriteFile(file, p.Content, 0o644); err != nil {
			return err
		}
		err := b.cmd("patch "+p.Name, b.src, orDefault(b.o.PatchBin, "patch"),
			"-p1", "--forward", "--batch", "--no-backup-if-mismatch", "--reject-file=-", "-i", file)
		os.Remove(file)
		if err != nil {
			return fmt.Errorf("kernel patch %s does not apply to %s (update or drop it): %w", p.Name, filepath.Base(b.o.Source), err)
		}
	}
	return nil
}
