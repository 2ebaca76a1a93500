package guestinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// NinePShare is the LayerShare of a real guest: a read-only 9p share over
// virtio, found by its mount tag in sysfs, mounted detached (never in the
// mount table the test sees).
type NinePShare struct {
	// SysRoot is where sysfs is mounted ("/sys").
	SysRoot string
	// ProcRoot is where proc is mounted ("/proc").
	ProcRoot string
}

// shareOptions are the share's 9p options: 512 KiB per request; cache=mmap,
// so that the layer file can be mapped and read through the page cache
// with read-ahead. A 4.6 MB file in a cold-booted guest under TCG here,
// measured: read with cache=none in 270-430 ms; mapped with cache=mmap and
// written out, 40-85 ms with the mount.
var shareOptions = [][2]string{{"trans", "virtio"}, {"version", "9p2000.L"}, {"msize", "524288"}, {"cache", "mmap"}}

// ErrNoShare is wrapped when a template's layer share is not there.
var ErrNoShare = errors.New("no layer share")

// Check says whether the kernel has 9p over virtio and a virtio 9p device
// tagged tag: a template checks it before it waits, so that one that
// could not take a shared layer is never saved.
func (n NinePShare) Check(tag string) error {
	fix := fmt.Sprintf("the guest kernel needs CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS (the default kernels have them) and the VM a virtio-9p device tagged %q (the runner adds it to templates)", tag)
	fss, err := os.ReadFile(filepath.Join(orString(n.ProcRoot, "/proc"), "filesystems"))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoShare, err)
	}
	if !bytes.Contains(fss, []byte("\t9p\n")) {
		return fmt.Errorf("%w: the kernel has no 9p file system: %s", ErrNoShare, fix)
	}
	tags, _ := filepath.Glob(filepath.Join(orString(n.SysRoot, "/sys"), "bus/virtio/drivers/9pnet_virtio/*/mount_tag"))
	var seen []string
	for _, p := range tags {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		t := strings.TrimRight(string(b), "\x00\n")
		if t == tag {
			return nil
		}
		seen = append(seen, t)
	}
	return fmt.Errorf("%w: no virtio 9p device tagged %q (tags: %q): %s", ErrNoShare, tag, seen, fix)
}

// Map mounts the share tagged tag read-only and detached (the new mount
// API: no mount point, nothing in the mount table), opens its layer file
// and maps it, populated. The returned closer unmaps and closes it, which
// also tears the mount down.
func (n NinePShare) Map(tag string) ([]byte, io.Closer, error) {
	fail := func(what string, err error) ([]byte, io.Closer, error) {
		return nil, nil, fmt.Errorf("layer share %q: %s: %w", tag, what, err)
	}
	fsfd, err := unix.Fsopen("9p", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fail("fsopen 9p", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", tag); err != nil {
		return fail("source", err)
	}
	for _, o := range shareOptions {
		if err := unix.FsconfigSetString(fsfd, o[0], o[1]); err != nil {
			return fail(o[0]+"="+o[1], err)
		}
	}
	if err := unix.FsconfigSetFlag(fsfd, "ro"); err != nil {
		return fail("ro", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fail("mount", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fail("fsmount", err)
	}
	defer unix.Close(mfd)
	fd, err := unix.Openat(mfd, protocol.LayerShareFile, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open "+protocol.LayerShareFile, err)
	}
	f := os.NewFile(uintptr(fd), protocol.LayerShareFile)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fail("stat", err)
	}
	if st.Size() == 0 {
		return nil, f, nil
	}
	// MAP_POPULATE: the kernel reads the file in ahead of the extraction,
	// without a page fault per page.
	b, err := unix.Mmap(fd, 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		f.Close()
		return fail(fmt.Sprintf("map %d bytes", st.Size()), err)
	}
	return b, &mappedFile{f: f, b: b}, nil
}

// mappedFile is a mapped layer file: Close unmaps and closes it.
type mappedFile struct {
	f *os.File
	b []byte
}

func (m *mappedFile) Close() error {
	err := unix.Munmap(m.b)
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
