// Package nics proves, inside a guest, the VM shape go_vm_test asked for:
// the NICs at their documented PCI addresses with the expected driver
// bound and the deterministic MACs, the management NIC at its own address
// apart from them and leading nowhere, frames crossing each back-to-back
// NIC pair, and
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
	return protoSocket(t, name, etherType)
}

// protoSocket opens a raw socket on interface name for frames of EtherType
// proto, with a 200 ms receive timeout.
func protoSocket(t *testing.T, name string, proto uint16) (int, int) {
	t.Helper()
	iface, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: iface.Index}); err != nil {
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

// txPackets reads the interface's transmitted-packets counter.
func txPackets(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "statistics", "tx_packets"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// slirpGateway is the address QEMU's user-mode network ("-netdev user")
// answers ARP for: if the management NIC were wired to it (a way out to
// the host's network), the ARP request below would get a reply.
var slirpGateway = net.IPv4(10, 0, 2, 2).To4()

// TestMgmtNICIsolated proves the management NIC leads nowhere: frames it
// sends (counted as transmitted by its driver) reach none of the fabric
// NICs, and an ARP request for QEMU's user-network gateway gets no answer
// (nothing is on its hub). A VM without one has nothing to check, unless
// the target asked for one (as in TestMgmtNIC).
func TestMgmtNICIsolated(t *testing.T) {
	invm.Require(t)
	if os.Getenv(invm.EnvMgmtNIC) == "" {
		if want := os.Getenv(envWantMgmtNIC); want != "" {
			t.Fatalf("$%s is not set, but the target asked for a %s management NIC", invm.EnvMgmtNIC, want)
		}
		t.Logf("no management NIC asked for ($%s and $%s unset)", invm.EnvMgmtNIC, envWantMgmtNIC)
		return
	}
	m, err := invm.MgmtNIC()
	if err != nil {
		t.Fatal(err)
	}
	if m.Name == "" {
		t.Fatalf("management NIC at %s: no network interface bound", m.PCIAddress)
	}
	nics, _ := invm.NICs()
	up(t, m.Name)
	var fabric []int
	for _, n := range nics {
		up(t, n.Name)
		fd, _ := packetSocket(t, n.Name)
		fabric = append(fabric, fd)
	}
	const ethARP = 0x0806
	arpFD, index := protoSocket(t, m.Name, ethARP)
	probeFD, _ := packetSocket(t, m.Name)
	broadcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// ARP who-has 10.0.2.2 tell 10.0.2.15 (QEMU user network's guest).
	arp := append(append([]byte{}, broadcast...), m.MAC...)
	arp = append(arp, ethARP>>8, ethARP&0xff, 0, 1, 8, 0, 6, 4, 0, 1)
	arp = append(append(arp, m.MAC...), 10, 0, 2, 15)
	arp = append(append(arp, make([]byte, 6)...), slirpGateway...)
	for len(arp) < 60 {
		arp = append(arp, 0)
	}
	payload := "invm management NIC isolation probe"
	probe := append(append(append([]byte{}, broadcast...), m.MAC...), byte(etherType>>8), byte(etherType&0xff))
	probe = append(probe, payload...)
	for len(probe) < 60 {
		probe = append(probe, 0)
	}
	to := func(proto uint16) *unix.SockaddrLinklayer {
		sa := &unix.SockaddrLinklayer{Ifindex: index, Halen: 6, Protocol: htons(proto)}
		copy(sa.Addr[:], broadcast)
		return sa
	}

	before := txPackets(t, m.Name)
	sent := 0
	buf := make([]byte, 2048)
	// Links come up asynchronously: keep sending for a while, listening
	// for an answer on the management NIC and for the probe on the fabric.
	for round := 0; round < 5; round++ {
		for _, f := range []struct {
			fd    int
			frame []byte
			proto uint16
		}{{arpFD, arp, ethARP}, {probeFD, probe, etherType}} {
			if err := unix.Sendto(f.fd, f.frame, 0, to(f.proto)); err != nil {
				t.Logf("send on %s: %v (link not up yet?)", m.Name, err)
				continue
			}
			sent++
		}
		// Read every frame until the socket's 200 ms timeout (our own
		// outgoing frames show up on the management NIC's sockets too).
		for {
			n, _, err := unix.Recvfrom(arpFD, buf, 0)
			if err != nil {
				break
			}
			if n >= 42 && !bytes.Equal(buf[6:12], m.MAC) {
				t.Fatalf("the management NIC %s got an ARP frame from %s (op %d): something is on its network", m.Name, net.HardwareAddr(buf[6:12]), int(buf[20])<<8|int(buf[21]))
			}
		}
		for i, fd := range fabric {
			for {
				n, _, err := unix.Recvfrom(fd, buf, 0)
				if err != nil {
					break
				}
				if n >= 14 && bytes.Contains(buf[14:n], []byte(payload)) {
					t.Fatalf("fabric NIC %d (%s) received the management NIC's frame", i, nics[i].Name)
				}
			}
		}
	}
	// The frames really left: without this the test would pass with the
	// NIC down.
	if tx := txPackets(t, m.Name) - before; sent == 0 || tx < sent {
		state := map[string]string{}
		for _, f := range []string{"operstate", "carrier", "flags", "statistics/tx_dropped", "statistics/tx_errors"} {
			b, err := os.ReadFile(filepath.Join("/sys/class/net", m.Name, f))
			state[f] = strings.TrimSpace(string(b))
			if err != nil {
				state[f] = err.Error()
			}
		}
		t.Fatalf("the management NIC %s transmitted %d packets of the %d sent (%v): the probe proves nothing", m.Name, tx, sent, state)
	}
	t.Logf("%s: %d frames sent (ARP for %s, broadcast probes), no answer, none on the %d fabric NICs", m.Name, sent, slirpGateway, len(fabric))
}

// TestLoneNICTransmits: the last of an odd number of NICs is alone on its
// hub, and its frames must still leave it (and vanish) rather than stall
// its TX ring. An even number of NICs has no lone one.
func TestLoneNICTransmits(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	if len(nics)%2 == 0 {
		t.Logf("%d NICs: none is alone on its hub", len(nics))
		return
	}
	n := nics[len(nics)-1]
	up(t, n.Name)
	fd, index := packetSocket(t, n.Name)
	frame := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, n.MAC...), byte(etherType>>8), byte(etherType&0xff))
	frame = append(frame, "invm lone NIC probe"...)
	for len(frame) < 60 {
		frame = append(frame, 0)
	}
	to := &unix.SockaddrLinklayer{Ifindex: index, Halen: 6, Protocol: htons(etherType)}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	before := txPackets(t, n.Name)
	sent := 0
	// Links come up asynchronously (e1000's watchdog): retry.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := unix.Sendto(fd, frame, 0, to); err == nil {
			sent++
		}
		if txPackets(t, n.Name)-before >= 3 {
			t.Logf("NIC %d (%s, %s) alone on its hub: %d frames transmitted", len(nics)-1, n.Name, n.Model, txPackets(t, n.Name)-before)
			return
		}
	}
	t.Errorf("NIC %d (%s, %s) alone on its hub transmitted %d of %d frames in 20s: its TX stalls", len(nics)-1, n.Name, n.Model, txPackets(t, n.Name)-before, sent)
}
