//go:build dpdk

package dpdk

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/acl/dpdkacl"
	"github.com/rules-go-vm/rules_go_vm/acl/reference"
	"github.com/rules-go-vm/rules_go_vm/dpdk"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestMain(m *testing.M) { invm.Main(m) }

const (
	// frames is how many frames each NIC pair forwards.
	frames = 10_000
	// burst is the TX burst size; window bounds the frames in flight (sent,
	// not yet received), well below the RX ring (512 descriptors), so no
	// frame is dropped for want of a descriptor.
	burst, window = 32, 256
	// forwardTimeout bounds one pair's run (TCG is slow, but not this slow):
	// a lost frame fails the test instead of hanging it.
	forwardTimeout = 120 * time.Second
	// envWantModels names the NIC models the target cabled in pairs
	// (comma-separated), so that a target that lost a pair fails.
	envWantModels = "DPDK_WANT_MODELS"
	// envWantIOMMU is "1" for the target with iommu = True.
	envWantIOMMU = "DPDK_WANT_IOMMU"
)

// pmdOf is the PMD DPDK drives each NIC model with.
var pmdOf = map[string]string{"e1000": "net_e1000_em", "e1000e": "net_e1000_em", "virtio_net": "net_virtio"}

// pair is two NICs sharing a QEMU hub: what one sends, the other receives.
type pair struct {
	model  string
	tx, rx invm.NIC
}

// pairs are the NICs bound to vfio-pci, cabled 2k to 2k+1 by the runner.
func pairs(t *testing.T) []pair {
	t.Helper()
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]bool{}
	for _, a := range invm.VFIONICs() {
		bound[a] = true
	}
	var out []pair
	var models []string
	for i := 0; i+1 < len(nics); i += 2 {
		a, b := nics[i], nics[i+1]
		if !bound[a.PCIAddress] || !bound[b.PCIAddress] {
			continue
		}
		if a.Model != b.Model {
			t.Fatalf("NICs %d and %d are %s and %s: a pair must be one model", i, i+1, a.Model, b.Model)
		}
		out = append(out, pair{model: a.Model, tx: a, rx: b})
		models = append(models, a.Model)
	}
	if want := os.Getenv(envWantModels); strings.Join(models, ",") != want {
		t.Fatalf("NIC pairs bound to vfio-pci: %q, the target wants %q ($%s)", models, want, envWantModels)
	}
	return out
}

// startEAL starts the process's EAL on every bound NIC, with hugepages.
func startEAL(t *testing.T, ps []pair) {
	t.Helper()
	if dpdk.EALRunning() {
		return
	}
	var allow []string
	for _, p := range ps {
		allow = append(allow, p.tx.PCIAddress, p.rx.PCIAddress)
	}
	if err := dpdk.InitEAL(dpdk.EALOptions{Hugepages: true, MemoryMB: 96, Allow: allow}); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput runs first (file order), before the EAL starts: each
// mistake gets its own error, naming the option and the fix, and leaves
// InitEAL callable.
func TestBadInput(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	kernelNIC := nics[len(nics)-1] // left on its kernel driver by the target
	for _, tc := range []struct {
		name string
		o    dpdk.EALOptions
		want error
		says string
	}{
		{"NIC that does not exist", dpdk.EALOptions{Hugepages: true, Allow: []string{"0000:07:00.0"}}, dpdk.ErrNoDevice, "0000:07:00.0"},
		{"NIC on its kernel driver", dpdk.EALOptions{Hugepages: true, Allow: []string{kernelNIC.PCIAddress}}, dpdk.ErrKernelDriver, kernelNIC.Driver},
		{"bad option", dpdk.EALOptions{Allow: []string{"0000:00:10.0,0000:00:11.0"}}, dpdk.ErrOptions, "Allow entry"},
	} {
		err := dpdk.InitEAL(tc.o)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: InitEAL = %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	t.Run("no hugepages", func(t *testing.T) {
		// Give the guest's free 2M hugepages back for the call, then restore.
		const nr = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
		had, err := os.ReadFile(nr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(nr, []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		err = dpdk.InitEAL(dpdk.EALOptions{Hugepages: true})
		if werr := os.WriteFile(nr, had, 0); werr != nil {
			t.Fatal(werr)
		}
		if !errors.Is(err, dpdk.ErrNoHugepages) || !strings.Contains(err.Error(), "guest_hugepages") {
			t.Errorf("InitEAL without hugepages = %v, want ErrNoHugepages naming guest_hugepages", err)
		}
	})
	if dpdk.EALRunning() {
		t.Fatal("a failed check started the EAL")
	}
}

// TestForward sends frames with distinct 5-tuples on each pair's first
// port and receives them on the second through DPDK's PMDs: byte for byte,
// in order, none lost, none extra, and the ports' counters agree. rte_acl
// classifies every received frame as the reference classifier does.
func TestForward(t *testing.T) {
	invm.Require(t)
	ps := pairs(t)
	startEAL(t, ps)
	pool, err := dpdk.NewPktPool("fwd", 8191, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ref, err := reference.NewTyped[FiveTuple, string](rules(), reference.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acl, err := dpdkacl.NewTyped[FiveTuple, string](rules(), dpdkacl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer acl.Close()
	for _, p := range ps {
		t.Run(p.model, func(t *testing.T) {
			got := forward(t, p, pool)
			classify(t, got, ref, acl)
		})
	}
}

// forward runs one pair and returns the frames received.
func forward(t *testing.T, p pair, pool *dpdk.PktPool) [][]byte {
	tx, rx := openPort(t, p.tx, pool), openPort(t, p.rx, pool)
	want := make([][]byte, frames)
	for i := range want {
		want[i] = makeFrame(i, p.tx.MAC, p.rx.MAC)
	}
	got := pump(t, tx, rx, want)
	for i := range want {
		if i >= len(got) || !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: frame %d differs or is missing (received %d of %d)", p.model, i, len(got), frames)
		}
	}
	if len(got) != frames {
		t.Fatalf("%s: received %d frames, sent %d", p.model, len(got), frames)
	}
	checkStats(t, p.model, tx, rx, want)
	t.Logf("%s: %d frames %s -> %s through %s, byte for byte", p.model, frames, tx.Name(), rx.Name(), rx.DriverName())
	return got
}

// openPort opens the DPDK port of n and checks the PMD driving it.
func openPort(t *testing.T, n invm.NIC, pool *dpdk.PktPool) *dpdk.Port {
	t.Helper()
	id, err := dpdk.PortByName(n.PCIAddress)
	if err != nil {
		t.Fatal(err)
	}
	port, err := dpdk.OpenPort(id, pool, dpdk.PortConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	if got, want := port.DriverName(), pmdOf[n.Model]; got != want {
		t.Fatalf("%s (%s) is driven by %q, want %q", n.PCIAddress, n.Model, got, want)
	}
	return port
}

// pump sends want on tx, at most window frames ahead of what rx has
// received, and returns what rx received (stopping at len(want) frames, or
// at forwardTimeout, or when rx gets more frames than were sent).
func pump(t *testing.T, tx, rx *dpdk.Port, want [][]byte) [][]byte {
	t.Helper()
	var got [][]byte
	sent := 0
	deadline := time.Now().Add(forwardTimeout)
	for len(got) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %v, %d of %d frames sent, %d received", tx.Name(), forwardTimeout, sent, len(want), len(got))
		}
		if n := min(burst, len(want)-sent, window-(sent-len(got))); n > 0 {
			k, err := tx.TxBurst(want[sent : sent+n])
			if err != nil {
				t.Fatal(err)
			}
			sent += k
		}
		fs, err := rx.RxBurst(burst)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fs...)
		if len(got) > sent {
			t.Fatalf("%s received %d frames, only %d were sent", rx.Name(), len(got), sent)
		}
	}
	// Nothing more may arrive.
	time.Sleep(100 * time.Millisecond)
	if extra, err := rx.RxBurst(burst); err != nil || len(extra) != 0 {
		t.Fatalf("%s: %d frames more than sent (err %v)", rx.Name(), len(extra), err)
	}
	return got
}

// checkStats compares the ports' counters with what was sent. e1000e
// counts bytes with the 4-byte FCS, virtio without; QEMU's e1000 model
// keeps no octet counters (GORC/GOTC read 0), so for it the byte counters
// must agree at 0.
func checkStats(t *testing.T, model string, tx, rx *dpdk.Port, want [][]byte) {
	t.Helper()
	ts, err := tx.Stats()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rx.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range want {
		n += uint64(len(f))
	}
	if ts.OPackets != frames || rs.IPackets != frames {
		t.Errorf("counters: %s sent %d, %s received %d; want %d each", tx.Name(), ts.OPackets, rx.Name(), rs.IPackets, frames)
	}
	counts := model != "e1000"
	if ts.OBytes != rs.IBytes || (counts && ts.OBytes != n && ts.OBytes != n+4*frames) || (!counts && ts.OBytes != 0) {
		t.Errorf("byte counters: sent %d, received %d; the frames hold %d (%d with FCS)", ts.OBytes, rs.IBytes, n, n+4*frames)
	}
	if rs.IMissed+rs.IErrors+ts.OErrors+rs.RxNoMbuf != 0 {
		t.Errorf("errors: %+v (tx) %+v (rx)", ts, rs)
	}
}

// classify checks rte_acl's verdict on every received frame against the
// reference's, and that the rules told the frames apart.
func classify(t *testing.T, got [][]byte, ref *reference.Typed[FiveTuple, string], acl *dpdkacl.Typed[FiveTuple, string]) {
	t.Helper()
	keys := make([]FiveTuple, len(got))
	for i, f := range got {
		idx, tu, err := parseFrame(f)
		if err != nil || idx != i || tu != tupleOf(i) {
			t.Fatalf("frame %d: index %d, tuple %+v, err %v", i, idx, tu, err)
		}
		keys[i] = tu
	}
	wantActs, gotActs := make([]string, len(keys)), make([]string, len(keys))
	wantHits, gotHits := make([]bool, len(keys)), make([]bool, len(keys))
	ref.LookupBatch(keys, wantActs, wantHits)
	acl.LookupBatch(keys, gotActs, gotHits)
	seen := map[string]int{}
	for i := range keys {
		if gotActs[i] != wantActs[i] || gotHits[i] != wantHits[i] {
			t.Fatalf("frame %d %+v: rte_acl says %q (hit %v), the reference %q (hit %v)", i, keys[i], gotActs[i], gotHits[i], wantActs[i], wantHits[i])
		}
		seen[wantActs[i]]++
	}
	if len(seen) < len(rules()) {
		t.Errorf("the frames hit only %v of the %d rules", seen, len(rules()))
	}
	t.Logf("rte_acl and the reference agree on %d frames: %v", len(keys), seen)
}

// TestEALTwice: the EAL is up (TestForward); a second start is an error.
func TestEALTwice(t *testing.T) {
	invm.Require(t)
	if !dpdk.EALRunning() {
		startEAL(t, pairs(t))
	}
	if err := dpdk.InitEAL(dpdk.EALOptions{}); !errors.Is(err, dpdk.ErrEALTwice) {
		t.Fatalf("second InitEAL = %v, want ErrEALTwice", err)
	}
}

// TestIOMMU shows how DPDK reached the NICs: through the virtual IOMMU
// (intel-iommu, SMMUv3) with iommu = True, each NIC in an IOMMU group that
// VFIO exposes as /dev/vfio/<group>; in VFIO's no-IOMMU mode otherwise.
func TestIOMMU(t *testing.T) {
	invm.Require(t)
	groups, _ := os.ReadDir("/sys/kernel/iommu_groups")
	for _, a := range invm.VFIONICs() {
		b, err := invm.VFIOStatus(a)
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv(envWantIOMMU) == "1" {
			if len(groups) == 0 {
				t.Fatal("iommu = True, but the guest has no IOMMU groups: the IOMMU is not active")
			}
			if _, err := os.Stat("/dev/vfio/" + strconv.Itoa(b.Group)); err != nil {
				t.Errorf("%s: IOMMU group %d has no VFIO node: %v", a, b.Group, err)
			}
			continue
		}
		if _, err := os.Stat("/dev/vfio/noiommu-" + strconv.Itoa(b.Group)); err != nil {
			t.Errorf("%s: not in VFIO's no-IOMMU mode: %v", a, err)
		}
	}
	t.Logf("%d IOMMU groups; NICs on vfio-pci: %v", len(groups), invm.VFIONICs())
}
