// Package vfio binds a guest's PCI NICs to the kernel's vfio-pci driver, so
// that a user-space driver (DPDK) can take them: through a real IOMMU group
// (/dev/vfio/N) when the guest has a virtual IOMMU (go_vm_test iommu =
// True), or in VFIO's no-IOMMU mode (/dev/vfio/noiommu-N) without one (the
// runner then boots the guest with vfio.enable_unsafe_noiommu_mode=1).
//
// It is the one implementation behind invm.BindVFIO (what a test calls) and
// the guest init's binding of go_vm_test's vfio_nics before the test starts.
// It only reads and writes sysfs and waits for the /dev/vfio node: no cgo,
// no ioctls, no dependencies.
package vfio

import (
	"errors"
	"fmt"
	"time"
)

// DriverName is the kernel driver a NIC is bound to.
const DriverName = "vfio-pci"

// NodeTimeout bounds the wait for the group's /dev/vfio node after
// vfio-pci took the device (devtmpfs makes it; under TCG it has always been
// there at once).
const NodeTimeout = 5 * time.Second

// Errors; every error of Bind wraps one of them and names the PCI address.
var (
	// ErrBadAddress: not a PCI address of the form DDDD:BB:DD.F.
	ErrBadAddress = errors.New("not a PCI address")
	// ErrNoDevice: no PCI device at the address.
	ErrNoDevice = errors.New("no such PCI device")
	// ErrNoDriver: the guest kernel has no vfio-pci driver.
	ErrNoDriver = errors.New("no vfio-pci driver in the guest kernel")
	// ErrNoIOMMU: the device has no IOMMU group and VFIO's no-IOMMU mode
	// is off, so vfio-pci cannot take it.
	ErrNoIOMMU = errors.New("no IOMMU group and VFIO no-IOMMU mode is off")
	// ErrProbe: vfio-pci did not bind the device after the probe.
	ErrProbe = errors.New("vfio-pci did not bind the device")
	// ErrNoNode: the group's /dev/vfio node did not appear in NodeTimeout.
	ErrNoNode = errors.New("no /dev/vfio node for the IOMMU group")
	// ErrNotBound: the device is not bound to vfio-pci (Status).
	ErrNotBound = errors.New("not bound to vfio-pci")
	// ErrUnsupported: not Linux.
	ErrUnsupported = errors.New("vfio-pci binding needs a Linux guest")
)

// Binding is what Bind did to one NIC.
type Binding struct {
	// PCIAddress is the device ("0000:00:10.0").
	PCIAddress string
	// PreviousDriver is the driver it was bound to before ("e1000",
	// "virtio-pci"; "vfio-pci" if it already was, "" if none).
	PreviousDriver string
	// AlreadyBound is true when the device was on vfio-pci already and
	// Bind changed nothing.
	AlreadyBound bool
	// Group is its IOMMU group number (/sys/kernel/iommu_groups/Group;
	// in no-IOMMU mode a group VFIO made up).
	Group int
	// Node is the group's device node: /dev/vfio/Group, or
	// /dev/vfio/noiommu-Group in no-IOMMU mode.
	Node string
	// NoIOMMU is true in VFIO's no-IOMMU mode (DMA is not translated;
	// no protection from the device).
	NoIOMMU bool
	// Took is how long Bind took.
	Took time.Duration
}

// String describes b in one line, e.g. "0000:00:10.0: e1000 -> vfio-pci,
// IOMMU group 3 (no-IOMMU), /dev/vfio/noiommu-3".
func (b Binding) String() string {
	mode := "IOMMU"
	if b.NoIOMMU {
		mode = "no-IOMMU"
	}
	prev := b.PreviousDriver
	if prev == "" {
		prev = "(no driver)"
	}
	if b.AlreadyBound {
		return fmt.Sprintf("%s: already on vfio-pci, IOMMU group %d (%s), %s", b.PCIAddress, b.Group, mode, b.Node)
	}
	return fmt.Sprintf("%s: %s -> vfio-pci, IOMMU group %d (%s), %s, in %v", b.PCIAddress, prev, b.Group, mode, b.Node, b.Took.Round(time.Microsecond))
}

// ValidAddress reports whether s is a PCI address as sysfs names it:
// DDDD:BB:DD.F in lower-case hex ("0000:00:10.0").
func ValidAddress(s string) bool {
	if len(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.' {
		return false
	}
	for i, c := range []byte(s) {
		if i == 4 || i == 7 || i == 10 {
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s[11] <= '7' && (s[8] <= '1') // function 0-7, device 00-1f
}
