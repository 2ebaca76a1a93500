package vfio

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeKernel is a sysfs and /dev tree in a temporary directory and a Write
// that acts on it the way the kernel does: driver_override is stored,
// unbind removes the driver link, drivers_probe binds the overriding
// driver if it is registered and (for vfio-pci) the device has an IOMMU
// group or no-IOMMU mode is on, making the group's node.
type fakeKernel struct {
	t       *testing.T
	root    string
	writes  []string // "path-below-sys data"
	noiommu bool     // enable_unsafe_noiommu_mode
	probeNo bool     // vfio-pci refuses every device
	noNode  bool     // devtmpfs never makes the node
}

func (k *fakeKernel) sys(p ...string) string {
	return filepath.Join(append([]string{k.root, "sys"}, p...)...)
}

func (k *fakeKernel) mkdir(p string) {
	k.t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		k.t.Fatal(err)
	}
}

func (k *fakeKernel) file(p, data string) {
	k.t.Helper()
	k.mkdir(filepath.Dir(p))
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

func (k *fakeKernel) link(target, p string) {
	k.t.Helper()
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		k.t.Fatal(err)
	}
}

// device adds a PCI device of class class bound to driver ("" for none)
// in IOMMU group group (-1 for none).
func (k *fakeKernel) device(addr, class, driver string, group int) {
	dir := k.sys("bus/pci/devices", addr)
	k.file(filepath.Join(dir, "class"), class+"\n")
	k.file(filepath.Join(dir, "driver_override"), "(null)\n")
	if driver != "" {
		k.mkdir(k.sys("bus/pci/drivers", driver))
		k.link("../../../bus/pci/drivers/"+driver, filepath.Join(dir, "driver"))
	}
	if group >= 0 {
		g := k.sys("kernel/iommu_groups", strconv.Itoa(group))
		k.file(filepath.Join(g, "type"), "DMA\n")
		k.link("../../../kernel/iommu_groups/"+strconv.Itoa(group), filepath.Join(dir, "iommu_group"))
	}
}

func newFakeKernel(t *testing.T) *fakeKernel {
	k := &fakeKernel{t: t, root: t.TempDir()}
	k.mkdir(k.sys("bus/pci/drivers", DriverName))
	k.mkdir(k.sys("bus/pci/devices"))
	k.mkdir(filepath.Join(k.root, "dev/vfio"))
	k.file(k.sys("bus/pci/drivers_probe"), "")
	return k
}

func (k *fakeKernel) binder() *Binder {
	mode := "N\n"
	if k.noiommu {
		mode = "Y\n"
	}
	k.file(k.sys("module/vfio/parameters/enable_unsafe_noiommu_mode"), mode)
	return &Binder{Sysfs: k.sys(), Dev: filepath.Join(k.root, "dev"), Write: k.write, NodeTimeout: 50 * time.Millisecond}
}

func (k *fakeKernel) write(path, data string) error {
	rel, err := filepath.Rel(k.sys(), path)
	if err != nil || strings.HasPrefix(rel, "..") {
		k.t.Fatalf("write outside sysfs: %s", path)
	}
	k.writes = append(k.writes, rel+" "+strings.TrimSpace(data))
	switch {
	case strings.HasSuffix(rel, "/driver_override"):
		return os.WriteFile(path, []byte(data), 0o644)
	case strings.HasSuffix(rel, "/driver/unbind"):
		dev := filepath.Dir(filepath.Dir(path))
		if filepath.Base(dev) != data {
			return errors.New("no such device")
		}
		return os.Remove(filepath.Join(dev, "driver"))
	case rel == "bus/pci/drivers_probe":
		dev := k.sys("bus/pci/devices", data)
		if _, err := os.Lstat(filepath.Join(dev, "driver")); err == nil {
			return nil // bound already
		}
		ov, _ := os.ReadFile(filepath.Join(dev, "driver_override"))
		drv := strings.TrimSpace(string(ov))
		if drv == "" || drv == "(null)" {
			drv = "e1000" // its own driver
		}
		if drv == DriverName {
			if k.probeNo {
				return nil
			}
			_, err := os.Lstat(filepath.Join(dev, "iommu_group"))
			switch {
			case err == nil:
			case k.noiommu:
				k.file(k.sys("kernel/iommu_groups/0/name"), noIOMMUGroupName+"\n")
				k.link("../../../kernel/iommu_groups/0", filepath.Join(dev, "iommu_group"))
			default:
				return nil // vfio-pci's probe fails with -EINVAL
			}
		}
		k.link("../../../bus/pci/drivers/"+drv, filepath.Join(dev, "driver"))
		if drv == DriverName && !k.noNode {
			l, _ := os.Readlink(filepath.Join(dev, "iommu_group"))
			node := filepath.Base(l)
			if k.noiommu {
				node = "noiommu-" + node
			}
			k.file(filepath.Join(k.root, "dev/vfio", node), "")
		}
		return nil
	}
	return errors.New("unexpected write")
}

func TestBind(t *testing.T) {
	const addr = "0000:00:10.0"
	for _, tc := range []struct {
		name    string
		setup   func(k *fakeKernel)
		addr    string
		want    Binding // Took ignored
		writes  []string
		err     error
		errText string
	}{
		{
			name:  "no-IOMMU mode",
			setup: func(k *fakeKernel) { k.noiommu = true; k.device(addr, "0x020000", "e1000", -1) },
			want:  Binding{PCIAddress: addr, PreviousDriver: "e1000", Group: 0, Node: "dev/vfio/noiommu-0", NoIOMMU: true},
			writes: []string{
				"bus/pci/devices/0000:00:10.0/driver_override vfio-pci",
				"bus/pci/devices/0000:00:10.0/driver/unbind 0000:00:10.0",
				"bus/pci/drivers_probe 0000:00:10.0",
			},
		},
		{
			name:  "IOMMU group",
			setup: func(k *fakeKernel) { k.device(addr, "0x020000", "virtio-pci", 5) },
			want:  Binding{PCIAddress: addr, PreviousDriver: "virtio-pci", Group: 5, Node: "dev/vfio/5"},
			writes: []string{
				"bus/pci/devices/0000:00:10.0/driver_override vfio-pci",
				"bus/pci/devices/0000:00:10.0/driver/unbind 0000:00:10.0",
				"bus/pci/drivers_probe 0000:00:10.0",
			},
		},
		{
			name:   "no driver before: nothing to unbind",
			setup:  func(k *fakeKernel) { k.device(addr, "0x020000", "", 3) },
			want:   Binding{PCIAddress: addr, Group: 3, Node: "dev/vfio/3"},
			writes: []string{"bus/pci/devices/0000:00:10.0/driver_override vfio-pci", "bus/pci/drivers_probe 0000:00:10.0"},
		},
		{
			name: "already bound: success, nothing written",
			setup: func(k *fakeKernel) {
				k.device(addr, "0x020000", DriverName, 4)
				k.file(filepath.Join(k.root, "dev/vfio/4"), "")
			},
			want: Binding{PCIAddress: addr, PreviousDriver: DriverName, AlreadyBound: true, Group: 4, Node: "dev/vfio/4"},
		},
		{
			name: "no such device lists the NICs",
			setup: func(k *fakeKernel) {
				k.device(addr, "0x020000", "e1000", 1)
				k.device("0000:00:04.0", "0x088000", "", 2)
			},
			addr:    "0000:00:1f.0",
			err:     ErrNoDevice,
			errText: "vfio: 0000:00:1f.0: no such PCI device; the guest's PCI NICs: 0000:00:10.0 (e1000)",
		},
		{
			name:    "no NICs at all",
			setup:   func(k *fakeKernel) {},
			err:     ErrNoDevice,
			errText: "the guest has no PCI NICs",
		},
		{
			name:    "bad address",
			setup:   func(k *fakeKernel) {},
			addr:    "00:10.0",
			err:     ErrBadAddress,
			errText: `vfio: "00:10.0": not a PCI address: write DDDD:BB:DD.F`,
		},
		{
			name:    "upper-case hex is not sysfs's",
			setup:   func(k *fakeKernel) {},
			addr:    "0000:00:1F.0",
			err:     ErrBadAddress,
			errText: "not a PCI address",
		},
		{
			name: "no vfio-pci driver names the kernel options",
			setup: func(k *fakeKernel) {
				k.device(addr, "0x020000", "e1000", 1)
				_ = os.Remove(k.sys("bus/pci/drivers", DriverName))
			},
			err:     ErrNoDriver,
			errText: "CONFIG_VFIO_PCI=y",
		},
		{
			name:    "no IOMMU, no-IOMMU mode off",
			setup:   func(k *fakeKernel) { k.device(addr, "0x020000", "e1000", -1) },
			err:     ErrNoIOMMU,
			errText: "vfio: bind 0000:00:10.0: no IOMMU group and VFIO no-IOMMU mode is off: give the guest an IOMMU",
		},
		{
			name:    "probe refused: put back on its driver",
			setup:   func(k *fakeKernel) { k.probeNo = true; k.device(addr, "0x020000", "e1000", 1) },
			err:     ErrProbe,
			errText: `vfio-pci did not bind the device (driver now ""; the guest console has the kernel's reason); driver_override cleared, the device is back on e1000`,
			writes: []string{
				"bus/pci/devices/0000:00:10.0/driver_override vfio-pci",
				"bus/pci/devices/0000:00:10.0/driver/unbind 0000:00:10.0",
				"bus/pci/drivers_probe 0000:00:10.0",
				"bus/pci/devices/0000:00:10.0/driver_override ",
				"bus/pci/drivers_probe 0000:00:10.0",
			},
		},
		{
			name:    "no node in time",
			setup:   func(k *fakeKernel) { k.noNode = true; k.device(addr, "0x020000", "e1000", 2) },
			err:     ErrNoNode,
			errText: "dev/vfio/2 did not appear in 50ms",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel(t)
			tc.setup(k)
			a := tc.addr
			if a == "" {
				a = addr
			}
			got, err := k.binder().Bind(a)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("Bind(%s) = %v, want %v containing %q", a, err, tc.err, tc.errText)
				}
			} else {
				if err != nil {
					t.Fatalf("Bind(%s): %v", a, err)
				}
				got.Took = 0
				tc.want.Node = filepath.Join(k.root, tc.want.Node)
				if got != tc.want {
					t.Errorf("Bind(%s) = %+v, want %+v", a, got, tc.want)
				}
			}
			if tc.writes != nil && !reflect.DeepEqual(k.writes, tc.writes) {
				t.Errorf("writes:\n%s\nwant:\n%s", strings.Join(k.writes, "\n"), strings.Join(tc.writes, "\n"))
			}
			if tc.writes == nil && tc.err == nil && tc.want.AlreadyBound && len(k.writes) > 0 {
				t.Errorf("already bound, yet wrote %q", k.writes)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	k := newFakeKernel(t)
	k.noiommu = true
	k.device("0000:00:10.0", "0x020000", "e1000", -1)
	k.device("0000:00:11.0", "0x020000", "", -1)
	b := k.binder()
	if _, err := b.Status("0000:00:10.0"); !errors.Is(err, ErrNotBound) || !strings.Contains(err.Error(), "it is on e1000; bind it first") {
		t.Errorf("Status of a NIC on e1000: %v", err)
	}
	if _, err := b.Status("0000:00:11.0"); !errors.Is(err, ErrNotBound) || !strings.Contains(err.Error(), "it is on no driver") {
		t.Errorf("Status of a NIC on no driver: %v", err)
	}
	bound, err := b.Bind("0000:00:10.0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Status("0000:00:10.0")
	if err != nil || st.Node != bound.Node || st.Group != bound.Group || !st.NoIOMMU || !st.AlreadyBound {
		t.Errorf("Status after Bind = %+v, %v; Bind gave %+v", st, err, bound)
	}
	if s := bound.String(); !strings.HasPrefix(s, "0000:00:10.0: e1000 -> vfio-pci, IOMMU group 0 (no-IOMMU), ") {
		t.Errorf("String() = %q", s)
	}
}

func TestValidAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"0000:00:10.0": true, "0000:00:1f.7": true, "ffff:ff:00.0": true,
		"0000:00:20.0": false, "0000:00:10.8": false, "0000:00:10": false, "0000-00:10.0": false,
		"0000:00:10.0 ": false, "../../../etc": false, "": false, "0000:0g:10.0": false,
	} {
		if got := ValidAddress(s); got != want {
			t.Errorf("ValidAddress(%q) = %v, want %v", s, got, want)
		}
	}
}
