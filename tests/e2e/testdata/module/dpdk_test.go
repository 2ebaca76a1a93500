package e2e

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/dpdk"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

// forwardTimeout bounds the forwarding loop (TCG guests forward ~100,000
// frames/s; 1,000 frames take milliseconds).
const forwardTimeout = 60 * time.Second

// TestDPDKForward: a user's DPDK test, written as a user writes it (no
// pure, copts or linkopts in BUILD): 1,000 frames from NIC 0 to NIC 1
// (cabled back to back) through DPDK's e1000 PMD.
func TestDPDKForward(t *testing.T) {
	invm.Require(t)
	nics := invm.VFIONICs()
	if err := dpdk.InitEAL(dpdk.EALOptions{Hugepages: true, MemoryMB: 64, Allow: nics}); err != nil {
		t.Fatal(err)
	}
	pool, err := dpdk.NewPktPool("e2e", 4095, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var ports []*dpdk.Port
	for _, a := range nics {
		id, err := dpdk.PortByName(a)
		if err != nil {
			t.Fatal(err)
		}
		p, err := dpdk.OpenPort(id, pool, dpdk.PortConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if p.DriverName() != "net_e1000_em" {
			t.Fatalf("%s: driver %q, want net_e1000_em", a, p.DriverName())
		}
		ports = append(ports, p)
	}
	const n = 1000
	frame := func(i int) []byte {
		f := make([]byte, 64)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
		f[20], f[21] = byte(i>>8), byte(i)
		return f
	}
	deadline := time.Now().Add(forwardTimeout)
	sent, got := 0, 0
	for got < n {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d, received %d of %d", sent, got, n)
		}
		if sent < n && sent-got < 64 {
			k, err := ports[0].TxBurst([][]byte{frame(sent)})
			if err != nil {
				t.Fatal(err)
			}
			sent += k
		}
		fs, err := ports[1].RxBurst(32)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if !bytes.Equal(f, frame(got)) {
				t.Fatalf("frame %d differs", got)
			}
			got++
		}
	}
	fmt.Printf("E2E-DPDK: %d frames forwarded through %s\n", got, ports[1].DriverName())
}
