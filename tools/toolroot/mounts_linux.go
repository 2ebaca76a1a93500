package toolroot

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockPoll is how often lockFile retries a busy lock.
const lockPoll = 20 * time.Millisecond

// lockFile takes an exclusive flock(2) on path (created when missing): the
// lock flock(1) takes in tools/enter. It retries without blocking until wait
// has passed, then fails with ErrLockBusy; a blocked flock(2) could not be
// given up. unlock releases the lock by closing the file.
func lockFile(path string, wait time.Duration) (unlock func(), err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the mount lock: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Close(fd) }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("locking the mount lock: %w", &fs.PathError{Op: "flock", Path: path, Err: err})
		}
		if time.Now().After(deadline) {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("%w: %s is still locked after %s (a tools/enter, e.g. under tools/bazel or tools/setup, "+
				"is mounting into the root); try again", ErrLockBusy, path, wait)
		}
		time.Sleep(lockPoll)
	}
}

// fileID is where a file lives: its type, device and (kernel >= 5.8) mount.
type fileID struct {
	mode   uint32 // the S_IFMT bits
	dev    uint64
	mnt    uint64
	hasMnt bool // mnt is known (statx reported STATX_MNT_ID)
}

func (id fileID) isDir() bool { return id.mode == unix.S_IFDIR }

// String reads like "device 254:0, mount ID 27".
func (id fileID) String() string {
	s := fmt.Sprintf("device %d:%d", unix.Major(id.dev), unix.Minor(id.dev))
	if id.hasMnt {
		s += fmt.Sprintf(", mount ID %d", id.mnt)
	}
	return s
}

// identify stats name relative to dirfd without following a symlink (with
// unix.AT_EMPTY_PATH and name "", dirfd itself). statx gives the mount ID;
// where statx is missing (ENOSYS, or EPERM from an old seccomp filter) fstatat
// gives the device only.
func identify(dirfd int, name string, flags int) (fileID, error) {
	flags |= unix.AT_SYMLINK_NOFOLLOW
	var sx unix.Statx_t
	err := unix.Statx(dirfd, name, flags, unix.STATX_TYPE|unix.STATX_MNT_ID, &sx)
	if err == nil {
		return fileID{
			mode:   uint32(sx.Mode) & unix.S_IFMT,
			dev:    unix.Mkdev(sx.Dev_major, sx.Dev_minor),
			mnt:    sx.Mnt_id,
			hasMnt: sx.Mask&unix.STATX_MNT_ID != 0,
		}, nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
		return fileID{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, flags); err != nil {
		return fileID{}, err
	}
	return fileID{mode: st.Mode & unix.S_IFMT, dev: uint64(st.Dev)}, nil
}

// walker deletes a tree without leaving the root's mount.
type walker struct {
	top         fileID // the root's
	beforeEnter func(path string)
}

// check fails with ErrOtherMount when id is not on the root's device and
// mount.
func (w walker) check(path string, id fileID) error {
	if !sameMount(id, w.top) {
		return fmt.Errorf("%s is on %s but the root on %s (a live mount the mount table did not show?): "+
			"not entered, left intact: %w", path, id, w.top, ErrOtherMount)
	}
	return nil
}

// sameMount tells whether a and b are on the same device and, where both
// mount IDs are known, the same mount.
func sameMount(a, b fileID) bool {
	return a.dev == b.dev && (!a.hasMnt || !b.hasMnt || a.mnt == b.mnt)
}

// removeTree deletes the directory root (a real path: no symlinks in it) and
// everything below it on its own mount, walking by file descriptor (see
// Remover.Remove). It keeps the Marker until last and stops at the first
// error.
func removeTree(root string, beforeEnter func(string)) error {
	parent, err := unix.Open(filepath.Dir(root), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: filepath.Dir(root), Err: err}
	}
	defer unix.Close(parent)
	base := filepath.Base(root)
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: root, Err: err}
	}
	err = emptyRoot(parent, fd, root, beforeEnter)
	_ = unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(parent, base, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "rmdir", Path: root, Err: err}
	}
	return nil
}

// emptyRoot checks that the open root fd is on its parent's mount (after the
// unmount it is no mount point) and holds the Marker, then deletes all it
// holds, the Marker last.
func emptyRoot(parent, fd int, root string, beforeEnter func(string)) error {
	top, err := identify(fd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return &fs.PathError{Op: "statx", Path: root, Err: err}
	}
	w := walker{top: top, beforeEnter: beforeEnter}
	up, err := identify(parent, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return &fs.PathError{Op: "statx", Path: filepath.Dir(root), Err: err}
	}
	if !sameMount(top, up) {
		return fmt.Errorf("%s is on %s but its parent directory on %s: a mount point the mount table did not show; "+
			"not entered, left intact: %w", root, top, up, ErrOtherMount)
	}
	if m, err := identify(fd, Marker, 0); err != nil || m.mode != unix.S_IFREG {
		return fmt.Errorf("no %s file in %s: %w", Marker, root, ErrNotARoot)
	}
	if err := w.empty(fd, root, Marker); err != nil {
		return err
	}
	if err := unix.Unlinkat(fd, Marker, 0); err != nil {
		return &fs.PathError{Op: "unlink", Path: filepath.Join(root, Marker), Err: err}
	}
	return nil
}

// empty deletes every entry of the open directory fd (at path) but keep.
func (w walker) empty(fd int, path, keep string) error {
	names, err := readNames(fd)
	if err != nil {
		return &fs.PathError{Op: "getdents", Path: path, Err: err}
	}
	for _, name := range names {
		if name == keep {
			continue
		}
		if err := w.remove(fd, path, name); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the entry name of the open directory dirfd (at dir): a
// directory after emptying it, anything else (a symlink included) by
// unlinking the entry itself.
func (w walker) remove(dirfd int, dir, name string) error {
	path := filepath.Join(dir, name)
	id, err := identify(dirfd, name, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "statx", Path: path, Err: err}
	}
	if err := w.check(path, id); err != nil {
		return err
	}
	if !id.isDir() {
		return unlink(dirfd, path, name)
	}
	if w.beforeEnter != nil {
		w.beforeEnter(path)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		// No longer a directory (swapped for a symlink or a file since it
		// was stat'ed): remove the entry itself. unlinkat without
		// AT_REMOVEDIR never removes a directory and never follows a link.
		return unlink(dirfd, path, name)
	}
	if err != nil {
		return &fs.PathError{Op: "openat", Path: path, Err: err}
	}
	err = w.enter(fd, path)
	_ = unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// enter checks the open directory fd again (a mount may have appeared on it
// since it was stat'ed) and empties it.
func (w walker) enter(fd int, path string) error {
	id, err := identify(fd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return &fs.PathError{Op: "statx", Path: path, Err: err}
	}
	if err := w.check(path, id); err != nil {
		return err
	}
	return w.empty(fd, path, "")
}

// unlink removes the non-directory entry name of dirfd.
func unlink(dirfd int, path, name string) error {
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}

// readNames lists the open directory fd ("." and ".." left out).
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 16*1024)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
