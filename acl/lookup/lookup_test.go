package lookup_test

import (
	"fmt"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/lookup"
)

type pair struct{ src, dst uint32 }

type packet struct {
	src, dst uint32
	vrf      *uint16
}

func pairOf(p packet) pair { return pair{p.src, p.dst} }

type vrfKey struct {
	vrf uint16
	dst uint32
}

func vrfOf(p packet) (vrfKey, bool) {
	if p.vrf == nil {
		return vrfKey{}, false
	}
	return vrfKey{*p.vrf, p.dst}, true
}

func TestClassify(t *testing.T) {
	m := lookup.Map[pair, string]{{1, 2}: "allow"}
	tests := []struct {
		name string
		pkt  packet
		want string
		hit  bool
	}{
		{"hit", packet{src: 1, dst: 2}, "allow", true},
		{"miss", packet{src: 2, dst: 1}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, hit := lookup.Classify(m, pairOf, tc.pkt)
			if got != tc.want || hit != tc.hit {
				t.Fatalf("Classify = %q,%v; want %q,%v", got, hit, tc.want, tc.hit)
			}
		})
	}
}

func TestClassifyOpt(t *testing.T) {
	v := uint16(7)
	m := lookup.Map[vrfKey, int]{{7, 9}: 42}
	tests := []struct {
		name string
		pkt  packet
		want int
		hit  bool
	}{
		{"present", packet{dst: 9, vrf: &v}, 42, true},
		{"absent metadata is a miss", packet{dst: 9}, 0, false},
		{"present but unknown", packet{dst: 8, vrf: &v}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, hit := lookup.ClassifyOpt(m, vrfOf, tc.pkt)
			if got != tc.want || hit != tc.hit {
				t.Fatalf("ClassifyOpt = %v,%v; want %v,%v", got, hit, tc.want, tc.hit)
			}
		})
	}
}

func TestClassifyBatch(t *testing.T) {
	m := lookup.Map[pair, int]{{1, 1}: 1, {3, 3}: 3}
	var pkts []packet
	for i := range 10 {
		pkts = append(pkts, packet{src: uint32(i), dst: uint32(i)})
	}
	acts := make([]int, len(pkts))
	hits := make([]bool, len(pkts))
	n := lookup.ClassifyBatch[packet, pair, int](m, pairOf, pkts, make([]pair, 3), acts, hits)
	if n != 2 || !hits[1] || !hits[3] || acts[1] != 1 || acts[3] != 3 || hits[0] {
		t.Fatalf("n=%d acts=%v hits=%v", n, acts, hits)
	}
}

func ExampleClassify() {
	table := lookup.Map[pair, string]{{10, 20}: "allow"}
	verdict, ok := lookup.Classify(table, pairOf, packet{src: 10, dst: 20})
	fmt.Println(verdict, ok)
	// Output: allow true
}
