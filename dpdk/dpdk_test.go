//go:build dpdk

package dpdk_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/dpdk"
)

// The EAL starts once per process: TestMain starts it with two ring PMD
// ports (net_ring: what a port sends it receives), one per test that opens
// a port (closing a virtual port removes it).
func TestMain(m *testing.M) {
	if err := dpdk.InitEAL(dpdk.EALOptions{VDevs: []string{"net_ring0", "net_ring1"}}); err != nil {
		fmt.Fprintln(os.Stderr, "EAL:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestEALTwiceIsAnError(t *testing.T) {
	err := dpdk.InitEAL(dpdk.EALOptions{})
	if !errors.Is(err, dpdk.ErrEALTwice) || !strings.Contains(err.Error(), "net_ring0") || !strings.Contains(err.Error(), "it succeeded") {
		t.Fatalf("second InitEAL: %v, want ErrEALTwice naming the first call's args", err)
	}
	if v := dpdk.Version(); !strings.HasPrefix(v, "DPDK ") {
		t.Errorf("Version() = %q", v)
	}
}

// frame is an Ethernet frame whose payload numbers it.
func frame(i int) []byte {
	f := make([]byte, 60+i%64)
	copy(f, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5}) // local experimental ethertype
	binary.BigEndian.PutUint32(f[14:], uint32(i))
	for j := 18; j < len(f); j++ {
		f[j] = byte(i + j)
	}
	return f
}

// TestRingLoopback sends numbered frames in bursts and receives every one
// back, byte for byte and in order, with the port's counters agreeing.
func TestRingLoopback(t *testing.T) {
	pool, err := dpdk.NewPktPool("loop", 1023, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if dpdk.PortCount() < 1 {
		t.Fatalf("%d ports, want net_ring0 and net_ring1", dpdk.PortCount())
	}
	port, err := dpdk.OpenPort(0, pool, dpdk.PortConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if d := port.DriverName(); d != "net_ring" {
		t.Errorf("driver %q, want net_ring", d)
	}
	if _, err := port.MAC(); err != nil {
		t.Error(err)
	}
	const total, burst = 2000, 32
	next := 0
	for sent := 0; sent < total; {
		var frames [][]byte
		for i := sent; i < min(sent+burst, total); i++ {
			frames = append(frames, frame(i))
		}
		n, err := port.TxBurst(frames)
		if err != nil {
			t.Fatal(err)
		}
		sent += n
		got, err := port.RxBurst(dpdk.MaxBurst)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if !bytes.Equal(g, frame(next)) {
				t.Fatalf("frame %d came back as % x", next, g[:min(len(g), 24)])
			}
			next++
		}
	}
	if next != total {
		t.Fatalf("received %d of %d frames", next, total)
	}
	st, err := port.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// net_ring counts packets, not bytes.
	if st.OPackets != total || st.IPackets != total || st.OBytes != 0 || st.IBytes != 0 {
		t.Errorf("stats %+v, want %d packets each way (and no bytes: net_ring does not count them)", st, total)
	}
	if got := pool.Available(); got != 1023 {
		t.Errorf("%d mbufs free after the run, want all 1023 back (a leak)", got)
	}
}

func TestBadInput(t *testing.T) {
	pool, err := dpdk.NewPktPool("bad", 63, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := dpdk.OpenPort(7, pool, dpdk.PortConfig{}); !errors.Is(err, dpdk.ErrNoPort) {
		t.Errorf("OpenPort(7): %v, want ErrNoPort", err)
	}
	if _, err := dpdk.NewPktPool("bad", 63, 0); !errors.Is(err, dpdk.ErrDPDK) {
		t.Errorf("a second pool of the same name: %v, want a DPDK error", err)
	}
	if err := (dpdk.EALOptions{Allow: []string{"a b"}}).Validate(); !errors.Is(err, dpdk.ErrOptions) {
		t.Errorf("Validate: %v", err)
	}
	port, err := dpdk.OpenPort(1, pool, dpdk.PortConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := port.TxBurst(make([][]byte, dpdk.MaxBurst+1)); !errors.Is(err, dpdk.ErrOptions) {
		t.Errorf("oversized burst: %v", err)
	}
	if _, err := port.TxBurst([][]byte{make([]byte, 9000)}); !errors.Is(err, dpdk.ErrOptions) {
		t.Errorf("jumbo frame: %v", err)
	}
	many := make([][]byte, 64)
	for i := range many {
		many[i] = frame(i)
	}
	if _, err := port.TxBurst(many); !errors.Is(err, dpdk.ErrDPDK) || !strings.Contains(err.Error(), "free mbufs") {
		t.Errorf("a burst larger than the pool: %v, want the pool named", err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := port.RxBurst(1); !errors.Is(err, dpdk.ErrClosed) {
		t.Errorf("RxBurst after Close: %v", err)
	}
}
