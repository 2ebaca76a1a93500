package qemu

import (
	"crypto/sha256"
	"fmt"
	"net"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
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
	// MaxNICs is the most NICs a guest gets (vmspec.MaxNICs).
	MaxNICs = vmspec.MaxNICs
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

// NICModels lists the NIC models in documentation order (vmspec.NICModels).
var NICModels = vmspec.NICModels

// NICDevices maps a NIC model to its QEMU device.
var NICDevices = map[string]string{NICVirtioNet: "virtio-net-pci", NICE1000: "e1000", NICE1000E: "e1000e"}

// VirtioIOMMUOptions are added to a virtio NIC's device behind a virtual
// IOMMU. Without iommu_platform=on a virtio device bypasses the IOMMU (its
// DMA addresses are guest-physical), so a user-space driver that gets the
// NIC through VFIO would program IOVAs the device does not translate; with
// it the guest's driver must use the DMA API (VIRTIO_F_ACCESS_PLATFORM,
// feature bit 33) and every DMA goes through the IOMMU. QEMU accepts
// iommu_platform only on a modern-only device, hence disable-legacy=on
// (the root bus of q35 and virt would otherwise make it transitional).
var VirtioIOMMUOptions = []string{"disable-legacy=on", "iommu_platform=on"}

// nicDevice is the -device driver and options of a NIC model.
func nicDevice(model string, iommu bool) string {
	d := NICDevices[model]
	if iommu && model == NICVirtioNet {
		d += "," + strings.Join(VirtioIOMMUOptions, ",")
	}
	return d
}

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
func hostPageMiB(size string) int {
	if size == "" {
		return 1
	}
	return vmspec.Hugepages{Size: size}.MiB()
}
