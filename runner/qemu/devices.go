package qemu

import (
	"crypto/sha256"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// IOMMULowering is one arch's virtual IOMMU as a single object: the device,
// the machine options and the kernel parameters it needs together.
type IOMMULowering struct {
	// Device is the -device value ("" when the machine has it built in).
	Device string
	// MachineOptions are appended to -machine.
	MachineOptions []string
	// Cmdline is added to the kernel command line.
	Cmdline []string
}

// NoIOMMUCmdline is added to the kernel command line of a guest with NICs
// and no IOMMU, so DPDK and other VFIO users can still bind the NICs.
var NoIOMMUCmdline = []string{"vfio.enable_unsafe_noiommu_mode=1"}

// PCIMachines are the machine types with a PCI root bus the fixed slots
// below live on.
var PCIMachines = map[string]bool{"q35": true, "virt": true}

// Fixed PCI slots on bus 0 of a PCI machine (q35, virt). The guest finds
// devices by these addresses (see NICPCIAddress, MgmtNICPCIAddress); q35
// keeps 0x00 (host bridge) and 0x1f (LPC, SATA, SMBus) for itself.
const (
	// SlotVsock is the vhost-user vsock device's slot.
	SlotVsock = 0x03
	// SlotPvpanic is the pvpanic-pci device's slot.
	SlotPvpanic = 0x04
	// SlotMgmtNIC is the management NIC's slot, just below the fabric NICs.
	SlotMgmtNIC = 0x0f
	// SlotNIC0 is the first NIC's slot; NIC i is at SlotNIC0+i.
	SlotNIC0 = 0x10
	// MaxNICs is the most NICs a guest gets.
	MaxNICs = 8
)

// MgmtHub is the QEMU hub of the management NIC, alone on it: the fabric
// pairs use hubs 0 to MaxNICs/2-1. Like theirs, it has no way out to the
// host.
const MgmtHub = MaxNICs

// mgmtMACByte is the last byte of the management NIC's MAC; fabric NIC i
// ends in i (< MaxNICs), so the two never collide.
const mgmtMACByte = 0xff

// NIC models (the go_vm_test `nics` values).
const (
	NICVirtioNet = "virtio_net"
	NICE1000     = "e1000"
	NICE1000E    = "e1000e"
)

// NICModels lists the NIC models in documentation order.
var NICModels = []string{NICVirtioNet, NICE1000, NICE1000E}

// NICDevices maps a NIC model to its QEMU device.
var NICDevices = map[string]string{NICVirtioNet: "virtio-net-pci", NICE1000: "e1000", NICE1000E: "e1000e"}

// NIC is one guest network card.
type NIC struct {
	// Model is one of NICModels.
	Model string
	// MAC is its address, e.g. from NICMAC.
	MAC string
}

// NICPCIAddress is the guest PCI address of NIC i ("0000:00:10.0" for the
// first), as /sys/bus/pci/devices names it.
func NICPCIAddress(i int) string { return fmt.Sprintf("0000:00:%02x.0", SlotNIC0+i) }

// NICMAC returns the MAC address of NIC i of the test named seed: locally
// administered unicast (02:...), four bytes of SHA-256(seed), then i. The
// same test always gets the same addresses; different tests rarely share.
func NICMAC(seed string, i int) string { return seedMAC(seed, byte(i)) }

// seedMAC is 02, four bytes of SHA-256(seed), then last.
func seedMAC(seed string, last byte) string {
	h := sha256.Sum256([]byte(seed))
	return net.HardwareAddr{0x02, h[0], h[1], h[2], h[3], last}.String()
}

// MgmtNICPCIAddress is the guest PCI address of the management NIC
// ("0000:00:0f.0").
func MgmtNICPCIAddress() string { return fmt.Sprintf("0000:00:%02x.0", SlotMgmtNIC) }

// MgmtNICMAC returns the MAC address of the management NIC of the test named
// seed: NICMAC's scheme (02, four bytes of SHA-256(seed)) ending in ff
// instead of a NIC index.
func MgmtNICMAC(seed string) string { return seedMAC(seed, mgmtMACByte) }

// Host page backings of guest RAM (the go_vm_test `host_pages` values).
const (
	HostPages4k = "4k"
	HostPages2M = "2M"
	HostPages1G = "1G"
)

// hostPageMiB is the RAM granularity of each host backing (4k: any MiB).
var hostPageMiB = map[string]int{"": 1, HostPages4k: 1, HostPages2M: 2, HostPages1G: 1024}

// Hugepages is a guest hugepage reservation: Count pages of Size ("2M" or
// "1G"). The zero value is none.
type Hugepages struct {
	Size  string
	Count int
}

// HugepageSizes are the allowed Hugepages sizes.
var HugepageSizes = []string{"2M", "1G"}

// MiB is the size of one page in MiB (0 for an unknown size).
func (h Hugepages) MiB() int {
	switch h.Size {
	case "2M":
		return 2
	case "1G":
		return 1024
	}
	return 0
}

// String is the SIZE:COUNT form ("" for none).
func (h Hugepages) String() string {
	if h.Count == 0 && h.Size == "" {
		return ""
	}
	return h.Size + ":" + strconv.Itoa(h.Count)
}

// ParseHugepages parses SIZE:COUNT ("2M:64"); "" is none.
func ParseHugepages(s string) (Hugepages, error) {
	if s == "" {
		return Hugepages{}, nil
	}
	size, count, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(count)
	h := Hugepages{Size: size, Count: n}
	if !ok || err != nil || h.MiB() == 0 || n < 1 {
		return Hugepages{}, fmt.Errorf("%w: guest hugepages %q: write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. 2M:64", ErrInvalidSpec, s)
	}
	return h, nil
}

// Check reports whether h is well-formed and fits, with room to spare, in
// memoryMiB of guest RAM.
func (h Hugepages) Check(memoryMiB int) error {
	if h == (Hugepages{}) {
		return nil
	}
	if h.MiB() == 0 {
		return fmt.Errorf("%w: guest hugepage size %q; use 2M or 1G", ErrInvalidSpec, h.Size)
	}
	if h.Count < 1 {
		return fmt.Errorf("%w: guest hugepage count %d; want at least 1", ErrInvalidSpec, h.Count)
	}
	if need := h.MiB() * h.Count; need+MinFreeMiB > memoryMiB {
		return fmt.Errorf("%w: guest hugepages %s need %d MiB, leaving less than %d MiB of the %d MiB guest RAM; raise the memory or lower the count",
			ErrInvalidSpec, h, need, MinFreeMiB, memoryMiB)
	}
	return nil
}

// MinFreeMiB is the guest RAM guest hugepages must leave to the kernel,
// init and test.
const MinFreeMiB = 64
