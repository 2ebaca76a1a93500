package guestinit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// MountFlag is a set of mount options, independent of the OS constants
// (mapped to MS_* by the Linux mounter).
type MountFlag uint

// Mount flags.
const (
	// NoSuid ignores set-user-ID and set-group-ID bits (MS_NOSUID).
	NoSuid MountFlag = 1 << iota
	// NoExec forbids executing programs (MS_NOEXEC).
	NoExec
	// NoDev forbids device files (MS_NODEV).
	NoDev
)

// Mount is one entry of the mount table.
type Mount struct {
	// Source is the mount source ("proc", "tmpfs", ...).
	Source string
	// Target is the absolute mount point; it is created (mode 0755) if
	// missing.
	Target string
	// FSType is the filesystem type.
	FSType string
	// Flags are the mount options.
	Flags MountFlag
	// Data is the filesystem-specific option string.
	Data string
	// Optional entries may fail (e.g. the kernel lacks the filesystem): the
	// failure is reported as a diagnostic, not an error.
	Optional bool
}

// String describes m like mount(8) would.
func (m Mount) String() string {
	return fmt.Sprintf("%s on %s type %s (%s)", m.Source, m.Target, m.FSType, m.Data)
}

// BaseMounts is the mount table every guest gets, in mount order.
var BaseMounts = []Mount{
	{Source: "proc", Target: "/proc", FSType: "proc", Flags: NoSuid | NoExec | NoDev},
	{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: NoSuid | NoExec | NoDev},
	{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: NoSuid | NoExec, Data: "mode=0755"},
	{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: NoSuid | NoExec, Data: "newinstance,ptmxmode=0666,mode=0620", Optional: true},
	{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: NoSuid | NoDev, Data: "mode=1777"},
	// Tests may build and run helpers in TMPDIR: /tmp stays exec.
	{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: NoSuid | NoDev, Data: "mode=1777"},
	{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: NoSuid | NoDev, Data: "mode=0755"},
	{Source: "cgroup2", Target: "/sys/fs/cgroup", FSType: "cgroup2", Flags: NoSuid | NoExec | NoDev, Optional: true},
}

// HugeMounts returns the hugetlbfs entries for the given page sizes ("2M",
// "1G"): the first size at /dev/hugepages, every size at
// /dev/hugepages-SIZE. They are not optional: a test that asked for huge
// pages needs them.
func HugeMounts(sizes []string) []Mount {
	var ms []Mount
	for i, s := range sizes {
		m := Mount{Source: "hugetlbfs", FSType: "hugetlbfs", Flags: NoSuid | NoDev, Data: "pagesize=" + s}
		if i == 0 {
			m.Target = "/dev/hugepages"
			ms = append(ms, m)
		}
		m.Target = "/dev/hugepages-" + s
		ms = append(ms, m)
	}
	return ms
}

// MountTable returns the full mount table for the given huge page sizes.
func MountTable(hugePageSizes []string) []Mount {
	return append(append([]Mount(nil), BaseMounts...), HugeMounts(hugePageSizes)...)
}

// Mounter is the interface over the mount system calls, so the mount logic
// runs against a fake in tests.
type Mounter interface {
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// Mount mounts source on target.
	Mount(source, target, fstype string, flags MountFlag, data string) error
	// Unmount unmounts target; lazy detaches it even if busy (MNT_DETACH).
	Unmount(target string, lazy bool) error
}

// Unmount retry policy.
const (
	// UnmountRetries is how often Teardown retries an unmount failing with
	// EBUSY.
	UnmountRetries = 5
	// UnmountBackoff is the pause before the first retry; it doubles.
	UnmountBackoff = 10 * time.Millisecond
)

// Mounted is the set of mounts done by MountAll, for Teardown.
type Mounted struct {
	m     Mounter
	sleep func(time.Duration)
	done  []Mount
}

// MountAll mounts table in order with m. A failing optional entry is
// reported through diag and skipped; a failing mandatory one stops and
// returns the error, together with what was mounted so far (to tear down).
// sleep is used between unmount retries (nil: time.Sleep).
func MountAll(m Mounter, table []Mount, diag func(string), sleep func(time.Duration)) (*Mounted, error) {
	if sleep == nil {
		sleep = time.Sleep
	}
	ms := &Mounted{m: m, sleep: sleep}
	for _, e := range table {
		err := m.MkdirAll(e.Target, 0o755)
		if err == nil {
			err = m.Mount(e.Source, e.Target, e.FSType, e.Flags, e.Data)
		}
		if err != nil {
			err = fmt.Errorf("mount %v: %w", e, err)
			if e.Optional {
				diag("optional " + err.Error())
				continue
			}
			return ms, err
		}
		ms.done = append(ms.done, e)
	}
	return ms, nil
}

// Targets returns the mounted targets in mount order.
func (ms *Mounted) Targets() []string {
	var t []string
	for _, e := range ms.done {
		t = append(t, e.Target)
	}
	return t
}

// Teardown unmounts everything in reverse order with lazy unmounts,
// retrying EBUSY UnmountRetries times with a doubling backoff. It returns
// all errors joined.
func (ms *Mounted) Teardown() error {
	var errs []error
	for i := len(ms.done) - 1; i >= 0; i-- {
		target := ms.done[i].Target
		backoff := UnmountBackoff
		var err error
		for try := 0; ; try++ {
			err = ms.m.Unmount(target, true)
			if err == nil || !errors.Is(err, syscall.EBUSY) || try == UnmountRetries {
				break
			}
			ms.sleep(backoff)
			backoff *= 2
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", target, err))
		}
	}
	ms.done = nil
	return errors.Join(errs...)
}
