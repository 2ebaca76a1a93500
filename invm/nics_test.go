package invm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/runner"
)

func TestEnvNamesMatchRunner(t *testing.T) {
	if EnvNICs != runner.EnvNICs || EnvGuestHugepages != runner.EnvGuestHugepages || EnvMgmtNIC != runner.EnvMgmtNIC {
		t.Fatalf("invm %s/%s/%s != runner %s/%s/%s", EnvNICs, EnvGuestHugepages, EnvMgmtNIC, runner.EnvNICs, runner.EnvGuestHugepages, runner.EnvMgmtNIC)
	}
	if EnvVFIONICs != runner.EnvVFIONICs {
		t.Fatalf("invm %s != runner %s", EnvVFIONICs, runner.EnvVFIONICs)
	}
}

func TestVFIONICs(t *testing.T) {
	t.Setenv(EnvVFIONICs, "")
	if got := VFIONICs(); got != nil {
		t.Errorf("VFIONICs() without $%s = %q", EnvVFIONICs, got)
	}
	t.Setenv(EnvVFIONICs, "0000:00:10.0,0000:00:12.0")
	if got := VFIONICs(); len(got) != 2 || got[0] != "0000:00:10.0" || got[1] != "0000:00:12.0" {
		t.Errorf("VFIONICs() = %q", got)
	}
}

// fakeSysfs builds a sysfs with an e1000 at 00:10.0 (eth1), a virtio-net at
// 00:11.0 (eth0, below virtio0) and a driverless device at 00:12.0.
func fakeSysfs(t *testing.T) string {
	root := t.TempDir()
	mk := func(p string) string {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(target, name string) {
		if err := os.Symlink(filepath.Join(root, target), filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("bus/pci/devices")
	mk("class/net")
	for _, d := range []string{"0000:00:10.0", "0000:00:11.0", "0000:00:12.0"} {
		mk("devices/pci0000:00/" + d)
		link("devices/pci0000:00/"+d, "bus/pci/devices/"+d)
	}
	mk("bus/pci/drivers/e1000")
	mk("bus/virtio/drivers/virtio_net")
	mk("devices/pci0000:00/0000:00:11.0/virtio0")
	link("bus/pci/drivers/e1000", "devices/pci0000:00/0000:00:10.0/driver")
	link("bus/virtio/drivers/virtio_net", "devices/pci0000:00/0000:00:11.0/virtio0/driver")
	for name, dev := range map[string]string{"eth1": "devices/pci0000:00/0000:00:10.0", "eth0": "devices/pci0000:00/0000:00:11.0/virtio0"} {
		mk("class/net/" + name)
		link(dev, "class/net/"+name+"/device")
	}
	write("class/net/eth1/address", "02:aa:bb:cc:dd:00\n")
	write("class/net/eth0/address", "02:aa:bb:cc:dd:01\n")
	mk("class/net/lo")
	return root
}

func TestNICs(t *testing.T) {
	old := sysfs
	sysfs = fakeSysfs(t)
	t.Cleanup(func() { sysfs = old })
	t.Setenv(EnvNICs, "e1000 0000:00:10.0 02:aa:bb:cc:dd:00,virtio_net 0000:00:11.0 02:aa:bb:cc:dd:01,e1000e 0000:00:12.0 02:aa:bb:cc:dd:02")
	nics, err := NICs()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ model, addr, name, driver, hw string }{
		{"e1000", "0000:00:10.0", "eth1", "e1000", "02:aa:bb:cc:dd:00"},
		{"virtio_net", "0000:00:11.0", "eth0", "virtio_net", "02:aa:bb:cc:dd:01"},
		{"e1000e", "0000:00:12.0", "", "", ""},
	}
	if len(nics) != len(want) {
		t.Fatalf("%d NICs, want %d", len(nics), len(want))
	}
	for i, w := range want {
		n := nics[i]
		hw := ""
		if n.HardwareAddr != nil {
			hw = n.HardwareAddr.String()
		}
		if n.Model != w.model || n.PCIAddress != w.addr || n.Name != w.name || n.Driver != w.driver || hw != w.hw {
			t.Errorf("NIC %d = %+v, want %+v", i, n, w)
		}
	}
	if n, err := NICByPCI("0000:00:11.0"); err != nil || n.Name != "eth0" {
		t.Errorf("NICByPCI = %+v, %v", n, err)
	}
	if _, err := NICByPCI("0000:00:13.0"); !errors.Is(err, ErrNoNIC) {
		t.Errorf("NICByPCI(absent) = %v", err)
	}
	t.Setenv(EnvNICs, "e1000 0000:00:14.0 02:aa:bb:cc:dd:00")
	if _, err := NICs(); !errors.Is(err, ErrNoNIC) {
		t.Errorf("NICs with a device missing from the bus = %v", err)
	}
	t.Setenv(EnvNICs, "")
	if _, err := NICs(); !errors.Is(err, ErrNoNIC) {
		t.Errorf("NICs without $%s = %v", EnvNICs, err)
	}
}

func TestMgmtNIC(t *testing.T) {
	old := sysfs
	sysfs = fakeSysfs(t)
	t.Cleanup(func() { sysfs = old })
	t.Setenv(EnvNICs, "e1000 0000:00:10.0 02:aa:bb:cc:dd:00")
	t.Setenv(EnvMgmtNIC, "virtio_net 0000:00:11.0 02:aa:bb:cc:dd:01")
	m, err := MgmtNIC()
	if err != nil || m.Model != "virtio_net" || m.PCIAddress != "0000:00:11.0" || m.Name != "eth0" || m.Driver != "virtio_net" ||
		m.HardwareAddr.String() != "02:aa:bb:cc:dd:01" || m.MAC.String() != "02:aa:bb:cc:dd:01" {
		t.Errorf("MgmtNIC = %+v, %v", m, err)
	}
	// NICs lists the fabric NICs only.
	if nics, err := NICs(); err != nil || len(nics) != 1 || nics[0].PCIAddress != "0000:00:10.0" {
		t.Errorf("NICs next to a mgmt NIC = %+v, %v", nics, err)
	}
	t.Setenv(EnvMgmtNIC, "virtio_net 0000:00:0f.0 02:aa:bb:cc:dd:ff")
	if _, err := MgmtNIC(); !errors.Is(err, ErrNoNIC) {
		t.Errorf("MgmtNIC missing from the bus = %v", err)
	}
	t.Setenv(EnvMgmtNIC, "virtio_net 0000:00:0f.0")
	if _, err := MgmtNIC(); err == nil {
		t.Error("MgmtNIC with a bad entry: want an error")
	}
	t.Setenv(EnvMgmtNIC, "")
	if _, err := MgmtNIC(); !errors.Is(err, ErrNoNIC) {
		t.Errorf("MgmtNIC without $%s = %v", EnvMgmtNIC, err)
	}
}

func TestHugepageMount(t *testing.T) {
	old := procMounts
	procMounts = filepath.Join(t.TempDir(), "mounts")
	t.Cleanup(func() { procMounts = old })
	os.WriteFile(procMounts, []byte("hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"+
		"hugetlbfs /dev/hugepages-2M hugetlbfs rw,relatime,pagesize=2M 0 0\n"+
		"tmpfs /dev/hugepages-1G tmpfs rw 0 0\n"), 0o644)
	if dir, err := HugepageMount("2M"); err != nil || dir != "/dev/hugepages-2M" {
		t.Errorf("HugepageMount(2M) = %q, %v", dir, err)
	}
	if _, err := HugepageMount("1G"); err == nil {
		t.Error("HugepageMount(1G) on a tmpfs: want an error")
	}
	if _, err := HugepageMount("4k"); err == nil {
		t.Error("HugepageMount(4k): want an error")
	}
	t.Setenv(EnvGuestHugepages, "2M:64")
	if size, n, ok := Hugepages(); size != "2M" || n != 64 || !ok {
		t.Errorf("Hugepages = %q, %d, %v", size, n, ok)
	}
	t.Setenv(EnvGuestHugepages, "")
	if _, _, ok := Hugepages(); ok {
		t.Error("Hugepages without the variable: ok")
	}
}
