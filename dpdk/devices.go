//go:build dpdk

package dpdk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var (
	// ErrNoHugepages reports EALOptions.Hugepages on a system without free
	// hugepages.
	ErrNoHugepages = errors.New("dpdk: EALOptions.Hugepages is set, but the system has no free hugepages")
	// ErrNoDevice reports an EALOptions.Allow entry the PCI bus does not
	// have.
	ErrNoDevice = errors.New("dpdk: no such PCI device")
	// ErrKernelDriver reports an EALOptions.Allow device that a kernel
	// driver holds: DPDK cannot drive it.
	ErrKernelDriver = errors.New("dpdk: device is bound to a kernel driver")
)

// userspaceDrivers are the kernel drivers that hand a PCI device to a
// userspace PMD.
var userspaceDrivers = []string{"vfio-pci", "uio_pci_generic", "igb_uio"}

// sysfs is the sysfs root the checks read (tests point it elsewhere).
var sysfs = "/sys"

// checkSystem checks what the EAL would otherwise fail on with a message
// that does not say why (or would silently probe no port): hugepages when
// o asks for them, and each allowed device present and on a userspace
// driver. It runs before rte_eal_init, so a failed check leaves InitEAL
// callable again.
func checkSystem(o EALOptions) error {
	if o.Hugepages && !freeHugepages(sysfs) {
		return fmt.Errorf("%w: give the guest some (go_vm_test guest_hugepages = \"2M:64\", //invm:guest_hugepages 2M:64, "+
			"or invm -guest-hugepages 2M:64), or leave Hugepages false to run with --no-huge", ErrNoHugepages)
	}
	for _, addr := range o.Allow {
		dev := filepath.Join(sysfs, "bus/pci/devices", addr)
		if _, err := os.Stat(dev); err != nil {
			return fmt.Errorf("%w: EALOptions.Allow names %s, which this system does not have (network devices: %s)",
				ErrNoDevice, addr, strings.Join(netDevices(sysfs), ", "))
		}
		drv := ""
		if l, err := os.Readlink(filepath.Join(dev, "driver")); err == nil {
			drv = filepath.Base(l)
		}
		if drv != "" && !contains(userspaceDrivers, drv) {
			return fmt.Errorf("%w: EALOptions.Allow names %s, which the kernel driver %s holds: bind it to vfio-pci first "+
				"(go_vm_test vfio_nics = [\"all\"] or the NIC's index, //invm:vfio_nics, or invm.BindVFIO(%q))",
				ErrKernelDriver, addr, drv, addr)
		}
	}
	return nil
}

// FreeHugepages reports whether the system has free hugepages of any size.
func FreeHugepages() bool { return freeHugepages(sysfs) }

func freeHugepages(root string) bool {
	dirs, _ := filepath.Glob(filepath.Join(root, "kernel/mm/hugepages/hugepages-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "free_hugepages"))
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return true
		}
	}
	return false
}

// netDevices lists the PCI network devices (class 0x02xxxx) with their
// drivers, for error messages.
func netDevices(root string) []string {
	devs, _ := filepath.Glob(filepath.Join(root, "bus/pci/devices/*"))
	var out []string
	for _, d := range devs {
		class, err := os.ReadFile(filepath.Join(d, "class"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(class)), "0x02") {
			continue
		}
		drv := "no driver"
		if l, err := os.Readlink(filepath.Join(d, "driver")); err == nil {
			drv = filepath.Base(l)
		}
		out = append(out, fmt.Sprintf("%s (%s)", filepath.Base(d), drv))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
