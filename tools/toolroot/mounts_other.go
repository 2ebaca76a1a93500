//go:build !linux

package toolroot

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// lockFile is Linux-only (flock(2) as tools/enter takes it).
func lockFile(path string, _ time.Duration) (func(), error) {
	return nil, fmt.Errorf("locking %s on %s: %w", path, runtime.GOOS, errors.ErrUnsupported)
}

// removeTree is Linux-only (statx mount IDs, a dirfd-relative walk).
func removeTree(root string, _ func(string)) error {
	return fmt.Errorf("deleting %s on %s: %w", root, runtime.GOOS, errors.ErrUnsupported)
}
