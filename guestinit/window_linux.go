package guestinit

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// DevMem maps a template's layer window (protocol.LayerInWindow) through
// the kernel's /dev/mem: guest-physical memory the kernel was told not to
// use (the runner reserves it on the command line), which QEMU backs with
// each restore's own file. The mapping is made once, in the template, and
// kept: a restore reads the layer the host put there without a request, a
// fault or a file system.
type DevMem struct {
	// Path is the memory device ("/dev/mem").
	Path string
}

// Map maps size bytes at guest-physical base for reading and writing.
func (d DevMem) Map(base, size uint64) ([]byte, error) {
	path := orString(d.Path, "/dev/mem")
	if err := protocol.CheckLayerWindow(base, size); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, errors.New("layer window: none to map (size 0)")
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fix := ""
		if errors.Is(err, unix.ENOENT) {
			fix = ": the guest kernel needs CONFIG_DEVMEM (the default x86_64 kernel has it)"
		}
		return nil, fmt.Errorf("layer window: open %s: %w%s", path, err, fix)
	}
	defer unix.Close(fd)
	b, err := unix.Mmap(fd, int64(base), int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		fix := ""
		if errors.Is(err, unix.EPERM) {
			fix = ": CONFIG_STRICT_DEVMEM refuses it, so the kernel uses that memory (reserve it on the command line: memmap=, as the runner does) or CONFIG_IO_STRICT_DEVMEM is set"
		}
		return nil, fmt.Errorf("layer window: map %s at %#x, %d bytes: %w%s", path, base, size, err, fix)
	}
	return b, nil
}
