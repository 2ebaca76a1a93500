//go:build dpdk

package dpdk

// BenchmarkForward measures frames/s through each NIC pair, first along the
// guest kernel's own path (AF_PACKET sockets on the kernel's e1000, e1000e
// and virtio_net drivers), then, after binding the same two NICs to
// vfio-pci, through DPDK's PMDs: side by side in one guest. Run it with
//
//	tools/bazel test //tests/dpdk:forward_bench_vm_test --test_output=streamed
//
// (a benchmark, not a test: the target is manual). Each iteration forwards
// one frame from the pair's first NIC to its second.

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/dpdk"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

// benchPairs are the guest's NICs in cabled pairs, on their kernel drivers.
func benchPairs(b *testing.B) []pair {
	nics, err := invm.NICs()
	if err != nil {
		b.Fatal(err)
	}
	var out []pair
	for i := 0; i+1 < len(nics); i += 2 {
		out = append(out, pair{model: nics[i].Model, tx: nics[i], rx: nics[i+1]})
	}
	return out
}

func BenchmarkForward(b *testing.B) {
	invm.Require(b)
	ps := benchPairs(b)
	for _, p := range ps {
		b.Run(p.model+"/af_packet", func(b *testing.B) { benchKernel(b, p) })
	}
	// Hand every NIC to vfio-pci, then start one EAL over all of them.
	var allow []string
	for _, p := range ps {
		for _, n := range []invm.NIC{p.tx, p.rx} {
			if _, err := invm.BindVFIO(n.PCIAddress); err != nil {
				b.Fatal(err)
			}
			allow = append(allow, n.PCIAddress)
		}
	}
	t0 := time.Now()
	if err := dpdk.InitEAL(dpdk.EALOptions{Hugepages: true, MemoryMB: 96, Allow: allow}); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("EAL init with %d ports: %v\n", len(allow), time.Since(t0))
	pool, err := dpdk.NewPktPool("bench", 8191, 2048)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range ps {
		tx, rx := openPair(b, p, pool)
		frames := benchFrames(p)
		b.Run(p.model+"/dpdk", func(b *testing.B) { benchDPDK(b, tx, rx, frames) })
	}
}

// benchKernel forwards b.N frames with AF_PACKET sockets bound to the two
// interfaces.
func benchKernel(b *testing.B, p pair) {
	tx, rx := packetSocket(b, p.tx), packetSocket(b, p.rx)
	frames := benchFrames(p)
	buf := make([]byte, 2048)
	txAddr := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex(b, p.tx)}
	b.ResetTimer()
	sent, got, lost := 0, 0, 0
	for got+lost < b.N {
		for sent < b.N && sent-got-lost < benchWindow {
			if err := unix.Sendto(tx, frames[sent%len(frames)], 0, txAddr); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		n, _, err := unix.Recvfrom(rx, buf, 0)
		switch {
		case err == unix.EAGAIN:
			// Nothing for rxTimeout: what is in flight is lost.
			lost += sent - got - lost
		case err != nil:
			b.Fatalf("%s: after %d of %d frames: %v", p.rx.Name, got, b.N, err)
		case ours(buf[:n]):
			got++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(lost), "lost")
}

// ours reports whether f is one of makeFrame's frames (the kernel also
// sends its own, e.g. IPv6 neighbour discovery when an interface comes up).
func ours(f []byte) bool {
	_, _, err := parseFrame(f)
	return err == nil && f[14] == 0x45
}

// benchDPDK forwards b.N frames through the pair's PMDs. The ports stay
// open across the benchmark's runs (closing a PCI port releases it).
func benchDPDK(b *testing.B, tx, rx *dpdk.Port, frames [][]byte) {
	b.ResetTimer()
	sent, got := 0, 0
	for got < b.N {
		if n := min(burst, b.N-sent, benchWindow-(sent-got)); n > 0 {
			start := sent % len(frames)
			k, err := tx.TxBurst(frames[start:min(start+n, len(frames))])
			if err != nil {
				b.Fatal(err)
			}
			sent += k
		}
		fs, err := rx.RxBurst(burst)
		if err != nil {
			b.Fatal(err)
		}
		got += len(fs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// openPair opens both ports of p.
func openPair(b *testing.B, p pair, pool *dpdk.PktPool) (tx, rx *dpdk.Port) {
	open := func(n invm.NIC) *dpdk.Port {
		id, err := dpdk.PortByName(n.PCIAddress)
		if err != nil {
			b.Fatal(err)
		}
		port, err := dpdk.OpenPort(id, pool, dpdk.PortConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { port.Close() })
		return port
	}
	return open(p.tx), open(p.rx)
}

// benchFrames are 1024 frames of the pair (the window cycles through them).
func benchFrames(p pair) [][]byte {
	fs := make([][]byte, 1024)
	for i := range fs {
		fs[i] = makeFrame(i, p.tx.MAC, p.rx.MAC)
	}
	return fs
}

// packetSocket is an AF_PACKET socket on n's interface, which it brings up
// (promiscuous, so frames to the other NIC's MAC are taken).
func packetSocket(b *testing.B, n invm.NIC) int {
	ifi := ifindex(b, n)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
		b.Fatal(err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		b.Fatal(err)
	}
	// Outgoing frames of this socket's own interface are not received.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		b.Fatal(err)
	}
	tv := unix.NsecToTimeval(rxTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		b.Fatal(err)
	}
	return fd
}

// ifindex brings n's interface up and returns its index.
func ifindex(b *testing.B, n invm.NIC) int {
	ifi, err := net.InterfaceByName(n.Name)
	if err != nil {
		b.Fatalf("%s (%s): %v", n.PCIAddress, n.Name, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		req, err := unix.NewIfreq(n.Name)
		if err != nil {
			b.Fatal(err)
		}
		req.SetUint16(uint16(ifi.Flags) | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, req); err != nil {
			b.Fatalf("%s up: %v", n.Name, err)
		}
	}
	// Frames sent before the link is up are lost (e1000 takes a while).
	for deadline := time.Now().Add(linkUpTimeout); ; time.Sleep(10 * time.Millisecond) {
		if c, err := os.ReadFile("/sys/class/net/" + n.Name + "/carrier"); err == nil && string(c) == "1\n" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: no carrier after %v", n.Name, linkUpTimeout)
		}
	}
	return ifi.Index
}

// linkUpTimeout bounds the wait for an interface's carrier.
const linkUpTimeout = 10 * time.Second

// benchWindow bounds the frames in flight on both paths alike: below the
// kernel e1000 driver's 256-descriptor RX ring (at the test's window of 256
// it dropped ~9% of the frames).
const benchWindow = 64

// rxTimeout is how long the kernel path waits for a frame before counting
// what is in flight as lost.
const rxTimeout = 500 * time.Millisecond

func htons(v uint16) uint16 { return v<<8 | v>>8 }
