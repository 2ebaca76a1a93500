// Package rulegen generates seeded rule sets and probe keys for tests and
// benchmarks. It is our own code: ClassBench's seed files are licensed for
// non-commercial use only, so instead of shipping them this package draws
// rules from parameterised distributions shaped like ClassBench's ACL,
// firewall and IPC seeds (mixes of prefix lengths and port classes), plus
// upstream's simple bench shape (rule i = TCP, src 10.0.0.0/8, dst port i).
//
// Everything is deterministic for a given seed.
package rulegen

import (
	"fmt"
	"math/rand/v2"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// V4 is the IPv4 5-tuple key used by tests and benchmarks.
type V4 struct {
	// Proto is the IP protocol.
	Proto key.U8 `acl:"proto,exact"`
	// Src is the source address.
	Src key.IPv4 `acl:"src,prefix"`
	// Dst is the destination address.
	Dst key.IPv4 `acl:"dst,prefix"`
	// SPort is the source port.
	SPort key.Port `acl:"sport,range"`
	// DPort is the destination port.
	DPort key.Port `acl:"dport,range"`
}

// V6 is the IPv6 5-tuple key used by tests and benchmarks.
type V6 struct {
	// Proto is the IP protocol.
	Proto key.U8 `acl:"proto,exact"`
	// Src is the source address.
	Src key.IPv6 `acl:"src,prefix"`
	// Dst is the destination address.
	Dst key.IPv6 `acl:"dst,prefix"`
	// SPort is the source port.
	SPort key.Port `acl:"sport,range"`
	// DPort is the destination port.
	DPort key.Port `acl:"dport,range"`
}

// Profile selects a rule-set shape.
type Profile int

// The rule-set shapes.
const (
	// Simple is upstream's bench shape: rule i = TCP, src 10/8, dst port i.
	Simple Profile = iota
	// ACL is ClassBench-acl-like: long source/destination prefixes, mostly
	// exact destination ports, source port mostly wildcard.
	ACL
	// Firewall is ClassBench-fw-like: many wildcards and short prefixes,
	// wide port ranges, protocol often wildcard (heavy overlap).
	Firewall
	// IPC is ClassBench-ipc-like: a mix of the two.
	IPC
)

// String names the profile.
func (p Profile) String() string {
	switch p {
	case Simple:
		return "simple"
	case ACL:
		return "acl"
	case Firewall:
		return "fw"
	case IPC:
		return "ipc"
	}
	return fmt.Sprintf("Profile(%d)", int(p))
}

// Options configures [Rules].
type Options struct {
	// Profile is the shape of the rule set.
	Profile Profile
	// N is the number of rules (1..1<<20).
	N int
	// Seed makes the output deterministic.
	Seed uint64
	// V6 generates IPv6 5-tuples (schema [V6]) instead of IPv4 ([V4]).
	V6 bool
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.N < 1 || o.N > 1<<20 {
		return fmt.Errorf("rulegen: N=%d out of 1..%d", o.N, 1<<20)
	}
	if o.Profile < Simple || o.Profile > IPC {
		return fmt.Errorf("rulegen: unknown profile %v", o.Profile)
	}
	return nil
}

// New returns a deterministic PRNG for seed.
func New(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

type shape struct {
	// prefix-length classes for src/dst: weights over {0, 8..16, 17..24, 25..31, 32}
	src, dst [5]int
	// port classes: weights over {any, exact well-known, exact high, small range, ephemeral 1024-65535}
	sport, dport [5]int
	protoAny     int // percent of rules with wildcard protocol
	bases        int // number of address clusters
}

var shapes = map[Profile]shape{
	ACL:      {src: [5]int{5, 5, 30, 20, 40}, dst: [5]int{2, 3, 35, 20, 40}, sport: [5]int{90, 0, 0, 5, 5}, dport: [5]int{10, 55, 15, 15, 5}, protoAny: 5, bases: 64},
	Firewall: {src: [5]int{35, 25, 20, 10, 10}, dst: [5]int{25, 25, 25, 10, 15}, sport: [5]int{70, 5, 5, 5, 15}, dport: [5]int{35, 25, 10, 15, 15}, protoAny: 30, bases: 16},
	IPC:      {src: [5]int{15, 15, 30, 20, 20}, dst: [5]int{15, 15, 30, 20, 20}, sport: [5]int{60, 10, 10, 10, 10}, dport: [5]int{25, 35, 15, 15, 10}, protoAny: 15, bases: 32},
}

func pick(r *rand.Rand, w [5]int) int {
	t := 0
	for _, x := range w {
		t += x
	}
	v := r.IntN(t)
	for i, x := range w {
		if v < x {
			return i
		}
		v -= x
	}
	return len(w) - 1
}

func prefixLen(r *rand.Rand, class, width int) int {
	var b int
	switch class {
	case 0:
		return 0
	case 1:
		b = 8 + r.IntN(9)
	case 2:
		b = 17 + r.IntN(8)
	case 3:
		b = 25 + r.IntN(7)
	default:
		b = 32
	}
	if width == 128 { // scale IPv4-ish lengths to IPv6 (/32 -> /128)
		b = b * 4
	}
	return b
}

var wellKnown = []uint16{20, 21, 22, 23, 25, 53, 67, 68, 80, 110, 123, 143, 161, 179, 389, 443, 445, 465, 514, 587, 636, 993, 995, 1433, 1521, 3306, 3389, 5432, 6379, 8080, 8443}

func portPred(r *rand.Rand, class int) key.Pred {
	switch class {
	case 1:
		p := key.Port(wellKnown[r.IntN(len(wellKnown))])
		return key.Range(p, p)
	case 2:
		p := key.Port(1024 + r.IntN(64512))
		return key.Range(p, p)
	case 3:
		lo := r.IntN(65000)
		return key.Range(key.Port(lo), key.Port(lo+1+r.IntN(500)))
	case 4:
		return key.Range(key.Port(1024), key.Port(65535))
	}
	return key.Any()
}

func addr(r *rand.Rand, bases [][]byte, width int) []byte {
	b := append([]byte(nil), bases[r.IntN(len(bases))]...)
	// keep the cluster's first 16 bits (IPv4) / 48 bits (IPv6), randomise the rest
	keep := 2
	if width == 128 {
		keep = 6
	}
	for i := keep; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Rules generates o.N rules for the [V4] (or [V6]) schema. Priorities are
// distinct (rule i has priority N-i) so precedence is unambiguous; it also
// matches the insertion-order tie rule.
func Rules(o Options) ([]key.Rule, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := New(o.Seed)
	width := 32
	if o.V6 {
		width = 128
	}
	out := make([]key.Rule, o.N)
	if o.Profile == Simple {
		src := make([]byte, width/8)
		src[0] = 10
		for i := range out {
			out[i] = key.Rule{Priority: int32(o.N - i), Fields: []key.Pred{
				key.Exact(key.U8(6)),
				key.Prefix(key.Bytes(src), 8),
				key.Any(),
				key.Any(),
				key.Range(key.Port(uint16(i)), key.Port(uint16(i))),
			}}
		}
		return out, nil
	}
	sh := shapes[o.Profile]
	bases := make([][]byte, sh.bases)
	for i := range bases {
		bases[i] = make([]byte, width/8)
		for j := range bases[i] {
			bases[i][j] = byte(r.Uint32())
		}
	}
	protos := []uint8{6, 6, 6, 17, 17, 1, 47, 50}
	for i := range out {
		var proto key.Pred
		if r.IntN(100) >= sh.protoAny {
			proto = key.Exact(key.U8(protos[r.IntN(len(protos))]))
		}
		out[i] = key.Rule{Priority: int32(o.N - i), Fields: []key.Pred{
			proto,
			key.Prefix(key.Bytes(addr(r, bases, width)), prefixLen(r, pick(r, sh.src), width)),
			key.Prefix(key.Bytes(addr(r, bases, width)), prefixLen(r, pick(r, sh.dst), width)),
			portPred(r, pick(r, sh.sport)),
			portPred(r, pick(r, sh.dport)),
		}}
	}
	return out, nil
}

// Entries pairs rules with actions: rule i gets action i.
func Entries(rules []key.Rule) []key.Entry[int] {
	out := make([]key.Entry[int], len(rules))
	for i, r := range rules {
		out[i] = key.Entry[int]{Rule: r, Action: i}
	}
	return out
}
