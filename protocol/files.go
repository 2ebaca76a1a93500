package protocol

import (
	"fmt"
	"io"
	"os"
	"path"
)

// fileState checks and writes the File frames of one session: the chunks
// of a file are consecutive, a path comes back never, and the totals stay
// within the limits.
type fileState struct {
	sink     FileSink
	maxBytes int64
	maxFiles int
	seen     map[string]bool
	cur      string
	w        io.WriteCloser
	count    int
	total    int64
}

func newFileState(o CollectOptions) *fileState {
	fs := &fileState{sink: o.Files, maxBytes: o.MaxFileBytes, maxFiles: o.MaxFiles, seen: map[string]bool{}}
	if fs.maxBytes <= 0 {
		fs.maxBytes = DefaultMaxFileBytes
	}
	if fs.maxFiles <= 0 {
		fs.maxFiles = DefaultMaxFiles
	}
	return fs
}

// chunk handles one File payload.
func (fs *fileState) chunk(p []byte) error {
	c, err := DecodeFileChunk(p)
	if err != nil {
		return err
	}
	if c.Path != fs.cur {
		if fs.seen[c.Path] {
			return fmt.Errorf("%w: %s sent twice", ErrBadFile, c.Path)
		}
		if err := fs.closeCur(); err != nil {
			return err
		}
		if fs.count++; fs.count > fs.maxFiles {
			return fmt.Errorf("%w: more than %d files", ErrBadFile, fs.maxFiles)
		}
		fs.seen[c.Path] = true
		fs.cur = c.Path
		if fs.sink != nil {
			w, err := fs.sink.Create(c.Path)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBadFile, err)
			}
			fs.w = w
		}
	}
	if fs.total += int64(len(c.Data)); fs.total > fs.maxBytes {
		return fmt.Errorf("%w: more than %d bytes in total", ErrBadFile, fs.maxBytes)
	}
	if fs.w != nil {
		if _, err := fs.w.Write(c.Data); err != nil {
			return fmt.Errorf("%w: write %s: %v", ErrBadFile, c.Path, err)
		}
	}
	return nil
}

func (fs *fileState) closeCur() error {
	if fs.w == nil {
		return nil
	}
	err := fs.w.Close()
	fs.w = nil
	if err != nil {
		return fmt.Errorf("%w: close %s: %v", ErrBadFile, fs.cur, err)
	}
	return nil
}

func (fs *fileState) close() error { return fs.closeCur() }

// DirSink is a FileSink writing below a host directory through os.Root, so
// no path (nor a symlink already in the directory) can lead outside it.
type DirSink struct {
	// Dir is the outputs directory; it is created if missing.
	Dir string
}

// Create implements FileSink.
func (d DirSink) Create(name string) (io.WriteCloser, error) {
	if err := ValidOutputPath(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(d.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	return root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}
