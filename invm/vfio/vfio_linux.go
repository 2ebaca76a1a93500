package vfio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// noIOMMUGroupName is the name VFIO gives the IOMMU group it makes up for
// a device in no-IOMMU mode (/sys/kernel/iommu_groups/N/name).
const noIOMMUGroupName = "vfio-noiommu"

// nodePoll is how often Bind looks for the /dev/vfio node.
const nodePoll = 5 * time.Millisecond

// Binder binds PCI devices to vfio-pci through sysfs. The zero value works
// on the real guest (/sys, /dev); tests point it at a fake tree.
type Binder struct {
	// Sysfs is the sysfs root; "" means /sys.
	Sysfs string
	// Dev is the devtmpfs root; "" means /dev.
	Dev string
	// Write writes data to the sysfs attribute file path; nil means
	// opening it for writing (never creating it) and writing data.
	Write func(path, data string) error
	// NodeTimeout bounds the wait for the /dev/vfio node; 0 means
	// NodeTimeout.
	NodeTimeout time.Duration
}

// Bind binds the device at addr with a Binder at the real /sys and /dev.
func Bind(addr string) (Binding, error) { return (&Binder{}).Bind(addr) }

// Status reports the device at addr's vfio-pci binding with a Binder at
// the real /sys and /dev.
func Status(addr string) (Binding, error) { return (&Binder{}).Status(addr) }

func (b *Binder) sys(p ...string) string {
	root := b.Sysfs
	if root == "" {
		root = "/sys"
	}
	return filepath.Join(append([]string{root}, p...)...)
}

func (b *Binder) dev(p ...string) string {
	root := b.Dev
	if root == "" {
		root = "/dev"
	}
	return filepath.Join(append([]string{root}, p...)...)
}

func (b *Binder) write(path, data string) error {
	if b.Write != nil {
		return b.Write(path, data)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	return errors.Join(err, f.Close())
}

// Bind binds the PCI device at addr ("0000:00:10.0") to vfio-pci: it sets
// the device's driver_override to vfio-pci (so nothing but vfio-pci takes
// it from now on), unbinds its current driver, asks the PCI bus to probe it
// (drivers_probe), checks that vfio-pci took it, and waits up to
// NodeTimeout for its group's /dev/vfio node. A device already on vfio-pci
// is success, with nothing written (Binding.AlreadyBound). If vfio-pci does
// not take the device, Bind clears the override and probes again, so the
// device goes back to its kernel driver, and says so.
func (b *Binder) Bind(addr string) (Binding, error) {
	start := time.Now()
	devDir, err := b.device(addr)
	if err != nil {
		return Binding{}, err
	}
	prev := b.driver(devDir)
	if prev == DriverName {
		bd, err := b.current(addr, devDir)
		bd.PreviousDriver, bd.AlreadyBound = prev, true
		return bd, err
	}
	if _, err := os.Stat(b.sys("bus/pci/drivers", DriverName)); err != nil {
		return Binding{}, fmt.Errorf("vfio: bind %s: %w: build the kernel with CONFIG_VFIO=y and CONFIG_VFIO_PCI=y "+
			"(and CONFIG_VFIO_NOIOMMU=y for guests without an IOMMU)", addr, ErrNoDriver)
	}
	if _, err := os.Lstat(filepath.Join(devDir, "iommu_group")); err != nil && !b.noIOMMUMode() {
		return Binding{}, fmt.Errorf("vfio: bind %s: %w: give the guest an IOMMU (go_vm_test iommu = True, invm -iommu), "+
			"or boot it with vfio.enable_unsafe_noiommu_mode=1 (the runner adds it to guests with NICs and no IOMMU; "+
			"the kernel needs CONFIG_VFIO_NOIOMMU=y)", addr, ErrNoIOMMU)
	}
	steps := []struct{ what, path, data string }{
		{"set driver_override", filepath.Join(devDir, "driver_override"), DriverName},
		{"unbind " + prev, filepath.Join(devDir, "driver/unbind"), addr},
		{"probe", b.sys("bus/pci/drivers_probe"), addr},
	}
	for _, s := range steps {
		if s.path == filepath.Join(devDir, "driver/unbind") && prev == "" {
			continue
		}
		if err := b.write(s.path, s.data); err != nil {
			return Binding{}, fmt.Errorf("vfio: bind %s: %s: %w", addr, s.what, err)
		}
	}
	if now := b.driver(devDir); now != DriverName {
		restored := b.restore(addr, devDir)
		return Binding{}, fmt.Errorf("vfio: bind %s: %w (driver now %q; the guest console has the kernel's reason); %s",
			addr, ErrProbe, now, restored)
	}
	bd, err := b.current(addr, devDir)
	bd.PreviousDriver, bd.Took = prev, time.Since(start)
	return bd, err
}

// restore undoes a failed bind: clears driver_override and probes, so the
// device's own driver takes it back. It returns what happened, for the
// error.
func (b *Binder) restore(addr, devDir string) string {
	if err := b.write(filepath.Join(devDir, "driver_override"), "\n"); err != nil {
		return "clearing driver_override failed: " + err.Error()
	}
	if err := b.write(b.sys("bus/pci/drivers_probe"), addr); err != nil {
		return "driver_override cleared, probing failed: " + err.Error()
	}
	if d := b.driver(devDir); d != "" {
		return "driver_override cleared, the device is back on " + d
	}
	return "driver_override cleared, no driver took the device back"
}

// Status reports the vfio-pci binding of the device at addr as Bind would
// return it for a device already bound, without changing anything. A
// device on another driver (or none) is an error wrapping ErrNotBound that
// names the driver.
func (b *Binder) Status(addr string) (Binding, error) {
	devDir, err := b.device(addr)
	if err != nil {
		return Binding{}, err
	}
	if d := b.driver(devDir); d != DriverName {
		if d == "" {
			d = "no driver"
		}
		return Binding{}, fmt.Errorf("vfio: %s: %w: it is on %s; bind it first (invm.BindVFIO, go_vm_test vfio_nics)", addr, ErrNotBound, d)
	}
	bd, err := b.current(addr, devDir)
	bd.PreviousDriver, bd.AlreadyBound = DriverName, true
	return bd, err
}

// device checks addr and returns its sysfs directory.
func (b *Binder) device(addr string) (string, error) {
	if !ValidAddress(addr) {
		return "", fmt.Errorf("vfio: %q: %w: write DDDD:BB:DD.F in lower-case hex, e.g. 0000:00:10.0", addr, ErrBadAddress)
	}
	dir := b.sys("bus/pci/devices", addr)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("vfio: %s: %w; %s", addr, ErrNoDevice, b.nicList())
	}
	return dir, nil
}

// nicList names the network devices on the PCI bus, for messages.
func (b *Binder) nicList() string {
	ents, err := os.ReadDir(b.sys("bus/pci/devices"))
	if err != nil {
		return "cannot list the PCI devices: " + err.Error()
	}
	var nics []string
	for _, e := range ents {
		dir := b.sys("bus/pci/devices", e.Name())
		class, err := os.ReadFile(filepath.Join(dir, "class"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(class)), "0x02") {
			continue
		}
		d := b.driver(dir)
		if d == "" {
			d = "no driver"
		}
		nics = append(nics, e.Name()+" ("+d+")")
	}
	if len(nics) == 0 {
		return "the guest has no PCI NICs"
	}
	return "the guest's PCI NICs: " + strings.Join(nics, ", ")
}

// driver is the name of the driver bound to the device in devDir, "" if
// none.
func (b *Binder) driver(devDir string) string {
	l, err := os.Readlink(filepath.Join(devDir, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// noIOMMUMode reports whether VFIO's no-IOMMU mode is on.
func (b *Binder) noIOMMUMode() bool {
	v, err := os.ReadFile(b.sys("module/vfio/parameters/enable_unsafe_noiommu_mode"))
	return err == nil && strings.TrimSpace(string(v)) == "Y"
}

// current reads the group of a device bound to vfio-pci and waits for its
// node.
func (b *Binder) current(addr, devDir string) (Binding, error) {
	bd := Binding{PCIAddress: addr}
	l, err := os.Readlink(filepath.Join(devDir, "iommu_group"))
	if err != nil {
		return bd, fmt.Errorf("vfio: %s: on vfio-pci without an IOMMU group: %w", addr, err)
	}
	if bd.Group, err = strconv.Atoi(filepath.Base(l)); err != nil {
		return bd, fmt.Errorf("vfio: %s: IOMMU group %q: %w", addr, filepath.Base(l), err)
	}
	name, _ := os.ReadFile(b.sys("kernel/iommu_groups", strconv.Itoa(bd.Group), "name"))
	bd.NoIOMMU = strings.TrimSpace(string(name)) == noIOMMUGroupName
	node := strconv.Itoa(bd.Group)
	if bd.NoIOMMU {
		node = "noiommu-" + node
	}
	bd.Node = b.dev("vfio", node)
	timeout := b.NodeTimeout
	if timeout == 0 {
		timeout = NodeTimeout
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(nodePoll) {
		if _, err := os.Stat(bd.Node); err == nil {
			return bd, nil
		}
		if time.Now().After(deadline) {
			return bd, fmt.Errorf("vfio: %s: %w: %s did not appear in %v", addr, ErrNoNode, bd.Node, timeout)
		}
	}
}
