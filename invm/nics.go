package invm

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Environment variables the runner sets for the test (runner.EnvNICs,
// runner.EnvMgmtNIC and runner.EnvGuestHugepages; not imported, to keep this
// package small).
const (
	// EnvNICs lists the guest's NICs: "MODEL PCI-ADDRESS MAC" entries
	// joined by commas, in PCI order. The management NIC is not one of them.
	EnvNICs = "INVM_NICS"
	// EnvMgmtNIC is the guest's management NIC: "MODEL PCI-ADDRESS MAC".
	EnvMgmtNIC = "INVM_MGMT_NIC"
	// EnvGuestHugepages is the guest hugepage reservation, SIZE:COUNT.
	EnvGuestHugepages = "INVM_GUEST_HUGEPAGES"
)

// ErrNoNIC reports a NIC the guest does not have (or whose driver did not
// bind).
var ErrNoNIC = errors.New("no such NIC")

// NIC is one of the guest's network cards: what the runner gave the guest
// (Model, PCIAddress, MAC) and what the guest kernel made of it (Name,
// Driver, HardwareAddr).
type NIC struct {
	// Model is the go_vm_test `nics` value: "virtio_net", "e1000", "e1000e".
	Model string
	// PCIAddress is its fixed address, e.g. "0000:00:10.0" for the first.
	PCIAddress string
	// MAC is the address the runner assigned (deterministic per test).
	MAC net.HardwareAddr
	// Name is the kernel's interface name ("eth0"), "" if no driver bound
	// a network interface to the device.
	Name string
	// Driver is the network driver bound to the interface ("e1000",
	// "e1000e", "virtio_net").
	Driver string
	// HardwareAddr is the interface's current MAC address.
	HardwareAddr net.HardwareAddr
}

// sysfs is the sysfs root (a test may point it elsewhere).
var sysfs = "/sys"

// NICs returns the guest's NICs in PCI order, each found in sysfs by its
// PCI address. It fails if the runner gave the guest none ($INVM_NICS
// unset) or if one of them is missing from the PCI bus. The management NIC
// is not among them (see MgmtNIC).
func NICs() ([]NIC, error) {
	spec := os.Getenv(EnvNICs)
	if spec == "" {
		return nil, fmt.Errorf("%w: $%s is empty: the VM has no NICs (go_vm_test nics = [...], invm -nics)", ErrNoNIC, EnvNICs)
	}
	var nics []NIC
	for _, e := range strings.Split(spec, ",") {
		n, err := parseNIC(EnvNICs, e)
		if err != nil {
			return nil, err
		}
		nics = append(nics, n)
	}
	return nics, nil
}

// MgmtNIC returns the guest's management NIC (go_vm_test mgmt_nic, invm
// -mgmt-nic; PCI address 0000:00:0f.0), found in sysfs like NICs finds
// theirs. It fails if the runner gave the guest none ($INVM_MGMT_NIC unset)
// or if it is missing from the PCI bus.
func MgmtNIC() (NIC, error) {
	spec := os.Getenv(EnvMgmtNIC)
	if spec == "" {
		return NIC{}, fmt.Errorf("%w: $%s is empty: the VM has no management NIC (go_vm_test mgmt_nic = \"virtio_net\", invm -mgmt-nic)", ErrNoNIC, EnvMgmtNIC)
	}
	return parseNIC(EnvMgmtNIC, spec)
}

// parseNIC parses one "MODEL PCI-ADDRESS MAC" entry of the variable env and
// resolves it in sysfs.
func parseNIC(env, e string) (NIC, error) {
	f := strings.Fields(e)
	if len(f) != 3 {
		return NIC{}, fmt.Errorf("$%s: bad entry %q: want MODEL PCI-ADDRESS MAC", env, e)
	}
	mac, err := net.ParseMAC(f[2])
	if err != nil {
		return NIC{}, fmt.Errorf("$%s: %w", env, err)
	}
	n := NIC{Model: f[0], PCIAddress: f[1], MAC: mac}
	if err := n.resolve(); err != nil {
		return NIC{}, err
	}
	return n, nil
}

// NICByPCI returns the NIC at PCI address addr ("0000:00:10.0").
func NICByPCI(addr string) (NIC, error) {
	nics, err := NICs()
	if err != nil {
		return NIC{}, err
	}
	for _, n := range nics {
		if n.PCIAddress == addr {
			return n, nil
		}
	}
	return NIC{}, fmt.Errorf("%w at PCI address %s", ErrNoNIC, addr)
}

// resolve fills in the interface name, driver and address from sysfs: the
// interface whose device path goes through the PCI device (virtio-net's
// hangs below it, on the virtio bus).
func (n *NIC) resolve() error {
	dev := filepath.Join(sysfs, "bus/pci/devices", n.PCIAddress)
	if _, err := os.Stat(dev); err != nil {
		return fmt.Errorf("%w: %s NIC: no PCI device %s: %w", ErrNoNIC, n.Model, n.PCIAddress, err)
	}
	ifaces, err := os.ReadDir(filepath.Join(sysfs, "class/net"))
	if err != nil {
		return err
	}
	for _, i := range ifaces {
		real, err := filepath.EvalSymlinks(filepath.Join(sysfs, "class/net", i.Name(), "device"))
		if err != nil || !slices.Contains(strings.Split(real, "/"), n.PCIAddress) {
			continue
		}
		n.Name = i.Name()
		if d, err := os.Readlink(filepath.Join(real, "driver")); err == nil {
			n.Driver = filepath.Base(d)
		}
		if b, err := os.ReadFile(filepath.Join(sysfs, "class/net", i.Name(), "address")); err == nil {
			n.HardwareAddr, _ = net.ParseMAC(strings.TrimSpace(string(b)))
		}
		return nil
	}
	return nil // the device is there, no driver bound a network interface
}

// Hugepages returns the guest hugepage reservation the runner made (size
// "2M" or "1G" and count), from $INVM_GUEST_HUGEPAGES; ok is false for none.
func Hugepages() (size string, count int, ok bool) {
	size, c, found := strings.Cut(os.Getenv(EnvGuestHugepages), ":")
	n, err := strconv.Atoi(c)
	if !found || err != nil {
		return "", 0, false
	}
	return size, n, true
}

// procMounts is the mount table (a test may point it elsewhere).
var procMounts = "/proc/mounts"

// HugepageMount returns where the guest init mounted hugetlbfs for pages of
// size ("2M", "1G"): /dev/hugepages-SIZE. It fails unless that is a
// hugetlbfs mount of that page size.
func HugepageMount(size string) (string, error) {
	want := map[string]string{"2M": "pagesize=2M", "1G": "pagesize=1024M"}[size]
	if want == "" {
		return "", fmt.Errorf("hugepage size %q: use 2M or 1G", size)
	}
	dir := "/dev/hugepages-" + size
	f, err := os.Open(procMounts)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		m := strings.Fields(s.Text())
		if len(m) >= 4 && m[1] == dir && m[2] == "hugetlbfs" && slices.Contains(strings.Split(m[3], ","), want) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no hugetlbfs with %s pages at %s (go_vm_test guest_hugepages = \"%s:COUNT\", invm -guest-hugepages)", size, dir, size)
}
