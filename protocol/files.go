package protocol

import (
	"fmt"
	"io"
	"os"
	"path"
)

// OutputTally counts a session's output files against its limits: every
// file and every directory it needs (each path prefix, once) is one entry
// against MaxEntries, and its bytes count against MaxBytes. The guest keeps
// one to refuse, with a message, what the host would refuse; the host keeps
// one to hold a guest that does not. The zero value uses DefaultMaxFiles and
// DefaultMaxFileBytes.
type OutputTally struct {
	// MaxEntries bounds files plus directories (0: DefaultMaxFiles).
	MaxEntries int
	// MaxBytes bounds the files' total size (0: DefaultMaxFileBytes).
	MaxBytes int64
	// Files, Dirs and Bytes are what was counted so far.
	Files, Dirs int
	Bytes       int64
	dirs        map[string]bool
}

func (t *OutputTally) limits() (int, int64) {
	entries, bytes := t.MaxEntries, t.MaxBytes
	if entries <= 0 {
		entries = DefaultMaxFiles
	}
	if bytes <= 0 {
		bytes = DefaultMaxFileBytes
	}
	return entries, bytes
}

// Add checks path p (ValidOutputPath) and counts it with size bytes, or
// counts nothing and fails with ErrBadFile when it would go over a limit.
func (t *OutputTally) Add(p string, size int64) error {
	if err := ValidOutputPath(p); err != nil {
		return err
	}
	maxEntries, maxBytes := t.limits()
	var fresh []string
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if !t.dirs[d] {
			fresh = append(fresh, d)
		}
	}
	if n := t.Files + t.Dirs + len(fresh) + 1; n > maxEntries {
		return fmt.Errorf("%w: %s: more than %d files and directories", ErrBadFile, p, maxEntries)
	}
	if size < 0 || size > maxBytes-t.Bytes {
		return fmt.Errorf("%w: %s: more than %d bytes in total", ErrBadFile, p, maxBytes)
	}
	if t.dirs == nil {
		t.dirs = map[string]bool{}
	}
	for _, d := range fresh {
		t.dirs[d] = true
	}
	t.Files++
	t.Dirs += len(fresh)
	t.Bytes += size
	return nil
}

// AddBytes counts n more bytes of the last file, or fails with ErrBadFile
// when the total would go over MaxBytes.
func (t *OutputTally) AddBytes(n int64) error {
	if _, maxBytes := t.limits(); n > maxBytes-t.Bytes {
		return fmt.Errorf("%w: more than %d bytes in total", ErrBadFile, maxBytes)
	}
	t.Bytes += n
	return nil
}

// fileState checks and writes the File frames of one session: the chunks
// of a file are consecutive, a path comes back never, and the totals stay
// within the limits (an OutputTally).
type fileState struct {
	sink  FileSink
	tally OutputTally
	seen  map[string]bool
	cur   string
	w     io.WriteCloser
}

func newFileState(o CollectOptions) *fileState {
	return &fileState{sink: o.Files, tally: OutputTally{MaxEntries: o.MaxFiles, MaxBytes: o.MaxFileBytes}, seen: map[string]bool{}}
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
		if err := fs.tally.Add(c.Path, 0); err != nil {
			return err
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
	if err := fs.tally.AddBytes(int64(len(c.Data))); err != nil {
		return fmt.Errorf("%s: %w", c.Path, err)
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
