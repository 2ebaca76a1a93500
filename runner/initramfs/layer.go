// Package initramfs writes deterministic newc cpio archives ("layers") for
// Linux initramfs images.
//
// A Layer is a set of entries (regular files from the host or from memory,
// directories, symlinks, character devices) keyed by their path inside the
// archive. Writing a layer produces byte-identical output for identical
// input, whatever order the entries were added in:
//
//   - entries are sorted by path (a parent always sorts before its children);
//   - every parent directory is created implicitly (mode 0755) unless it was
//     added explicitly;
//   - mtime, uid, gid and device numbers are 0, inode numbers are assigned
//     1, 2, 3, ... in path order, nlink is 2 for directories and 1 otherwise;
//   - file contents are read from the host only when the layer is written.
//
// The Linux kernel accepts several cpio archives concatenated (later entries
// overwrite earlier ones), so a runner builds a cached base layer (init and
// static files) once and appends a thin per-test layer (test binary,
// testdata, config) with [Concat]. [ReadArchives] reads such a concatenation
// back the way the kernel does.
//
// Beware when layering: the kernel applies a directory record's mode to an
// existing directory, so an implicit "tmp" (0755) in a test layer would
// reset a base layer's "tmp" (1777). Declare directories that a lower layer
// provides with AssumeDir: they act as parents but are not written.
//
// The encoding itself is done by u-root's pkg/cpio (newc format).
//
// Limits: paths are archive-relative, slash-separated and clean ("bin/init",
// not "/bin/init", "./bin/init" or "bin/../init"), at most [MaxPathLen]
// bytes; a path can be added only once; files are limited to 4 GiB - 1 by
// the newc format; hard links are not supported (every file is stored with
// its own contents).
package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// MaxPathLen is the longest archive path accepted, in bytes (the kernel's
// PATH_MAX minus the terminating NUL).
const MaxPathLen = 4095

// maxFileSize is the largest file the newc format can describe.
const maxFileSize = 1<<32 - 1

// Sentinel errors, wrapped by the errors the Layer methods return.
var (
	// ErrBadPath reports an archive path that is empty, absolute, not clean,
	// contains "..", a NUL byte, or is too long.
	ErrBadPath = errors.New("invalid archive path")
	// ErrDuplicate reports a path added twice.
	ErrDuplicate = errors.New("duplicate archive path")
	// ErrNotDir reports a path whose parent is not a directory in the layer.
	ErrNotDir = errors.New("parent is not a directory")
	// ErrBadMode reports a mode with bits other than permissions,
	// setuid, setgid and sticky.
	ErrBadMode = errors.New("invalid mode")
	// ErrUnsupported reports a host file type that cannot be stored (device,
	// socket, named pipe) or a file too large for the newc format.
	ErrUnsupported = errors.New("unsupported file")
)

// Default modes used for implicit directories and for files and
// directories added by AddTree.
const (
	DirMode  fs.FileMode = 0o755
	FileMode fs.FileMode = 0o644
	ExecMode fs.FileMode = 0o755
)

type kind int

const (
	kindDir kind = iota
	kindFile
	kindBytes
	kindSymlink
	kindCharDev
)

type entry struct {
	kind     kind
	mode     fs.FileMode // allowedModeBits only
	src      string      // kindFile: host path
	data     []byte      // kindBytes: contents; kindSymlink: target
	major    uint32      // kindCharDev
	minor    uint32      // kindCharDev
	implicit bool        // kindDir created as a parent of another entry
	assumed  bool        // kindDir provided by a lower layer: not written
}

// Layer is a set of archive entries. The zero value is an empty layer ready
// to use. A Layer is not safe for concurrent use.
type Layer struct {
	entries map[string]*entry
}

// NewLayer returns an empty layer.
func NewLayer() *Layer { return &Layer{} }

// ValidatePath reports whether p is acceptable as an archive path; the error
// wraps ErrBadPath.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrBadPath)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: %.40q...: longer than %d bytes", ErrBadPath, p, MaxPathLen)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%w: %q: contains NUL", ErrBadPath, p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: %q: absolute (archive paths are relative to the root, e.g. %q)", ErrBadPath, p, strings.TrimLeft(p, "/"))
	case p == "." || p == "..":
		return fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%w: %q: contains \"..\"", ErrBadPath, p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Errorf("%w: %q: not clean (want %q)", ErrBadPath, p, path.Clean(p))
	}
	return nil
}

// allowedModeBits are the mode bits a caller may pass: Go's permission,
// setuid, setgid and sticky bits, and their Unix spellings 0o4000, 0o2000,
// 0o1000 (so 0o1777 and 0o777|fs.ModeSticky are the same mode).
const allowedModeBits = 0o7777 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func checkMode(m fs.FileMode) error {
	if m&^allowedModeBits != 0 {
		return fmt.Errorf("%w: %v: only permission, setuid, setgid and sticky bits are allowed", ErrBadMode, m)
	}
	return nil
}

// add inserts e at p after checking the path, duplicates and parents.
func (l *Layer) add(p string, e *entry) error {
	if err := ValidatePath(p); err != nil {
		return err
	}
	if err := checkMode(e.mode); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if l.entries == nil {
		l.entries = make(map[string]*entry)
	}
	if old, ok := l.entries[p]; ok {
		// An explicit directory may replace an implicit or assumed one.
		if !((old.implicit || old.assumed) && e.kind == kindDir) {
			return fmt.Errorf("%w: %q", ErrDuplicate, p)
		}
	}
	if err := l.ensureParents(p); err != nil {
		return err
	}
	l.entries[p] = e
	return nil
}

// ensureParents creates the missing parents of p as implicit directories.
func (l *Layer) ensureParents(p string) error {
	var missing []string
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if e, ok := l.entries[d]; ok {
			if e.kind != kindDir {
				return fmt.Errorf("%q: %w: %q", p, ErrNotDir, d)
			}
			break
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		l.entries[d] = &entry{kind: kindDir, mode: DirMode, implicit: true}
	}
	return nil
}

// AddFile adds the host file src (symlinks followed) as a regular file at
// dst with the given mode. The contents are read when the layer is written.
func (l *Layer) AddFile(dst, src string, mode fs.FileMode) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("initramfs: %s: %w", dst, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initramfs: %s: %w: %s is %v, not a regular file", dst, ErrUnsupported, src, fi.Mode().Type())
	}
	if fi.Size() > maxFileSize {
		return fmt.Errorf("initramfs: %s: %w: %s is %d bytes, newc allows at most %d", dst, ErrUnsupported, src, fi.Size(), int64(maxFileSize))
	}
	if err := l.add(dst, &entry{kind: kindFile, mode: mode, src: src}); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// AddBytes adds a regular file at dst with the given contents and mode. The
// slice is retained: do not modify it until the layer has been written.
func (l *Layer) AddBytes(dst string, data []byte, mode fs.FileMode) error {
	if len(data) > maxFileSize {
		return fmt.Errorf("initramfs: %s: %w: %d bytes, newc allows at most %d", dst, ErrUnsupported, len(data), int64(maxFileSize))
	}
	if err := l.add(dst, &entry{kind: kindBytes, mode: mode, data: data}); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// AddDir adds a directory at dst with the given mode. A directory that
// already exists only implicitly (as a parent) takes this mode; adding the
// same directory explicitly twice is an error.
func (l *Layer) AddDir(dst string, mode fs.FileMode) error {
	if err := l.add(dst, &entry{kind: kindDir, mode: mode}); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// AssumeDir declares that a lower layer provides the directory p (and its
// parents): entries can be added below it without writing a directory record
// that would reset its mode. Assuming an existing directory is a no-op;
// AddDir can still replace an assumed directory.
func (l *Layer) AssumeDir(p string) error {
	if err := ValidatePath(p); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if l.entries == nil {
		l.entries = make(map[string]*entry)
	}
	var missing []string
	for d := p; d != "."; d = path.Dir(d) {
		if e, ok := l.entries[d]; ok {
			if e.kind != kindDir {
				return fmt.Errorf("initramfs: %q: %w: %q", p, ErrNotDir, d)
			}
			break
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		l.entries[d] = &entry{kind: kindDir, mode: DirMode, assumed: true}
	}
	return nil
}

// AddSymlink adds a symbolic link at dst pointing to target. The target is
// stored verbatim (it is a guest path; it may be absolute or dangle).
func (l *Layer) AddSymlink(dst, target string) error {
	if target == "" || len(target) > MaxPathLen || strings.ContainsRune(target, 0) {
		return fmt.Errorf("initramfs: %s: %w: symlink target %.40q", dst, ErrBadPath, target)
	}
	if err := l.add(dst, &entry{kind: kindSymlink, mode: 0o777, data: []byte(target)}); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// AddCharDev adds a character device node at dst (e.g. "dev/console", 5, 1).
func (l *Layer) AddCharDev(dst string, mode fs.FileMode, major, minor uint32) error {
	if err := l.add(dst, &entry{kind: kindCharDev, mode: mode, major: major, minor: minor}); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// AddTree adds the contents of the host directory srcDir under dstDir
// ("." for the archive root), recursively, e.g. a package's testdata/.
//
// Symlinks are followed (so a Bazel runfiles tree stores real contents);
// a symlink cycle is an error. Modes are normalized so the output does not
// depend on the host's umask: directories get DirMode, files with any
// execute bit ExecMode, other files FileMode. Directories that already exist
// in the layer are reused; a file that already exists is ErrDuplicate.
// Devices, sockets and named pipes are ErrUnsupported.
func (l *Layer) AddTree(dstDir, srcDir string) error {
	if dstDir != "." {
		if err := l.ensureDir(dstDir); err != nil {
			return err
		}
	}
	return l.addTree(dstDir, srcDir, nil)
}

func (l *Layer) ensureDir(p string) error {
	if e, ok := l.entries[p]; ok && e.kind == kindDir {
		return nil
	}
	return l.AddDir(p, DirMode)
}

func (l *Layer) addTree(dstDir, srcDir string, visiting []os.FileInfo) error {
	fi, err := os.Stat(srcDir)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	for _, v := range visiting {
		if os.SameFile(v, fi) {
			return fmt.Errorf("initramfs: %s: %w: symlink cycle", srcDir, ErrUnsupported)
		}
	}
	visiting = append(visiting, fi)
	des, err := os.ReadDir(srcDir)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	for _, de := range des {
		src := filepath.Join(srcDir, de.Name())
		dst := path.Join(dstDir, de.Name())
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		switch {
		case fi.IsDir():
			if err := l.ensureDir(dst); err != nil {
				return err
			}
			if err := l.addTree(dst, src, visiting); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			mode := FileMode
			if fi.Mode()&0o111 != 0 {
				mode = ExecMode
			}
			if err := l.AddFile(dst, src, mode); err != nil {
				return err
			}
		default:
			return fmt.Errorf("initramfs: %s: %w: %v", src, ErrUnsupported, fi.Mode().Type())
		}
	}
	return nil
}

// Paths returns the paths written by the layer, implicit directories
// included and assumed ones excluded, in the order they are written.
func (l *Layer) Paths() []string {
	ps := make([]string, 0, len(l.entries))
	for p, e := range l.entries {
		if !e.assumed {
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	return ps
}

// Len returns the number of entries written, implicit directories included.
func (l *Layer) Len() int { return len(l.Paths()) }

// unixMode converts permission, setuid, setgid and sticky bits of m to
// their Unix values.
func unixMode(m fs.FileMode) uint64 {
	u := uint64(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		u |= cpio.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= cpio.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= cpio.S_ISVTX
	}
	return u
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteTo writes the layer as one newc cpio archive, trailer included, to
// w. It implements io.WriterTo. An error while reading a host file leaves a
// truncated archive in w.
func (l *Layer) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	rw := cpio.Newc.Writer(bw)
	for i, p := range l.Paths() {
		e := l.entries[p]
		info := cpio.Info{
			Ino:   uint64(i + 1),
			Mode:  unixMode(e.mode),
			NLink: 1,
			Name:  p,
		}
		var rec cpio.Record
		var closer io.Closer
		switch e.kind {
		case kindDir:
			info.Mode |= cpio.S_IFDIR
			info.NLink = 2
			rec = cpio.Record{Info: info}
		case kindBytes:
			info.Mode |= cpio.S_IFREG
			rec = cpio.StaticRecord(e.data, info)
		case kindSymlink:
			info.Mode |= cpio.S_IFLNK
			rec = cpio.StaticRecord(e.data, info)
		case kindCharDev:
			info.Mode |= cpio.S_IFCHR
			info.Rmajor, info.Rminor = uint64(e.major), uint64(e.minor)
			rec = cpio.Record{Info: info}
		case kindFile:
			f, err := os.Open(e.src)
			if err != nil {
				return cw.n, fmt.Errorf("initramfs: %s: %w", p, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return cw.n, fmt.Errorf("initramfs: %s: %w", p, err)
			}
			if !fi.Mode().IsRegular() || fi.Size() > maxFileSize {
				f.Close()
				return cw.n, fmt.Errorf("initramfs: %s: %w: %s changed since it was added", p, ErrUnsupported, e.src)
			}
			info.Mode |= cpio.S_IFREG
			info.FileSize = uint64(fi.Size())
			rec = cpio.Record{ReaderAt: io.NewSectionReader(f, 0, fi.Size()), Info: info}
			closer = f
		}
		err := rw.WriteRecord(cpio.MakeReproducible(rec))
		if closer != nil {
			closer.Close()
		}
		if err != nil {
			return cw.n, fmt.Errorf("initramfs: writing %s: %w", p, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, fmt.Errorf("initramfs: writing trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("initramfs: %w", err)
	}
	return cw.n, nil
}
