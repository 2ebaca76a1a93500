package initramfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// ErrManifest reports an invalid manifest entry.
var ErrManifest = errors.New("invalid manifest")

// Entry types of a Manifest.
const (
	TypeFile    = "file"    // host file Src at Path, Mode (default 0755 if Src is executable, else 0644)
	TypeBytes   = "bytes"   // Data (UTF-8 text) at Path, Mode (default 0644)
	TypeDir     = "dir"     // directory at Path, Mode (default 0755)
	TypeSymlink = "symlink" // symlink at Path to Target
	TypeTree    = "tree"    // host directory Src copied under Path ("." = root)
	TypeCharDev = "chardev" // character device at Path, Mode (default 0600), Major, Minor
	// TypeAssumeDir declares a directory a lower layer provides (see
	// Layer.AssumeDir): a parent for later entries, not written.
	TypeAssumeDir = "assume-dir"
)

// Manifest describes a layer as data, for tools and build actions. Its JSON
// form is
//
//	{"entries": [
//	  {"type": "file", "path": "init", "src": "bazel-out/init", "mode": "0755"},
//	  {"type": "bytes", "path": "etc/test.json", "data": "{}"},
//	  {"type": "dir", "path": "tmp", "mode": "1777"},
//	  {"type": "symlink", "path": "bin/sh", "target": "/init"},
//	  {"type": "tree", "path": "testdata", "src": "pkg/testdata"},
//	  {"type": "chardev", "path": "dev/console", "major": 5, "minor": 1},
//	  {"type": "assume-dir", "path": "run"}
//	]}
//
// Modes are octal strings. Relative host paths (src) are relative to the
// working directory. Unknown fields are errors.
type Manifest struct {
	Entries []Entry `json:"entries"`
}

// Entry is one manifest entry; which fields apply depends on Type.
type Entry struct {
	Type   string `json:"type"`
	Path   string `json:"path"`
	Src    string `json:"src,omitempty"`
	Target string `json:"target,omitempty"`
	Data   string `json:"data,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Major  uint32 `json:"major,omitempty"`
	Minor  uint32 `json:"minor,omitempty"`
}

// ParseManifest decodes a JSON manifest strictly (unknown fields and
// trailing data are errors).
func ParseManifest(r io.Reader) (*Manifest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("initramfs: %w: %w", ErrManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("initramfs: %w: trailing data after the manifest object", ErrManifest)
	}
	return &m, nil
}

func parseMode(s string, def fs.FileMode) (fs.FileMode, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^0o7777 != 0 {
		return 0, fmt.Errorf("%w: mode %q: want octal permissions like \"0755\"", ErrBadMode, s)
	}
	return fs.FileMode(v), nil
}

// Add adds the manifest's entries to l, in order. Errors name the entry
// index and wrap the underlying sentinel (ErrManifest, ErrBadPath, ...).
func (m *Manifest) Add(l *Layer) error {
	for i, e := range m.Entries {
		if err := e.add(l); err != nil {
			return fmt.Errorf("manifest entry %d (%s %q): %w", i, e.Type, e.Path, err)
		}
	}
	return nil
}

// Layer returns a new layer holding the manifest's entries.
func (m *Manifest) Layer() (*Layer, error) {
	l := NewLayer()
	if err := m.Add(l); err != nil {
		return nil, err
	}
	return l, nil
}

func (e Entry) add(l *Layer) error {
	need := func(name, v string) error {
		if v == "" {
			return fmt.Errorf("%w: %q needs %q", ErrManifest, e.Type, name)
		}
		return nil
	}
	forbid := func(names ...string) error {
		vals := map[string]bool{"src": e.Src != "", "target": e.Target != "", "data": e.Data != "", "mode": e.Mode != "", "major/minor": e.Major != 0 || e.Minor != 0}
		for _, n := range names {
			if vals[n] {
				return fmt.Errorf("%w: %q does not take %q", ErrManifest, e.Type, n)
			}
		}
		return nil
	}
	switch e.Type {
	case TypeFile:
		mode, err := parseMode(e.Mode, FileMode)
		if err == nil {
			err = errors.Join(need("src", e.Src), forbid("target", "data", "major/minor"))
		}
		if err != nil {
			return err
		}
		if e.Mode == "" {
			// Like mkinitramfs -file: executables stay executable.
			if fi, err := os.Stat(e.Src); err == nil && fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
		}
		return l.AddFile(e.Path, e.Src, mode)
	case TypeBytes:
		mode, err := parseMode(e.Mode, FileMode)
		if err == nil {
			err = forbid("src", "target", "major/minor")
		}
		if err != nil {
			return err
		}
		return l.AddBytes(e.Path, []byte(e.Data), mode)
	case TypeDir:
		mode, err := parseMode(e.Mode, DirMode)
		if err == nil {
			err = forbid("src", "target", "data", "major/minor")
		}
		if err != nil {
			return err
		}
		return l.AddDir(e.Path, mode)
	case TypeSymlink:
		if err := errors.Join(need("target", e.Target), forbid("src", "data", "mode", "major/minor")); err != nil {
			return err
		}
		return l.AddSymlink(e.Path, e.Target)
	case TypeTree:
		if err := errors.Join(need("src", e.Src), forbid("target", "data", "mode", "major/minor")); err != nil {
			return err
		}
		return l.AddTree(e.Path, e.Src)
	case TypeCharDev:
		mode, err := parseMode(e.Mode, 0o600)
		if err == nil {
			err = forbid("src", "target", "data")
		}
		if err != nil {
			return err
		}
		return l.AddCharDev(e.Path, mode, e.Major, e.Minor)
	case TypeAssumeDir:
		if err := forbid("src", "target", "data", "mode", "major/minor"); err != nil {
			return err
		}
		return l.AssumeDir(e.Path)
	default:
		return fmt.Errorf("%w: unknown type %q (want file, bytes, dir, symlink, tree, chardev or assume-dir)", ErrManifest, e.Type)
	}
}
