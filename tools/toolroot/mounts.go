// Package toolroot manages the toolchain root: a debootstrapped Debian root
// that carries Bazel 7, QEMU, the cross compilers, the kernel source and DPDK,
// into which the workspace, the host Go SDK, /tmp, /dev and the caches are
// bind-mounted at the same absolute paths.
//
// It holds the parts of tools/setup and tools/bazel that are worth testing:
// reading the mount table and deleting a root safely (a plain recursive delete
// would walk through the bind mounts into the workspace, the Go SDK and /tmp;
// see Remover), the version pins, the apt mirror lookup and the local Bazel
// registry.
package toolroot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
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

// ErrOtherMount is returned (wrapped, naming the path) when the delete meets a
// file or directory on another mount or device than the root itself: a live
// mount that the mount table did not show, or one made after it was read. The
// delete does not enter it, leaves it intact and stops.
var ErrOtherMount = errors.New("on another mount than the root")

// ErrLockBusy is returned when the mount lock is still held by another process
// after Remover.LockWait; nothing was unmounted or deleted.
var ErrLockBusy = errors.New("the mount lock is held by another process")

// LockName is the mount lock's file name, in the directory that holds the
// root: tools/enter flocks "$STATE/mount.lock" while it mounts into
// "$STATE/root", and Remover takes the same lock.
const LockName = "mount.lock"

// DefaultLockWait is how long Remove waits for the mount lock when
// Remover.LockWait is zero. tools/enter holds the lock only while it mounts
// (well under a second), so a longer wait means something is stuck.
const DefaultLockWait = 30 * time.Second

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
	Root   string  // the root's real path (symlinks resolved)
	Given  string  // the path the caller named, when it differs from Root
	Mounts []Mount // the live mounts at or below Root
}

// Error names the root (both paths when they differ) and the mounts, and
// says how to remove it.
func (e *LiveMountsError) Error() string {
	var pts []string
	for _, m := range e.Mounts {
		pts = append(pts, m.Point)
	}
	return fmt.Sprintf("refusing to delete %s: %d file system(s) still mounted inside it (%s); "+
		"deleting now would also delete what they show (the workspace, the Go SDK, /tmp). "+
		"Run `tools/setup --remove`, which unmounts first", describe(e.Given, e.Root), len(e.Mounts), strings.Join(pts, ", "))
}

// Unwrap makes errors.Is(err, ErrLiveMounts) true.
func (e *LiveMountsError) Unwrap() error { return ErrLiveMounts }

// describe names a root for messages: its real path, and the path it was given
// as when the two differ.
func describe(given, real string) string {
	if given == "" || given == real {
		return real
	}
	return fmt.Sprintf("%s (real path %s)", given, real)
}

// Remover deletes toolchain roots safely. Its fields are injectable so tests
// can drive it without real mounts; the delete itself is always the
// mount-safe walk described at Remove.
type Remover struct {
	// MountInfo is the mountinfo file to consult (default MountInfoPath).
	MountInfo string
	// Unmount detaches one mount point. Nil means "never unmount": Remove then
	// refuses any root with live mounts.
	Unmount func(point string) error
	// LockPath is the file Remove flocks exclusively from before it unmounts
	// until the root is gone, so that no tools/enter (tools/bazel,
	// tools/setup) can mount into the root between the check and the delete.
	// Default: LockName in the directory that holds the root as given, which
	// is tools/enter's "$STATE/mount.lock" for the root "$STATE/root" (through
	// a symlinked $STATE too: a flock belongs to the file, not the path). It is
	// created when missing.
	LockPath string
	// LockWait bounds the wait for the lock (default DefaultLockWait). After
	// it Remove fails with ErrLockBusy, having changed nothing.
	LockWait time.Duration

	// beforeEnter, when set (by tests), runs before the walk opens each
	// directory below the root, with that directory's path.
	beforeEnter func(path string)
}

// Remove deletes root after unmounting everything below it (when r.Unmount is
// set) and checking, from a fresh read of the mount table, that nothing is
// mounted there any more. It refuses directories without the Marker file, and
// a root that does not exist is no error.
//
// Symlinks are resolved first (filepath.EvalSymlinks): the mount table lists
// real paths, so a root reached through a symlinked $RULES_GO_VM_STATE or
// parent must be checked, unmounted and deleted by its real path. Messages
// name both paths when they differ. When the root itself is a symlink, the
// directory it points to is deleted and the symlink left dangling.
//
// From before the unmount until the root is gone, Remove holds the mount lock
// that tools/enter takes while it mounts (see LockPath). It waits for the lock
// at most LockWait, retrying every few milliseconds (a blocked flock(2) could
// not be given up), and then fails with ErrLockBusy having changed nothing.
//
// The delete is a walk relative to directory file descriptors (openat with
// O_DIRECTORY|O_NOFOLLOW, unlinkat), never by path, so a directory swapped for
// a symlink mid-walk is not followed: symlinks are removed themselves, never
// their targets. Every entry is compared with the root (statx: device and,
// where the kernel reports it, the mount ID; a bind mount of the same file
// system has the same device but another mount ID), and every directory again
// once it is open; an entry on another mount is not entered or removed, and
// Remove fails with ErrOtherMount naming it. The Marker file is removed last,
// so a root whose delete stopped half-way can be removed again. Remove is
// Linux-only: elsewhere it fails with errors.ErrUnsupported.
func (r Remover) Remove(root string) error {
	given, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(given)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing there, or a symlink to nothing
	}
	if err != nil {
		return fmt.Errorf("resolving %s: %w", given, err)
	}
	name := describe(given, real)
	if real == "/" {
		return fmt.Errorf("refusing to delete %s: %w", name, ErrNotARoot)
	}
	if err := checkMarker(real); err != nil {
		return fmt.Errorf("refusing to delete %s: %w", name, err)
	}
	unlock, err := lockFile(r.lockPath(given), r.lockWait())
	if err != nil {
		return fmt.Errorf("not deleting %s: %w", name, err)
	}
	defer unlock()
	if r.Unmount != nil {
		if err := r.unmountAll(given, real); err != nil {
			return err
		}
	}
	if err := r.checkUnmounted(given, real); err != nil {
		return err
	}
	if err := removeTree(real, r.beforeEnter); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// checkMarker makes sure dir holds the Marker as a regular file (a symlink
// named like it does not count).
func checkMarker(dir string) error {
	fi, err := os.Lstat(filepath.Join(dir, Marker))
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("no %s file in it: %w", Marker, ErrNotARoot)
	}
	return nil
}

// lockPath is r.LockPath or its default for the root given as given.
func (r Remover) lockPath(given string) string {
	if r.LockPath != "" {
		return r.LockPath
	}
	return filepath.Join(filepath.Dir(given), LockName)
}

// lockWait is r.LockWait or DefaultLockWait.
func (r Remover) lockWait() time.Duration {
	if r.LockWait > 0 {
		return r.LockWait
	}
	return DefaultLockWait
}

// mountTable reads r.MountInfo (default MountInfoPath).
func (r Remover) mountTable() ([]Mount, error) {
	info := r.MountInfo
	if info == "" {
		info = MountInfoPath
	}
	return MountTable(info)
}

// checkUnmounted reads the mount table afresh and fails with a
// LiveMountsError when anything is mounted at or below real.
func (r Remover) checkUnmounted(given, real string) error {
	table, err := r.mountTable()
	if err != nil {
		return err
	}
	if live := Under(table, real); len(live) > 0 {
		return &LiveMountsError{Root: real, Given: given, Mounts: live}
	}
	return nil
}

// UnmountAll unmounts every mount point at or below root (symlinks resolved,
// as the mount table lists real paths), deepest first, and repeats (mounts
// can be stacked) until the table shows none or no progress is made. It needs
// r.Unmount and takes no lock (Remove does).
func (r Remover) UnmountAll(root string) error {
	if r.Unmount == nil {
		return errors.New("UnmountAll: Remover.Unmount is nil")
	}
	given, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(given)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", given, err)
	}
	return r.unmountAll(given, real)
}

// unmountAll is UnmountAll on a resolved path.
func (r Remover) unmountAll(given, real string) error {
	for round := 0; round < 8; round++ {
		table, err := r.mountTable()
		if err != nil {
			return err
		}
		live := Under(table, real)
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
	return r.checkUnmounted(given, real)
}
