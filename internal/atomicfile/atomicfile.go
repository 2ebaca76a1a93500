// Package atomicfile replaces files atomically: the new content goes to a
// temporary file in the target's directory (so the rename stays on one
// file system), which is renamed over the target only once it is complete.
// Readers see the old file or the new one, never a part of either, and a
// failed write leaves no temporary file behind.
//
// The temporary file is created with the target's permissions, before the
// umask (like os.WriteFile), and named "."+base+".tmp"+random, hidden from
// globs of the directory.
//
// Nothing is fsynced: the files written this way are caches and build
// outputs that a crash may lose and a later run makes again. A caller that
// needs the content on disk calls File.Sync before File.Commit.
package atomicfile

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// File is a temporary file that replaces its target on Commit.
type File struct {
	f      *os.File
	target string
	done   bool // committed or aborted
}

// maxTries bounds the attempts at a fresh temporary name.
const maxTries = 10000

// Create starts replacing path: writes go to a new temporary file in path's
// directory, created with perm (before the umask). Commit renames it to
// path; Abort removes it. Defer Abort right after Create: it does nothing
// after a Commit.
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	for range maxTries {
		name := filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &File{f: f, target: path}, nil
	}
	return nil, &os.PathError{Op: "createtemp", Path: path, Err: os.ErrExist}
}

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// ReadFrom copies r to the temporary file (with the kernel's help where it
// can: io.Copy uses it).
func (f *File) ReadFrom(r io.Reader) (int64, error) { return f.f.ReadFrom(r) }

// Sync flushes the temporary file to disk (see the package comment).
func (f *File) Sync() error { return f.f.Sync() }

// Name is the temporary file's path.
func (f *File) Name() string { return f.f.Name() }

// Commit closes the temporary file and renames it to the target. On error
// the temporary file is removed and the target is left as it was.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: " + f.target + ": already committed or aborted")
	}
	f.done = true
	err := f.f.Close()
	if err == nil {
		err = os.Rename(f.f.Name(), f.target)
	}
	if err != nil {
		os.Remove(f.f.Name())
	}
	return err
}

// Abort closes and removes the temporary file, unless Commit or Abort ran
// already.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	os.Remove(f.f.Name())
}

// WriteFile writes data to path atomically, like os.WriteFile.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes path atomically with what fill writes.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fill(f); err != nil {
		return err
	}
	return f.Commit()
}

// Produce replaces path atomically with a file another program writes
// (e.g. `go build -o`): produce gets the path of an empty temporary file,
// created with perm, to overwrite or replace. Its error is returned as it
// is.
func Produce(path string, perm os.FileMode, produce func(tmp string) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := f.f.Close(); err != nil {
		return err
	}
	if err := produce(f.Name()); err != nil {
		return err
	}
	f.done = true
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
