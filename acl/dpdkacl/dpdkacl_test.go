//go:build dpdk

package dpdkacl_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/dpdkacl"
	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/lookup"
	"github.com/rules-go-vm/rules_go_vm/acl/reference"
	"github.com/rules-go-vm/rules_go_vm/acl/rulegen"
)

func TestMain(m *testing.M) {
	if err := dpdkacl.InitEAL(dpdkacl.EALOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "EAL:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// long reports the long differential mode (ACL_LONG=1): >= 10^6 probes.
func long() bool { return os.Getenv("ACL_LONG") != "" }

func scale(short, long_ int) int {
	if long() {
		return long_
	}
	return short
}

// differ builds both backends from the same entries and compares them on
// every probe for every category. It returns the number of probes.
func differ(t *testing.T, r *rand.Rand, s *key.Schema, rules []key.Rule, cats, probes int) int {
	t.Helper()
	es := rulegen.Entries(rules)
	ref, err := reference.New(s, es, reference.Options{Categories: cats})
	if err != nil {
		t.Fatal(err)
	}
	acl, err := dpdkacl.New(s, es, dpdkacl.Options{Categories: cats})
	if err != nil {
		t.Fatalf("schema %v: %v", s, err)
	}
	defer acl.Close()
	low, err := key.LowerAll(s, rules, key.LowerOptions{Categories: cats})
	if err != nil {
		t.Fatal(err)
	}
	lay := acl.Layout()
	const batch = dpdkacl.MaxBatch
	in := make([]byte, batch*lay.Stride)
	res := make([]uint32, batch*acl.ResultStride())
	keys := make([][]byte, batch)
	want := make([]int, cats)
	done := 0
	for done < probes {
		m := min(batch, probes-done)
		for i := 0; i < m; i++ {
			keys[i] = rulegen.Probe(r, s, low)
			lay.Pack(in[i*lay.Stride:], keys[i])
		}
		if err := acl.ClassifyInput(in, m, res); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < m; i++ {
			ref.MatchCategories(keys[i], want)
			for c := 0; c < cats; c++ {
				got := int(res[i*acl.ResultStride()+c]) - 1
				if got != want[c] {
					t.Fatalf("schema %v, %d rules, key %x category %d: rte_acl rule %d, reference rule %d\nrte_acl rule: %v\nreference rule: %v",
						s, len(rules), keys[i], c, got, want[c], ruleStr(rules, got), ruleStr(rules, want[c]))
				}
			}
		}
		done += m
	}
	return done
}

func ruleStr(rules []key.Rule, i int) string {
	if i < 0 {
		return "none"
	}
	return fmt.Sprintf("prio %d cats %#x %v", rules[i].Priority, rules[i].Categories, rules[i].Fields)
}

var total struct{ probes int }

func TestDifferentialFiveTuple(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, p := range []rulegen.Profile{rulegen.Simple, rulegen.ACL, rulegen.Firewall, rulegen.IPC} {
			name := fmt.Sprintf("%v/v6=%v", p, v6)
			t.Run(name, func(t *testing.T) {
				n := 300
				if p == rulegen.Firewall {
					n = 150
				}
				rules, err := rulegen.Rules(rulegen.Options{Profile: p, N: n, Seed: 42, V6: v6})
				if err != nil {
					t.Fatal(err)
				}
				var s *key.Schema
				if v6 {
					s = key.MustCodec[rulegen.V6]().Schema()
				} else {
					s = key.MustCodec[rulegen.V4]().Schema()
				}
				r := rulegen.New(uint64(p) + 100)
				// Mix in random rules with colliding priorities so ties
				// (insertion order) are exercised too.
				for i := 0; i < n/3; i++ {
					rules = append(rules, rulegen.RandomRule(r, s, 8))
				}
				total.probes += differ(t, r, s, rules, 1, scale(20000, 150000))
			})
		}
	}
}

func TestDifferentialRandomSchemas(t *testing.T) {
	r := rulegen.New(2024)
	iters := scale(60, 400)
	for it := 0; it < iters; it++ {
		s := rulegen.RandomSchema(r, rulegen.SchemaOptions{})
		cats := []int{1, 1, 2, 4, 5, 16}[r.IntN(6)]
		rules := make([]key.Rule, 1+r.IntN(60))
		for i := range rules {
			rules[i] = rulegen.RandomRule(r, s, 10)
			rules[i].Categories = uint32(1 + r.IntN(1<<cats-1))
		}
		total.probes += differ(t, r, s, rules, cats, scale(1000, 1500))
	}
}

func TestProbeTotal(t *testing.T) {
	// Runs last in file order: report how many probes agreed.
	t.Logf("differential probes agreed: %d (long mode %v; %s; EAL %q)", total.probes, long(), dpdkacl.Version(), dpdkacl.EALArgs())
	if long() && total.probes < 1_000_000 {
		t.Fatalf("long mode ran only %d probes", total.probes)
	}
	// A target may demand a floor ($ACL_MIN_PROBES; the guest run does).
	if v := os.Getenv("ACL_MIN_PROBES"); v != "" {
		min, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("$ACL_MIN_PROBES=%q: want a number", v)
		}
		if total.probes < min {
			t.Fatalf("ran %d probes, $ACL_MIN_PROBES wants %d", total.probes, min)
		}
	}
}

func TestTypedAndCategories(t *testing.T) {
	entries := []key.Entry[string]{
		{Rule: key.Rule{Priority: 1, Categories: 0b01, Fields: []key.Pred{key.Exact(key.U8(6)), key.Prefix(key.MustV4("10.0.0.0"), 8)}}, Action: "tcp-10/8"},
		{Rule: key.Rule{Priority: 1, Categories: 0b11}, Action: "any"},
		{Rule: key.Rule{Priority: 5, Categories: 0b10, Fields: []key.Pred{{}, {}, {}, {}, key.Range(key.Port(80), key.Port(89))}}, Action: "web"},
	}
	tbl, err := dpdkacl.NewTyped[rulegen.V4, string](entries, dpdkacl.Options{Categories: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	tests := []struct {
		name string
		k    rulegen.V4
		want [2]int
	}{
		{"tcp to web", rulegen.V4{Proto: 6, Src: key.MustV4("10.9.9.9"), DPort: 80}, [2]int{0, 2}},
		{"udp to web", rulegen.V4{Proto: 17, Src: key.MustV4("10.9.9.9"), DPort: 89}, [2]int{1, 2}},
		{"tcp elsewhere", rulegen.V4{Proto: 6, Src: key.MustV4("11.0.0.1"), DPort: 90}, [2]int{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			packed := key.MustCodec[rulegen.V4]().Append(nil, &tc.k)
			got := make([]int, 2)
			tbl.MatchCategories(packed, got)
			if got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Fatalf("categories %v, want %v", got, tc.want)
			}
			a, ok := tbl.Lookup(tc.k)
			if !ok || a != entries[tc.want[0]].Action {
				t.Fatalf("Lookup = %q,%v", a, ok)
			}
		})
	}
	// Batch path across several cgo calls.
	keys := make([]rulegen.V4, 150)
	for i := range keys {
		keys[i] = tests[i%3].k
	}
	acts := make([]string, len(keys))
	hits := make([]bool, len(keys))
	if n := tbl.LookupBatch(keys, acts, hits); n != len(keys) {
		t.Fatalf("hits %d", n)
	}
	for i := range keys {
		if acts[i] != entries[tests[i%3].want[0]].Action {
			t.Fatalf("key %d: %q", i, acts[i])
		}
	}
}

func TestEmptyTable(t *testing.T) {
	tbl, err := dpdkacl.NewTyped[rulegen.V4, int](nil, dpdkacl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	if _, ok := tbl.Lookup(rulegen.V4{}); ok {
		t.Fatal("empty table hit")
	}
}

func TestBadRules(t *testing.T) {
	v4 := key.MustCodec[rulegen.V4]().Schema()
	wideRange := key.MustSchema(key.Field{Name: "p", Kind: key.KindExact, Size: 1}, key.Field{Name: "addr", Kind: key.KindRange, Size: 16})
	tests := []struct {
		name  string
		s     *key.Schema
		rules []key.Rule
		opts  dpdkacl.Options
		want  error
		rule  int
		field string
	}{
		{"prefix longer than field", v4, []key.Rule{{}, {}, {Fields: []key.Pred{{}, {}, key.Prefix(key.MustV4("1.2.3.4"), 33)}}}, dpdkacl.Options{}, key.ErrPrefixTooLong, 2, "dst"},
		{"min > max", v4, []key.Rule{{Fields: []key.Pred{{}, {}, {}, key.Range(key.Port(2), key.Port(1))}}}, dpdkacl.Options{}, key.ErrRangeInverted, 0, "sport"},
		{"duplicate priorities", v4, []key.Rule{{Priority: 3}, {Priority: 3}}, dpdkacl.Options{UniquePriorities: true}, key.ErrDuplicatePriority, 1, ""},
		{"range on a wide field", wideRange, []key.Rule{{}}, dpdkacl.Options{}, key.ErrRangeTooWide, -1, "addr"},
		{"too many categories", v4, nil, dpdkacl.Options{Categories: 17}, dpdkacl.ErrOptions, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := dpdkacl.New(tc.s, rulegen.Entries(tc.rules), tc.opts)
			if err == nil {
				tbl.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var re *key.RuleError
			var fe *key.FieldError
			switch {
			case tc.rule >= 0:
				if !errors.As(err, &re) || re.Rule != tc.rule || re.Field != tc.field {
					t.Fatalf("err = %v: want rule %d field %q", err, tc.rule, tc.field)
				}
			case tc.field != "":
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("err = %v: want field %q", err, tc.field)
				}
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	rules, _ := rulegen.Rules(rulegen.Options{Profile: rulegen.ACL, N: 200, Seed: 1})
	tbl, err := dpdkacl.NewTyped[rulegen.V4, int](rulegen.Entries(rules), dpdkacl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	k := rulegen.V4{Proto: 6}
	want, _ := tbl.Lookup(k)
	for _, a := range []dpdkacl.Alg{dpdkacl.AlgScalar, dpdkacl.AlgSSE, dpdkacl.AlgAVX2, dpdkacl.AlgAVX512x16, dpdkacl.AlgAVX512x32} {
		err := tbl.SetAlg(a)
		var de *dpdkacl.Error
		switch {
		case err == nil:
			if got, _ := tbl.Lookup(k); got != want {
				t.Fatalf("%v: %d != %d", a, got, want)
			}
		case errors.As(err, &de):
			t.Logf("%v unsupported here: %v", a, err)
		default:
			t.Fatalf("%v: %v", a, err)
		}
	}
}

var (
	_ lookup.BatchLookup[rulegen.V4, int] = (*dpdkacl.Typed[rulegen.V4, int])(nil)
	_ lookup.BatchLookup[[]byte, int]     = (*dpdkacl.Table[int])(nil)
)
