package nics

// The NICs bound to vfio-pci, as DPDK needs them: by the guest init before
// the test (go_vm_test vfio_nics: TestVFIOBoundAtStart) or by the test
// itself (invm.BindVFIO: TestBindVFIO), in VFIO's no-IOMMU mode without a
// virtual IOMMU and through real IOMMU groups with one. These tests run
// after the NIC tests of nics_test.go (file order): binding takes the NICs
// away from their kernel drivers.

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/invm"
	"github.com/rules-go-vm/rules_go_vm/invm/vfio"
)

// envWantVFIO is set by the targets with vfio_nics (to the PCI addresses
// the init must have bound), so that a runner or init that bound nothing
// fails TestVFIOBoundAtStart instead of leaving it nothing to check.
const envWantVFIO = "NICS_WANT_VFIO"

// envWantIOMMU is set to 1 by the targets with iommu = True.
const envWantIOMMU = "NICS_WANT_IOMMU"

// pciDriver is the driver bound to the PCI device at addr ("" if none);
// for virtio_net NICs that is virtio-pci, not the network driver.
func pciDriver(addr string) string {
	l, err := os.Readlink(filepath.Join("/sys/bus/pci/devices", addr, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// wantIOMMU reports whether the guest should have an IOMMU: the target
// says so, or (under plain `go test -exec invm`) the runner did not turn on
// VFIO's no-IOMMU mode, which it does for every guest with NICs and no
// IOMMU.
func wantIOMMU(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envWantIOMMU) == "1" {
		return true
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return !strings.Contains(string(cmdline), "vfio.enable_unsafe_noiommu_mode=1")
}

// TestVFIOBoundAtStart checks the NICs the guest init bound before the test
// ($INVM_VFIO_NICS, from vfio_nics): each on vfio-pci with its /dev/vfio
// node, and every other NIC still on its kernel driver.
func TestVFIOBoundAtStart(t *testing.T) {
	invm.Require(t)
	bound := invm.VFIONICs()
	want := os.Getenv(envWantVFIO)
	if strings.Join(bound, ",") != want {
		t.Fatalf("$%s = %q, but the target asked for %q ($%s)", invm.EnvVFIONICs, strings.Join(bound, ","), want, envWantVFIO)
	}
	if len(bound) == 0 {
		t.Logf("no NICs bound before the test ($%s and $%s unset)", invm.EnvVFIONICs, envWantVFIO)
		return
	}
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nics {
		d := pciDriver(n.PCIAddress)
		if !slices.Contains(bound, n.PCIAddress) {
			if d == vfio.DriverName || n.Name == "" {
				t.Errorf("NIC %s (%s) was not asked for, yet is on %q without a network interface", n.PCIAddress, n.Model, d)
			}
			continue
		}
		if d != vfio.DriverName {
			t.Errorf("NIC %s (%s): driver %q at the test's start, want vfio-pci", n.PCIAddress, n.Model, d)
			continue
		}
		b, err := invm.VFIOStatus(n.PCIAddress)
		if err != nil {
			t.Errorf("NIC %s: %v", n.PCIAddress, err)
			continue
		}
		if b.NoIOMMU == wantIOMMU(t) {
			t.Errorf("NIC %s: no-IOMMU %v, want %v", n.PCIAddress, b.NoIOMMU, !wantIOMMU(t))
		}
		checkNode(t, b)
		t.Logf("bound by init: %s", b)
	}
}

// checkNode checks that b's /dev/vfio node is a character device.
func checkNode(t *testing.T, b invm.Binding) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(b.Node, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("%s: %s is not a character device (%v)", b.PCIAddress, b.Node, err)
	}
}

// TestBindVFIOErrors: what a test gets wrong gets a clear error, not a
// hang: an address with no device (the error lists the NICs there are), a
// malformed one, and a NIC left on its kernel driver.
func TestBindVFIOErrors(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	_, err = invm.BindVFIO("0000:00:1e.0")
	if !errors.Is(err, vfio.ErrNoDevice) || !strings.Contains(err.Error(), nics[0].PCIAddress+" (") {
		t.Errorf("BindVFIO of a missing device = %v, want vfio.ErrNoDevice listing %s", err, nics[0].PCIAddress)
	}
	t.Logf("missing device: %v", err)
	if _, err := invm.BindVFIO("eth0"); !errors.Is(err, vfio.ErrBadAddress) {
		t.Errorf("BindVFIO(eth0) = %v, want vfio.ErrBadAddress", err)
	}
	if d := pciDriver(nics[0].PCIAddress); d != vfio.DriverName {
		_, err := invm.VFIOStatus(nics[0].PCIAddress)
		if !errors.Is(err, vfio.ErrNotBound) || !strings.Contains(err.Error(), "it is on "+d) {
			t.Errorf("VFIOStatus of a NIC on %s = %v, want vfio.ErrNotBound naming it", d, err)
		}
		t.Logf("NIC left on its kernel driver: %v", err)
	}
}

// virtioAccessPlatform is VIRTIO_F_ACCESS_PLATFORM (iommu_platform=on): the
// driver must map its buffers through the DMA API, i.e. the IOMMU.
const virtioAccessPlatform = 33

// checkIOMMU proves that the NIC at addr, still on its kernel driver, sits
// behind an active IOMMU: an IOMMU unit lists it, its group translates DMA
// (a DMA domain, not identity), and a virtio NIC negotiated
// VIRTIO_F_ACCESS_PLATFORM (without it a virtio device bypasses the IOMMU).
func checkIOMMU(t *testing.T, n invm.NIC) {
	t.Helper()
	units, _ := filepath.Glob(filepath.Join("/sys/class/iommu/*/devices", n.PCIAddress))
	if len(units) == 0 {
		t.Errorf("NIC %s: no IOMMU unit in /sys/class/iommu lists it", n.PCIAddress)
	}
	l, err := os.Readlink(filepath.Join("/sys/bus/pci/devices", n.PCIAddress, "iommu_group"))
	if err != nil {
		t.Errorf("NIC %s: no IOMMU group: %v", n.PCIAddress, err)
		return
	}
	typ, err := os.ReadFile(filepath.Join("/sys/kernel/iommu_groups", filepath.Base(l), "type"))
	if d := strings.TrimSpace(string(typ)); err != nil || (d != "DMA" && d != "DMA-FQ") {
		t.Errorf("NIC %s: IOMMU group %s has default domain %q (%v), want DMA or DMA-FQ (translated)", n.PCIAddress, filepath.Base(l), d, err)
	}
	if n.Model == "virtio_net" {
		feats, _ := filepath.Glob(filepath.Join("/sys/bus/pci/devices", n.PCIAddress, "virtio*/features"))
		if len(feats) != 1 {
			t.Errorf("NIC %s: virtio features not found: %q", n.PCIAddress, feats)
			return
		}
		f, err := os.ReadFile(feats[0])
		if err != nil || len(f) <= virtioAccessPlatform || f[virtioAccessPlatform] != '1' {
			t.Errorf("NIC %s: VIRTIO_F_ACCESS_PLATFORM not negotiated (%s: %q, %v): it bypasses the IOMMU; QEMU needs iommu_platform=on",
				n.PCIAddress, feats[0], strings.TrimSpace(string(f)), err)
		}
	}
	t.Logf("NIC %s (%s): IOMMU %s, group %s, default domain %s", n.PCIAddress, n.Model, strings.Join(units, ","), filepath.Base(l), strings.TrimSpace(string(typ)))
}

// TestBindVFIO binds every NIC with invm.BindVFIO and checks what it
// reports against sysfs and /dev, that VFIO accepts each group in a
// container of the right IOMMU type (what DPDK's EAL does next), and that
// binding again (BindVFIO, BindAllVFIO) changes nothing.
func TestBindVFIO(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	iommu := wantIOMMU(t)
	if os.Getenv(envWantIOMMU) == "1" {
		if units, _ := filepath.Glob("/sys/class/iommu/*"); len(units) == 0 {
			t.Fatalf("$%s=1 but /sys/class/iommu is empty: the guest has no IOMMU", envWantIOMMU)
		}
	}
	for _, n := range nics {
		prev := pciDriver(n.PCIAddress)
		if iommu && prev != vfio.DriverName {
			checkIOMMU(t, n)
		}
		b, err := invm.BindVFIO(n.PCIAddress)
		if err != nil {
			t.Errorf("NIC %s (%s): %v", n.PCIAddress, n.Model, err)
			continue
		}
		t.Logf("%s", b)
		if b.PCIAddress != n.PCIAddress || b.PreviousDriver != prev || b.AlreadyBound != (prev == vfio.DriverName) {
			t.Errorf("NIC %s: %+v, want previous driver %q", n.PCIAddress, b, prev)
		}
		if d := pciDriver(n.PCIAddress); d != vfio.DriverName {
			t.Errorf("NIC %s: driver %q after BindVFIO", n.PCIAddress, d)
		}
		if ifs, _ := filepath.Glob(filepath.Join("/sys/bus/pci/devices", n.PCIAddress, "net", "*")); len(ifs) > 0 {
			t.Errorf("NIC %s: still has network interfaces %q: %s was not unbound", n.PCIAddress, ifs, prev)
		}
		checkNode(t, b)
		group := strconv.Itoa(b.Group)
		if b.NoIOMMU == iommu {
			t.Errorf("NIC %s: no-IOMMU %v, want %v", n.PCIAddress, b.NoIOMMU, !iommu)
		}
		wantNode := "/dev/vfio/" + group
		if !iommu {
			wantNode = "/dev/vfio/noiommu-" + group
		}
		if b.Node != wantNode {
			t.Errorf("NIC %s: node %s, want %s", n.PCIAddress, b.Node, wantNode)
		}
		if _, err := os.Lstat(filepath.Join("/sys/kernel/iommu_groups", group, "devices", n.PCIAddress)); err != nil {
			t.Errorf("NIC %s: not in its IOMMU group %s: %v", n.PCIAddress, group, err)
		}
		again, err := invm.BindVFIO(n.PCIAddress)
		if err != nil || !again.AlreadyBound || again.Node != b.Node || again.Group != b.Group {
			t.Errorf("NIC %s: binding again = %+v, %v; want the same binding, already bound", n.PCIAddress, again, err)
		}
		checkContainer(t, b)
	}
	// BindAllVFIO over NICs that are all bound already: each reported as
	// such, in PCI order.
	all, err := invm.BindAllVFIO()
	if err != nil || len(all) != len(nics) {
		t.Fatalf("BindAllVFIO = %d bindings, %v; want %d", len(all), err, len(nics))
	}
	for i, b := range all {
		if b.PCIAddress != nics[i].PCIAddress || !b.AlreadyBound {
			t.Errorf("BindAllVFIO[%d] = %+v, want %s already bound", i, b, nics[i].PCIAddress)
		}
	}
}

// VFIO ioctls (linux/vfio.h: _IO(';', 100 + n)).
const (
	vfioGetAPIVersion     = 0x3b64
	vfioCheckExtension    = 0x3b65
	vfioSetIOMMU          = 0x3b66
	vfioGroupGetStatus    = 0x3b67
	vfioGroupSetContainer = 0x3b68
	vfioGroupGetDeviceFD  = 0x3b6a
	vfioIOMMUMapDMA       = 0x3b71
	vfioAPIVersion        = 0
	vfioType1v2IOMMU      = 3
	vfioNoIOMMUIOMMU      = 8
	vfioGroupViable       = 1
	vfioDMARead           = 1
	vfioDMAWrite          = 2
)

// ioctl calls ioctl(2) with an integer argument.
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// ioctlPtr calls ioctl(2) with a pointer argument (converted in the
// Syscall expression, as unsafe.Pointer's rules require).
func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p))
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// checkContainer does what DPDK's EAL does with a bound NIC: opens
// /dev/vfio/vfio, checks the group is viable, puts it in a container of
// the IOMMU type (type 1 v2 with an IOMMU, no-IOMMU without), opens the
// device, and with an IOMMU maps a buffer for DMA (the IOMMU's page tables
// take it).
func checkContainer(t *testing.T, b invm.Binding) {
	t.Helper()
	container, err := unix.Open("/dev/vfio/vfio", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Errorf("%s: open /dev/vfio/vfio: %v", b.PCIAddress, err)
		return
	}
	defer unix.Close(container)
	if v, err := ioctl(container, vfioGetAPIVersion, 0); err != nil || v != vfioAPIVersion {
		t.Errorf("%s: VFIO API version %d (%v)", b.PCIAddress, v, err)
	}
	typ := uintptr(vfioType1v2IOMMU)
	if b.NoIOMMU {
		typ = vfioNoIOMMUIOMMU
	}
	if ok, err := ioctl(container, vfioCheckExtension, typ); err != nil || ok != 1 {
		t.Errorf("%s: VFIO IOMMU type %d not supported (%v)", b.PCIAddress, typ, err)
		return
	}
	group, err := unix.Open(b.Node, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Errorf("%s: open %s: %v", b.PCIAddress, b.Node, err)
		return
	}
	defer unix.Close(group)
	status := [2]uint32{8, 0} // argsz, flags
	if _, err := ioctlPtr(group, vfioGroupGetStatus, unsafe.Pointer(&status)); err != nil || status[1]&vfioGroupViable == 0 {
		t.Errorf("%s: group %s not viable (flags %#x, %v)", b.PCIAddress, b.Node, status[1], err)
		return
	}
	cfd := int32(container)
	if _, err := ioctlPtr(group, vfioGroupSetContainer, unsafe.Pointer(&cfd)); err != nil {
		t.Errorf("%s: VFIO_GROUP_SET_CONTAINER: %v", b.PCIAddress, err)
		return
	}
	if _, err := ioctl(container, vfioSetIOMMU, typ); err != nil {
		t.Errorf("%s: VFIO_SET_IOMMU(%d): %v", b.PCIAddress, typ, err)
		return
	}
	name := append([]byte(b.PCIAddress), 0)
	dev, err := ioctlPtr(group, vfioGroupGetDeviceFD, unsafe.Pointer(&name[0]))
	if err != nil {
		t.Errorf("%s: VFIO_GROUP_GET_DEVICE_FD: %v", b.PCIAddress, err)
		return
	}
	unix.Close(int(dev))
	if b.NoIOMMU {
		t.Logf("%s: VFIO container with IOMMU type 8 (no-IOMMU), device opened", b.PCIAddress)
		return
	}
	const size = 1 << 20
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	m := struct {
		argsz, flags      uint32
		vaddr, iova, size uint64
	}{argsz: 32, flags: vfioDMARead | vfioDMAWrite, vaddr: uint64(uintptr(unsafe.Pointer(&buf[0]))), iova: 1 << 30, size: size}
	start := time.Now()
	if _, err := ioctlPtr(container, vfioIOMMUMapDMA, unsafe.Pointer(&m)); err != nil {
		t.Errorf("%s: VFIO_IOMMU_MAP_DMA of 1 MiB at IOVA 1 GiB: %v", b.PCIAddress, err)
		return
	}
	t.Logf("%s: VFIO container with IOMMU type 1 v2, device opened, 1 MiB mapped for DMA at IOVA 0x%x in %v", b.PCIAddress, m.iova, time.Since(start).Round(time.Microsecond))
}
