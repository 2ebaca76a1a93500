// Package nics proves, inside a guest, the VM shape go_vm_test asked for:
// the NICs at their documented PCI addresses with the expected driver
// bound and the deterministic MACs, the management NIC at its own address
// apart from them, frames crossing each back-to-back NIC pair, and
// hugetlbfs mounted with the requested pages. Run it with
//
//	go test -exec 'invm -nics e1000,virtio_net -mgmt-nic virtio_net -guest-hugepages 2M:64 -memory 512' ./tests/nics/
//
// or through its go_vm_test targets (BUILD.bazel).
package nics

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// envWantMgmtNIC is set (to the model) by the targets that ask for a
// management NIC, so that its absence fails instead of going unnoticed.
const envWantMgmtNIC = "NICS_WANT_MGMT_NIC"

// TestMgmtNIC finds the management NIC at its documented PCI address
// (0000:00:0f.0) with its driver bound and its deterministic MAC (the
// fabric NICs' hash, ending in ff), and checks it is none of the fabric
// NICs. A VM without one (no $INVM_MGMT_NIC) has nothing to check, unless
// the target asked for one.
func TestMgmtNIC(t *testing.T) {
	invm.Require(t)
	want := os.Getenv(envWantMgmtNIC)
	if os.Getenv(invm.EnvMgmtNIC) == "" {
		if want != "" {
			t.Fatalf("$%s is not set, but the target asked for a %s management NIC ($%s): the runner did not give the guest one",
				invm.EnvMgmtNIC, want, envWantMgmtNIC)
		}
		t.Logf("no management NIC asked for ($%s and $%s unset)", invm.EnvMgmtNIC, envWantMgmtNIC)
		return
	}
	m, err := invm.MgmtNIC()
	if err != nil {
		t.Fatal(err)
	}
	if want != "" && m.Model != want {
		t.Errorf("management NIC model %q, want %q", m.Model, want)
	}
	if m.PCIAddress != "0000:00:0f.0" {
		t.Errorf("management NIC at %s, want 0000:00:0f.0", m.PCIAddress)
	}
	if m.Name == "" {
		t.Fatalf("management NIC (%s at %s): no network interface bound", m.Model, m.PCIAddress)
	}
	if m.Driver != drivers[m.Model] {
		t.Errorf("management NIC (%s): driver %q, want %q", m.Model, m.Driver, drivers[m.Model])
	}
	if m.HardwareAddr.String() != m.MAC.String() {
		t.Errorf("management NIC (%s): MAC %s, want the runner's %s", m.Name, m.HardwareAddr, m.MAC)
	}
	if m.MAC[0] != 0x02 || m.MAC[5] != 0xff {
		t.Errorf("management NIC: MAC %s is not 02:...:ff", m.MAC)
	}
	ids := map[string]string{"virtio_net": "0x1af4", "e1000": "0x8086", "e1000e": "0x8086"}
	if b, err := os.ReadFile(filepath.Join("/sys/bus/pci/devices", m.PCIAddress, "vendor")); err != nil || strings.TrimSpace(string(b)) != ids[m.Model] {
		t.Errorf("management NIC at %s: vendor %q (%v), want %s", m.PCIAddress, strings.TrimSpace(string(b)), err, ids[m.Model])
	}
	// It is not one of the fabric NICs.
	nics, err := invm.NICs()
	if err != nil {
		t.Logf("no fabric NICs: %v", err)
	}
	for i, n := range nics {
		if n.PCIAddress == m.PCIAddress || n.Name == m.Name || bytes.Equal(n.MAC, m.MAC) {
			t.Errorf("management NIC %s (%s, %s) is also fabric NIC %d (%s, %s, %s)", m.PCIAddress, m.Name, m.MAC, i, n.PCIAddress, n.Name, n.MAC)
		}
		if !bytes.Equal(n.MAC[:5], m.MAC[:5]) {
			t.Errorf("management NIC MAC %s and NIC %d's %s do not share the test's prefix", m.MAC, i, n.MAC)
		}
	}
	t.Logf("management NIC: %s %s %s driver %s MAC %s", m.Model, m.PCIAddress, m.Name, m.Driver, m.HardwareAddr)
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

// etherType is the IEEE local experimental EtherType the probe frames use.
const etherType = 0x88b5

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// up sets the interface name up.
func up(t *testing.T, name string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatalf("%s: SIOCGIFFLAGS: %v", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("%s: SIOCSIFFLAGS: %v", name, err)
	}
}

// packetSocket opens a raw socket on interface name for etherType frames.
func packetSocket(t *testing.T, name string) (int, int) {
	t.Helper()
	iface, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(etherType)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: iface.Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd, iface.Index
}

// TestBackToBack sends frames from NIC 2k to NIC 2k+1: each pair is cabled
// back to back inside QEMU.
func TestBackToBack(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	if len(nics) < 2 {
		t.Fatalf("%d NICs: the back-to-back test needs a pair", len(nics))
	}
	for i := 0; i+1 < len(nics); i += 2 {
		a, b := nics[i], nics[i+1]
		up(t, a.Name)
		up(t, b.Name)
		tx, txIndex := packetSocket(t, a.Name)
		rx, _ := packetSocket(t, b.Name)
		payload := fmt.Sprintf("invm back-to-back %s -> %s", a.PCIAddress, b.PCIAddress)
		frame := append(append(append([]byte{}, b.MAC...), a.MAC...), byte(etherType>>8), byte(etherType&0xff))
		frame = append(frame, payload...)
		for len(frame) < 60 {
			frame = append(frame, 0)
		}
		to := &unix.SockaddrLinklayer{Ifindex: txIndex, Halen: 6, Protocol: htons(etherType)}
		copy(to.Addr[:], b.MAC)
		got := false
		buf := make([]byte, 2048)
		// Links come up asynchronously (e1000's watchdog): retry.
		for deadline := time.Now().Add(20 * time.Second); !got && time.Now().Before(deadline); {
			if err := unix.Sendto(tx, frame, 0, to); err != nil {
				t.Logf("send on %s: %v (link not up yet?)", a.Name, err)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for {
				n, _, err := unix.Recvfrom(rx, buf, 0)
				if err != nil {
					break // timeout: send again
				}
				if n >= 14 && bytes.Contains(buf[14:n], []byte(payload)) && bytes.Equal(buf[6:12], a.MAC) {
					got = true
					break
				}
			}
		}
		if !got {
			t.Errorf("no frame from %s (%s) reached %s (%s) within 20s", a.Name, a.PCIAddress, b.Name, b.PCIAddress)
		} else {
			t.Logf("%s (%s) -> %s (%s): frame received", a.Name, a.Model, b.Name, b.Model)
		}
	}
}
