// Package nics proves, inside a guest, the VM shape go_vm_test asked for:
// the NICs at their documented PCI addresses with the expected driver
// bound and the deterministic MACs, and hugetlbfs mounted with the
// requested pages. Run it with
//
//	go test -exec 'invm -nics e1000,virtio_net -guest-hugepages 2M:16' ./tests/nics/
//
// or through its go_vm_test targets (BUILD.bazel).
package nics

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestMain(m *testing.M) { invm.Main(m) }

// drivers maps a NIC model to the network driver bound to it.
var drivers = map[string]string{"virtio_net": "virtio_net", "e1000": "e1000", "e1000e": "e1000e"}

func TestNICs(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nics {
		// The documented addresses: NIC i at 0000:00:(0x10+i).0.
		if want := "0000:00:" + strconv.FormatInt(int64(0x10+i), 16) + ".0"; n.PCIAddress != want {
			t.Errorf("NIC %d at %s, want %s", i, n.PCIAddress, want)
		}
		if n.Name == "" {
			t.Errorf("NIC %d (%s at %s): no network interface bound", i, n.Model, n.PCIAddress)
			continue
		}
		if n.Driver != drivers[n.Model] {
			t.Errorf("NIC %d (%s): driver %q, want %q", i, n.Model, n.Driver, drivers[n.Model])
		}
		if n.HardwareAddr.String() != n.MAC.String() {
			t.Errorf("NIC %d (%s): MAC %s, want the runner's %s", i, n.Name, n.HardwareAddr, n.MAC)
		}
		if n.MAC[0] != 0x02 || int(n.MAC[5]) != i {
			t.Errorf("NIC %d: MAC %s is not 02:...:%02x (locally administered, ending in its index)", i, n.MAC, i)
		}
		t.Logf("NIC %d: %s %s %s driver %s MAC %s", i, n.Model, n.PCIAddress, n.Name, n.Driver, n.HardwareAddr)
	}
	// The PCI vendor:device of each model.
	ids := map[string]string{"virtio_net": "0x1af4", "e1000": "0x8086", "e1000e": "0x8086"}
	for _, n := range nics {
		b, err := os.ReadFile(filepath.Join("/sys/bus/pci/devices", n.PCIAddress, "vendor"))
		if err != nil || strings.TrimSpace(string(b)) != ids[n.Model] {
			t.Errorf("%s at %s: vendor %q (%v), want %s", n.Model, n.PCIAddress, strings.TrimSpace(string(b)), err, ids[n.Model])
		}
	}
}

// TestHugepages checks the guest hugepage reservation the runner made.
func TestHugepages(t *testing.T) {
	invm.Require(t)
	size, count, ok := invm.Hugepages()
	if !ok {
		t.Fatalf("$%s is not set: run with guest hugepages (go_vm_test guest_hugepages, invm -guest-hugepages)", invm.EnvGuestHugepages)
	}
	dir, err := invm.HugepageMount(size)
	if err != nil {
		t.Fatal(err)
	}
	kB := map[string]int{"2M": 2048, "1G": 1048576}[size]
	b, err := os.ReadFile(filepath.Join("/sys/kernel/mm/hugepages", "hugepages-"+strconv.Itoa(kB)+"kB", "nr_hugepages"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); got != count {
		t.Errorf("%d %s pages reserved, want %d", got, size, count)
	}
	// A file on the mount really gets a hugepage.
	f, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(kB) * 1024); err != nil {
		t.Fatalf("sizing a %s hugetlbfs file: %v", size, err)
	}
	t.Logf("%d x %s at %s", count, size, dir)
}
