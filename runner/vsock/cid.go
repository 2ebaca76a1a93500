package vsock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
)

// Guest CIDs the allocator hands out: 3 and up are guest CIDs (0-2 are
// reserved); the range is kept below 2^31 to stay clear of
// VMADDR_CID_ANY (2^32-1) and of CIDs other tools pick from the top.
const (
	FirstGuestCID = 3
	LastGuestCID  = 1<<31 - 1
)

// ErrCIDInUse is what VhostDevice.SetGuestCID returns (wrapped) when
// another VM on the host holds the CID (the kernel's EADDRINUSE).
var ErrCIDInUse = errors.New("guest CID in use")

// ErrNoCID reports that no CID could be reserved.
var ErrNoCID = errors.New("no free guest CID")

// VhostDevice is an open /dev/vhost-vsock: setting its guest CID reserves
// the CID host-wide for as long as the device stays open.
type VhostDevice interface {
	// SetGuestCID is the VHOST_VSOCK_SET_GUEST_CID ioctl; it fails with an
	// error wrapping ErrCIDInUse when the CID is taken.
	SetGuestCID(cid uint64) error
	// File is the open device, handed to QEMU (vhostfd=) through
	// exec.Cmd.ExtraFiles; Close closes it.
	File() *os.File
	// Close releases the device and its CID.
	Close() error
}

// Allocator reserves guest CIDs on the kernel's vhost-vsock. Parallel
// runners on one host share the CID space: each probes CIDs from a random
// start and takes the first the kernel accepts, so they do not collide.
type Allocator struct {
	// Open opens the device (OpenVhostDevice in production).
	Open func() (VhostDevice, error)
	// First and Last bound the CIDs tried; 0 means FirstGuestCID and
	// LastGuestCID.
	First, Last uint32
	// Tries bounds the number of CIDs probed; 0 means 64.
	Tries int
	// Rand returns a random number in [0, n); nil means math/rand/v2.
	Rand func(n uint64) uint64
}

// Reserve opens the device and sets a free guest CID on it. The caller
// hands dev.File() to QEMU and closes dev when QEMU exited.
func (a Allocator) Reserve() (dev VhostDevice, cid uint32, err error) {
	first, last := a.First, a.Last
	if first == 0 {
		first = FirstGuestCID
	}
	if last == 0 {
		last = LastGuestCID
	}
	if first > last || first < FirstGuestCID {
		return nil, 0, fmt.Errorf("%w: bad CID range %d..%d", ErrNoCID, first, last)
	}
	tries := a.Tries
	if tries <= 0 {
		tries = 64
	}
	rnd := a.Rand
	if rnd == nil {
		rnd = rand.Uint64N
	}
	dev, err = a.Open()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: open: %w", ErrNoCID, err)
	}
	span := uint64(last-first) + 1
	start := rnd(span)
	for i := range uint64(tries) {
		if i >= span {
			break
		}
		c := first + uint32((start+i)%span)
		err := dev.SetGuestCID(uint64(c))
		if err == nil {
			return dev, c, nil
		}
		if !errors.Is(err, ErrCIDInUse) {
			dev.Close()
			return nil, 0, fmt.Errorf("%w: set CID %d: %w", ErrNoCID, c, err)
		}
	}
	dev.Close()
	return nil, 0, fmt.Errorf("%w: %d CIDs in use from %d", ErrNoCID, tries, first+uint32(start))
}
