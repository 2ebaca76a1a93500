package invm

import (
	"fmt"
	"os"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/invm/vfio"
)

// EnvVFIONICs lists the PCI addresses (comma-separated) of the NICs the
// guest init bound to vfio-pci before the test started (go_vm_test
// vfio_nics, //invm:vfio_nics, invm -vfio-nics; runner.EnvVFIONICs).
const EnvVFIONICs = "INVM_VFIO_NICS"

// Binding is what BindVFIO did to one NIC: its PCI address, the driver it
// left, its IOMMU group and /dev/vfio node, and whether VFIO runs in
// no-IOMMU mode (see package invm/vfio).
type Binding = vfio.Binding

// BindVFIO binds the NIC at PCI address pciAddr ("0000:00:10.0") to
// vfio-pci for a user-space driver such as DPDK: through its IOMMU group
// when the guest has an IOMMU (go_vm_test iommu = True), in VFIO's
// no-IOMMU mode otherwise. It unbinds the kernel driver, sets
// driver_override, probes, and waits (vfio.NodeTimeout) for the /dev/vfio
// node. A NIC already on vfio-pci is success (Binding.AlreadyBound).
// Errors name the address and wrap one of package vfio's sentinels
// (vfio.ErrNoDevice, listing the guest's NICs; vfio.ErrNoDriver, naming
// the kernel options; vfio.ErrNoIOMMU; vfio.ErrProbe; vfio.ErrNoNode).
func BindVFIO(pciAddr string) (Binding, error) { return vfio.Bind(pciAddr) }

// BindAllVFIO binds every NIC of the guest (NICs; never the management
// NIC) to vfio-pci, in PCI order, and stops at the first error.
func BindAllVFIO() ([]Binding, error) {
	nics, err := NICs()
	if err != nil {
		return nil, err
	}
	var out []Binding
	for _, n := range nics {
		b, err := vfio.Bind(n.PCIAddress)
		if err != nil {
			return out, fmt.Errorf("%s NIC: %w", n.Model, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// VFIOStatus returns the vfio-pci binding of the NIC at pciAddr without
// changing it; a NIC left on its kernel driver is an error wrapping
// vfio.ErrNotBound that names the driver.
func VFIOStatus(pciAddr string) (Binding, error) { return vfio.Status(pciAddr) }

// VFIONICs returns the PCI addresses of the NICs the guest init bound to
// vfio-pci before the test ($INVM_VFIO_NICS); nil for none.
func VFIONICs() []string {
	v := os.Getenv(EnvVFIONICs)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
