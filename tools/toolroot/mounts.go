// Package toolroot manages the toolchain root: a debootstrapped Debian root
// that carries Bazel 7, QEMU, the cross compilers, the kernel source and DPDK,
// into which the workspace, the host Go SDK, /tmp, /dev and the caches are
// bind-mounted at the same absolute paths.
//
// It holds the parts of tools/setup and tools/bazel that are worth testing:
// reading the mount table and refusing to delete a root that still has live
// mounts (a recursive delete would walk into the workspace, the Go SDK and
// /tmp), the version pins, the apt mirror lookup and the local Bazel registry.
package toolroot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MountInfoPath is where the kernel publishes the calling process's mount table.
const MountInfoPath = "/proc/self/mountinfo"

// Marker is the file tools/setup writes at the top of every root it creates.
// Remove refuses any directory that lacks it, so a mistyped path is never
// deleted.
const Marker = ".rules_go_vm-root"

// ErrLiveMounts is returned when a root that is about to be deleted still has
// file systems mounted inside it.
var ErrLiveMounts = errors.New("live mounts inside the root")

// ErrNotARoot is returned when a directory lacks the Marker file.
var ErrNotARoot = errors.New("not a toolchain root made by tools/setup")

// Mount is one line of /proc/self/mountinfo (the fields this package uses).
type Mount struct {
	ID       int    // unique mount ID
	ParentID int    // ID of the parent mount
	Root     string // the path within the source file system that is mounted
	Point    string // mount point, relative to the process's root
	FSType   string // file system type, e.g. "proc" or "ext4"
	Source   string // mount source, e.g. "/dev/vda" or "proc"
}

// ParseMountInfo reads the mountinfo format described in proc(5). Mount
// points are unescaped (the kernel writes space, tab, newline and backslash
// as \040, \011, \012 and \134).
func ParseMountInfo(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		pre, post, ok := strings.Cut(text, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: no ' - ' separator: %q", line, text)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo line %d: too few fields: %q", line, text)
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("mountinfo line %d: bad mount ID: %w", line, err)
		}
		mounts = append(mounts, Mount{
			ID:       id,
			ParentID: parent,
			Root:     unescapeOctal(f[3]),
			Point:    unescapeOctal(f[4]),
			FSType:   g[0],
			Source:   unescapeOctal(g[1]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeOctal undoes the kernel's \NNN escaping in mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Under returns the mounts whose mount point is dir itself or lies below it,
// deepest first: the order in which they must be unmounted.
func Under(mounts []Mount, dir string) []Mount {
	dir = filepath.Clean(dir)
	var out []Mount
	for _, m := range mounts {
		p := filepath.Clean(m.Point)
		if p == dir || strings.HasPrefix(p, dir+"/") || dir == "/" {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i].Point, "/"), strings.Count(out[j].Point, "/")
		if di != dj {
			return di > dj
		}
		return out[i].ID > out[j].ID // later mounts on the same path first
	})
	return out
}

// MountTable reads the mount table from a mountinfo file (normally
// MountInfoPath).
func MountTable(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	return ParseMountInfo(f)
}

// LiveMountsError lists the mounts that keep a root from being deleted.
type LiveMountsError struct {
	Root   string
	Mounts []Mount
}

func (e *LiveMountsError) Error() string {
	var pts []string
	for _, m := range e.Mounts {
		pts = append(pts, m.Point)
	}
	return fmt.Sprintf("refusing to delete %s: %d file system(s) still mounted inside it (%s); "+
		"deleting now would also delete what they show (the workspace, the Go SDK, /tmp). "+
		"Run `tools/setup --remove`, which unmounts first", e.Root, len(e.Mounts), strings.Join(pts, ", "))
}

func (e *LiveMountsError) Unwrap() error { return ErrLiveMounts }

// Remover deletes toolchain roots safely. Its fields are injectable so tests
// can drive it without real mounts.
type Remover struct {
	// MountInfo is the mountinfo file to consult (default MountInfoPath).
	MountInfo string
	// Unmount detaches one mount point. Nil means "never unmount": Remove then
	// refuses any root with live mounts.
	Unmount func(point string) error
	// RemoveAll deletes a tree (default os.RemoveAll).
	RemoveAll func(path string) error
}

// Remove deletes root after unmounting everything below it (when r.Unmount is
// set) and checking, from a fresh read of the mount table, that nothing is
// mounted there any more. It refuses directories without the Marker file.
func (r Remover) Remove(root string) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if root == "/" {
		return fmt.Errorf("refusing to delete /: %w", ErrNotARoot)
	}
	if _, err := os.Lstat(root); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(root, Marker)); err != nil {
		return fmt.Errorf("refusing to delete %s: no %s file in it: %w", root, Marker, ErrNotARoot)
	}
	info := r.MountInfo
	if info == "" {
		info = MountInfoPath
	}
	if r.Unmount != nil {
		if err := r.UnmountAll(root); err != nil {
			return err
		}
	}
	table, err := MountTable(info)
	if err != nil {
		return err
	}
	if live := Under(table, root); len(live) > 0 {
		return &LiveMountsError{Root: root, Mounts: live}
	}
	rm := r.RemoveAll
	if rm == nil {
		rm = os.RemoveAll
	}
	if err := rm(root); err != nil {
		return fmt.Errorf("deleting %s: %w", root, err)
	}
	return nil
}

// UnmountAll unmounts every mount point at or below root, deepest first, and
// repeats (mounts can be stacked) until the table shows none or no progress
// is made.
func (r Remover) UnmountAll(root string) error {
	info := r.MountInfo
	if info == "" {
		info = MountInfoPath
	}
	for round := 0; round < 8; round++ {
		table, err := MountTable(info)
		if err != nil {
			return err
		}
		live := Under(table, root)
		if len(live) == 0 {
			return nil
		}
		var errs []error
		for _, m := range live {
			if err := r.Unmount(m.Point); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m.Point, err))
			}
		}
		if len(errs) == len(live) {
			return errors.Join(errs...)
		}
	}
	table, err := MountTable(info)
	if err != nil {
		return err
	}
	if live := Under(table, root); len(live) > 0 {
		return &LiveMountsError{Root: root, Mounts: live}
	}
	return nil
}
