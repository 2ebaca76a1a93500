package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

// Limits of PackageDirFiles: a package directory is source files and small
// inputs; anything bigger is left on the host (put inputs in testdata/).
const (
	// MaxPackageFileSize is the largest package file copied to the guest.
	MaxPackageFileSize = 1 << 20
	// MaxPackageFilesTotal bounds the package files copied, in bytes.
	MaxPackageFilesTotal = 8 << 20
)

// PackageDirFiles returns the regular files directly in dir (go test's
// working directory: the package's directory) that the guest gets next to
// the test binary, sorted, skipping exclude (the test binary itself), hidden
// files, files over MaxPackageFileSize and, once MaxPackageFilesTotal is
// reached, the rest; skipped lists what it left out and why. Subdirectories
// are not copied (testdata/ is, by Options.TestdataDir).
func PackageDirFiles(dir, exclude string) (files, skipped []string, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var total int64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || name == "testdata" {
			continue
		}
		path := filepath.Join(dir, name)
		if exclude != "" && sameFile(path, exclude) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case fi.Size() > MaxPackageFileSize:
			skipped = append(skipped, fmt.Sprintf("%s (%d bytes > %d)", name, fi.Size(), MaxPackageFileSize))
		case total+fi.Size() > MaxPackageFilesTotal:
			skipped = append(skipped, fmt.Sprintf("%s (package files over %d bytes)", name, MaxPackageFilesTotal))
		default:
			total += fi.Size()
			files = append(files, path)
		}
	}
	return files, skipped, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// addPackageFiles puts files in the test layer next to the test binary.
func addPackageFiles(l *initramfs.Layer, files []string) error {
	guest := strings.TrimPrefix(GuestDir, "/")
	var errs []error
	for _, f := range files {
		errs = append(errs, l.AddFile(guest+"/"+filepath.Base(f), f, 0o644))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: package files: %w", ErrInternal, err)
	}
	return nil
}
