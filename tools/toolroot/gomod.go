package toolroot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrSumMismatch is returned when a downloaded module's hash differs from its pin.
var ErrSumMismatch = errors.New("module sum does not match its pin")

// GoModule is what `go mod download -json` reports for one module.
type GoModule struct {
	Path    string
	Version string
	Dir     string
	Sum     string
	Error   string
}

// DownloadFunc fetches a module (normally `go mod download -json`).
type DownloadFunc func(path, version string) (GoModule, error)

// GoDownload runs `go mod download -json PATH@VERSION` with the go tool at goBin.
func GoDownload(goBin string) DownloadFunc {
	return func(path, version string) (GoModule, error) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(goBin, "mod", "download", "-json", path+"@"+version)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Dir = os.TempDir() // outside any module: no go.mod is consulted or changed
		runErr := cmd.Run()
		var m GoModule
		if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
			return GoModule{}, fmt.Errorf("go mod download %s@%s: %v: %s", path, version, runErr, stderr.String())
		}
		if m.Error != "" {
			return GoModule{}, fmt.Errorf("go mod download %s@%s: %s", path, version, m.Error)
		}
		return m, runErr
	}
}

// PreparedModule is a pinned Bazel module copied out of the Go module cache.
type PreparedModule struct {
	Pin Pin
	Dir string // writable copy, ready to serve
}

// PrepareOptions controls PrepareModule.
type PrepareOptions struct {
	// Download fetches the module; required.
	Download DownloadFunc
	// DestRoot is where the writable copies go: DestRoot/NAME@VERSION.
	DestRoot string
	// Vendor, when non-nil, is run in the copy of modules that build Go code
	// in GOPATH mode inside Bazel (gazelle's go_repository_tools): it must
	// populate vendor/.
	Vendor func(dir string) error
}

// Validate checks the options.
func (o PrepareOptions) Validate() error {
	if o.Download == nil {
		return errors.New("PrepareOptions.Download is required")
	}
	if !filepath.IsAbs(o.DestRoot) {
		return fmt.Errorf("PrepareOptions.DestRoot %q must be an absolute path", o.DestRoot)
	}
	return nil
}

// completeStamp marks a finished copy; a copy without it is redone.
const completeStamp = ".rules_go_vm-complete"

// PrepareModule downloads a gomod pin, checks its sum against the pin, and
// makes a writable copy with the executable bits that module zips drop
// (shell scripts). A finished copy whose stamp records the same sum is
// reused as is.
func PrepareModule(p Pin, o PrepareOptions) (PreparedModule, error) {
	if err := o.Validate(); err != nil {
		return PreparedModule{}, err
	}
	dest := filepath.Join(o.DestRoot, p.Module+"@"+BazelVersion(p.Version))
	if b, err := os.ReadFile(filepath.Join(dest, completeStamp)); err == nil && strings.TrimSpace(string(b)) == p.Sum {
		return PreparedModule{Pin: p, Dir: dest}, nil
	}
	m, err := o.Download(p.Name, p.Version)
	if err != nil {
		return PreparedModule{}, err
	}
	if m.Sum != p.Sum {
		return PreparedModule{}, fmt.Errorf("%s@%s (pins line %d): downloaded sum %s, pinned %s: %w",
			p.Name, p.Version, p.Line, m.Sum, p.Sum, ErrSumMismatch)
	}
	tmp := dest + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return PreparedModule{}, err
	}
	if err := copyTree(m.Dir, tmp); err != nil {
		return PreparedModule{}, fmt.Errorf("copying %s: %w", m.Dir, err)
	}
	if o.Vendor != nil {
		if err := o.Vendor(tmp); err != nil {
			return PreparedModule{}, fmt.Errorf("vendoring %s: %w", p.Name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, completeStamp), []byte(p.Sum+"\n"), 0o644); err != nil {
		return PreparedModule{}, err
	}
	if err := os.RemoveAll(dest); err != nil {
		return PreparedModule{}, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return PreparedModule{}, err
	}
	return PreparedModule{Pin: p, Dir: dest}, nil
}

// copyTree copies a read-only module tree into a writable one. Files named
// *.sh (and files under a bin/ or scripts dir that start with "#!") become
// executable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(path, ".sh") || bytes.HasPrefix(b, []byte("#!")) {
			mode = 0o755
		}
		return os.WriteFile(out, b, mode)
	})
}
