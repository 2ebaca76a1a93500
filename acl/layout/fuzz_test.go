package layout_test

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/layout"
	"github.com/rules-go-vm/rules_go_vm/acl/rulegen"
)

func checkPlan(t *testing.T, seed uint64, s *key.Schema) {
	t.Helper()
	l, err := layout.Plan(s)
	if err != nil {
		t.Fatalf("Plan(%v): %v", s, err)
	}
	checkInvariants(t, l)
	r := rulegen.New(seed)
	cols := make([]layout.Column, len(l.Defs))
	in := make([]byte, l.Stride)
	for i := 0; i < 20; i++ {
		rule := rulegen.RandomRule(r, s, 1)
		low, err := s.Lower(i, rule, 1)
		if err != nil {
			t.Fatal(err)
		}
		l.Columns(&low, cols)
		for p := 0; p < 10; p++ {
			k := rulegen.Probe(r, s, []key.Lowered{low})
			for b := range in {
				in[b] = byte(r.Uint32()) // pad bytes hold garbage
			}
			l.Pack(in, k)
			if got, want := l.Eval(cols, in), low.Matches(s, k); got != want {
				t.Fatalf("schema %v rule %v key %x: rte_acl semantics %v, reference %v", s, rule.Fields, k, got, want)
			}
		}
	}
}

// FuzzPlan decodes a schema from the input (two bytes per field: kind and
// size class), plans it, checks the layout invariants and checks that
// rte_acl per-field semantics over the planned columns agree with the
// reference predicate for random rules and probes.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 1, 2, 3, 1, 3, 1}, uint64(1)) // 5-tuple v4
	f.Add([]byte{0, 0, 1, 4, 1, 4, 3, 1, 3, 1}, uint64(2)) // 5-tuple v6
	f.Add([]byte{2, 3, 2, 1, 0, 2}, uint64(3))
	f.Fuzz(func(t *testing.T, spec []byte, seed uint64) {
		var fs []key.Field
		total := 0
		for i := 0; i+1 < len(spec) && len(fs) < 16; i += 2 {
			k := key.Kind(1 + spec[i]%4)
			sz := []int{1, 2, 4, 8, 16}[spec[i+1]%5]
			if k == key.KindRange && sz > 4 {
				k = key.KindMask
			}
			if total+sz > key.MaxKeySize {
				break
			}
			total += sz
			fs = append(fs, key.Field{Name: string(rune('a' + len(fs))), Kind: k, Size: sz})
		}
		if len(fs) == 0 {
			return
		}
		s, err := key.NewSchema(fs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := layout.Plan(s); err != nil {
			return // too many rte_acl fields is a legitimate refusal
		}
		checkPlan(t, seed, s)
	})
}
