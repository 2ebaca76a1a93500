package vsock

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vhostVsockSetGuestCID is VHOST_VSOCK_SET_GUEST_CID: _IOW(VHOST_VIRTIO
// 0xAF, 0x60, __u64).
const vhostVsockSetGuestCID = 0x4008AF60

// OpenVhostDevice opens the kernel's vhost-vsock device at path
// (DefaultVhostDevice) for Allocator.Open. The descriptor is not
// close-on-exec-free: pass it to QEMU through exec.Cmd.ExtraFiles.
func OpenVhostDevice(path string) func() (VhostDevice, error) {
	return func() (VhostDevice, error) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		return vhostFile{f: f}, nil
	}
}

type vhostFile struct{ f *os.File }

func (v vhostFile) File() *os.File { return v.f }

func (v vhostFile) Close() error { return v.f.Close() }

func (v vhostFile) SetGuestCID(cid uint64) error {
	c := cid
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, v.f.Fd(), vhostVsockSetGuestCID, uintptr(unsafe.Pointer(&c)))
	switch errno {
	case 0:
		return nil
	case unix.EADDRINUSE:
		return fmt.Errorf("%w: %d", ErrCIDInUse, cid)
	}
	return fmt.Errorf("VHOST_VSOCK_SET_GUEST_CID %d: %w", cid, errno)
}
