package kbuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

// A build tree is what a build leaves in its source directory beyond the
// pristine source tarball: objects, generated headers, .config, Kbuild's
// .cmd files, the patched sources. Saved as a gzip'd tar (TreeFile in the
// cache entry) with nanosecond modification times, it lets a later build
// (Options.BaseTree) extract the tarball, extract the tree over it and run
// make, which then rebuilds only what a configuration change touches:
// Kbuild's .cmd files and dependency lists use paths relative to the
// source directory (an in-tree build), so a tree extracted at another path
// is up to date. The exception is objtool's (tools/build, not Kbuild): its
// .cmd and .d files name the absolute directory, and a rebuilt objtool is a
// prerequisite of every object, so extraction rewrites the build's
// directory (TreeMeta.Dir) to the new one in every *.cmd and *.d file
// (relocate); object contents (debug strings) may keep the old one, which
// make never reads.

// TreeFile is the build tree's file name in a cache entry and in --out.
const TreeFile = "tree.tar.gz"

// treeMetaPath is where the tree records what it was built from, relative
// to the source directory (and so inside the tree).
const treeMetaPath = ".rules_go_vm/tree.json"

// ErrBaseTree reports an unusable base tree.
var ErrBaseTree = errors.New("unusable base build tree")

// TreeMeta is what a build tree records about its build.
type TreeMeta struct {
	// Key is the cache key of the build that made the tree.
	Key string `json:"key"`
	// Arch is its guest architecture.
	Arch arch.Arch `json:"arch"`
	// SourceSHA256 is the hex SHA-256 of its source tarball.
	SourceSHA256 string `json:"source_sha256"`
	// Fragments are every fragment its configuration was checked
	// against, in merge order (a base tree's, then the build's own).
	Fragments []TreeFragment `json:"fragments"`
	// Patches names the patches applied to its source (their result is
	// in the tree).
	Patches []string `json:"patches,omitempty"`
	// Deleted lists files of the tarball the build removed (a patch that
	// deletes a file); extracting the tree removes them again.
	Deleted []string `json:"deleted,omitempty"`
	// Dir is the absolute, symlink-free source directory the build ran in,
	// which extraction rewrites to its own in make's files (relocate).
	Dir string `json:"dir"`
}

// relocates reports whether extracting entry name into dir rewrites the
// tree's build directory in it: name is one of the files make reads
// commands and dependencies from (Kbuild's and tools/build's *.cmd, gcc's
// *.d) and dir is another directory.
func (m *TreeMeta) relocates(name, dir string) bool {
	base := path.Base(name)
	return m.Dir != "" && m.Dir != dir && (strings.HasSuffix(base, ".cmd") || strings.HasSuffix(base, ".d"))
}

// TreeFragment is one fragment recorded in a tree.
type TreeFragment struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// parseFragments parses the recorded fragments back.
func (m *TreeMeta) parseFragments() ([]*kconfig.Fragment, error) {
	var fs []*kconfig.Fragment
	for _, tf := range m.Fragments {
		f, err := kconfig.Parse(tf.Name, strings.NewReader(tf.Content))
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// fileState is what a snapshot remembers of one file.
type fileState struct {
	mtime int64 // UnixNano
	size  int64
}

// snapshot records every regular file and symlink below dir.
func snapshot(dir string) (map[string]fileState, error) {
	files := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[rel] = fileState{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
		return nil
	})
	return files, err
}

// treeStats describes a written tree.
type treeStats struct {
	Files   int
	Bytes   int64 // uncompressed file contents
	Written int64 // the archive's size
	Seconds float64
}

// writeTree writes to dst a gzip'd tar of meta (first, as treeMetaPath,
// with Deleted filled in: the files of before that are gone) and of every
// regular file and symlink below dir that is not in before or differs from
// it (size or mtime), with nanosecond mtimes (PAX), in path order.
func writeTree(dir string, before map[string]fileState, dst string, meta *TreeMeta) (st treeStats, err error) {
	start := time.Now()
	after, err := snapshot(dir)
	if err != nil {
		return st, err
	}
	var deleted []string
	var names []string
	for rel, s := range after {
		if b, ok := before[rel]; !ok || b != s {
			names = append(names, rel)
		}
	}
	for rel := range before {
		if _, ok := after[rel]; !ok {
			deleted = append(deleted, rel)
		}
	}
	sort.Strings(names)
	sort.Strings(deleted)
	meta.Deleted = deleted
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return st, err
	}

	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(dst)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	// BestSpeed: the tree is mostly object files, which compress about as
	// well at level 1 as at 6, several times faster (kernel/README.md).
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return st, err
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: treeMetaPath, Mode: 0o644, Size: int64(len(mb)), ModTime: start, Format: tar.FormatPAX}); err != nil {
		return st, err
	}
	if _, err := tw.Write(mb); err != nil {
		return st, err
	}
	for _, rel := range names {
		p := filepath.Join(dir, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return st, err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return st, err
			}
		} else if !fi.Mode().IsRegular() {
			continue
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return st, err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX // keeps the nanoseconds make compares
		if err := tw.WriteHeader(hdr); err != nil {
			return st, fmt.Errorf("tree: %s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			in, err := os.Open(p)
			if err != nil {
				return st, err
			}
			n, err := io.Copy(tw, in)
			in.Close()
			if err != nil {
				return st, fmt.Errorf("tree: %s: %w", rel, err)
			}
			st.Bytes += n
		}
		st.Files++
	}
	if err := tw.Close(); err != nil {
		return st, err
	}
	if err := zw.Close(); err != nil {
		return st, err
	}
	if err := bw.Flush(); err != nil {
		return st, err
	}
	if fi, err := f.Stat(); err == nil {
		st.Written = fi.Size()
	}
	if err := f.Close(); err != nil {
		return st, err
	}
	st.Seconds = time.Since(start).Seconds()
	return st, nil
}

// readTreeMeta reads the metadata of the tree archive at p (its first
// entry).
func readTreeMeta(p string) (*TreeMeta, error) {
	var meta *TreeMeta
	err := walkTree(p, func(hdr *tar.Header, r io.Reader) (bool, error) {
		if hdr.Name != treeMetaPath {
			return false, nil
		}
		meta = &TreeMeta{}
		if err := json.NewDecoder(r).Decode(meta); err != nil {
			return false, fmt.Errorf("%w: %s: %s: %w", ErrBaseTree, p, treeMetaPath, err)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if meta == nil {
		return nil, fmt.Errorf("%w: %s has no %s (not a build tree written by kbuild --tree)", ErrBaseTree, p, treeMetaPath)
	}
	return meta, nil
}

// walkTree calls fn for every entry of the tree archive p until fn returns
// false or an error.
func walkTree(p string, fn func(*tar.Header, io.Reader) (bool, error)) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBaseTree, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBaseTree, p, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBaseTree, p, err)
		}
		more, err := fn(hdr, tr)
		if err != nil || !more {
			return err
		}
	}
}

// extractTree extracts the tree archive p over dir, restoring modification
// times, and removes the files meta says the build deleted.
func extractTree(p, dir string, meta *TreeMeta) error {
	err := walkTree(p, func(hdr *tar.Header, r io.Reader) (bool, error) {
		name := path.Clean(hdr.Name)
		if name == treeMetaPath {
			return true, nil
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return false, fmt.Errorf("%w: %s: entry %q leaves the tree", ErrBaseTree, p, hdr.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, err
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			// Replace, never write through: a patched source may be a
			// hard link in the tarball.
			if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(hdr.Mode)&fs.ModePerm)
			if err != nil {
				return false, err
			}
			if meta.relocates(name, dir) {
				b, err := io.ReadAll(r)
				if err == nil {
					_, err = out.Write(bytes.ReplaceAll(b, []byte(meta.Dir), []byte(dir)))
				}
				if err != nil {
					out.Close()
					return false, fmt.Errorf("%w: %s: %s: %w", ErrBaseTree, p, name, err)
				}
			} else if _, err := io.Copy(out, r); err != nil {
				out.Close()
				return false, fmt.Errorf("%w: %s: %s: %w", ErrBaseTree, p, name, err)
			}
			if err := out.Close(); err != nil {
				return false, err
			}
			if err := os.Chtimes(dst, hdr.ModTime, hdr.ModTime); err != nil {
				return false, err
			}
		case tar.TypeSymlink:
			if err := os.RemoveAll(dst); err != nil {
				return false, err
			}
			if err := os.Symlink(hdr.Linkname, dst); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("%w: %s: entry %q has type %q (want files and symlinks)", ErrBaseTree, p, hdr.Name, hdr.Typeflag)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, rel := range meta.Deleted {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
