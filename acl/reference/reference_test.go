package reference_test

import (
	"errors"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/lookup"
	"github.com/rules-go-vm/rules_go_vm/acl/reference"
	"github.com/rules-go-vm/rules_go_vm/acl/rulegen"
)

func TestPrecedence(t *testing.T) {
	any5 := []key.Pred{{}, {}, {}, {}, {}}
	tests := []struct {
		name  string
		prios []int32
		want  int
	}{
		{"highest priority wins", []int32{1, 5, 3}, 1},
		{"ties go to first inserted", []int32{2, 7, 7, 1}, 1},
		{"all equal: first", []int32{0, 0, 0}, 0},
		{"negative priorities", []int32{-5, -1, -3}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var es []key.Entry[int]
			for i, p := range tc.prios {
				es = append(es, key.Entry[int]{Rule: key.Rule{Priority: p, Fields: any5}, Action: i})
			}
			tbl, err := reference.NewTyped[FiveTuple, int](es, reference.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := tbl.Lookup(FiveTuple{}); !ok || got != tc.want {
				t.Fatalf("Lookup = %d,%v want %d", got, ok, tc.want)
			}
		})
	}
}

func TestCategories(t *testing.T) {
	es := []key.Entry[string]{
		{Rule: key.Rule{Priority: 3, Categories: 0b0010}, Action: "c1-high"},
		{Rule: key.Rule{Priority: 2, Categories: 0b0011}, Action: "c0c1"},
		{Rule: key.Rule{Priority: 1, Categories: 0b1000, Fields: []key.Pred{key.Exact(key.U8(17))}}, Action: "c3-udp"},
	}
	tbl, err := reference.NewTyped[FiveTuple, string](es, reference.Options{Categories: 4})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		proto key.U8
		want  []int
	}{
		{"tcp", 6, []int{1, 0, -1, -1}},
		{"udp", 17, []int{1, 0, -1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := FiveTuple{Proto: tc.proto}
			packed := tbl.Codec().Append(nil, &k)
			got := make([]int, 4)
			tbl.MatchCategories(packed, got)
			for c := range got {
				if got[c] != tc.want[c] {
					t.Fatalf("categories = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestBadRules(t *testing.T) {
	_, err := reference.NewTyped[FiveTuple, int]([]key.Entry[int]{{}, {Rule: key.Rule{Fields: []key.Pred{{}, key.Prefix(key.MustV4("1.2.3.4"), 40)}}}}, reference.Options{})
	var re *key.RuleError
	if !errors.Is(err, key.ErrPrefixTooLong) || !errors.As(err, &re) || re.Rule != 1 || re.Field != "src" {
		t.Fatalf("err = %v", err)
	}
	_, err = reference.NewTyped[FiveTuple, int]([]key.Entry[int]{{}, {}}, reference.Options{UniquePriorities: true})
	if !errors.Is(err, key.ErrDuplicatePriority) {
		t.Fatalf("err = %v", err)
	}
}

// TestAgainstLowered checks the word-packed scan against the obviously
// correct per-field evaluation in package key, over random schemas
// (including wide ranges) and probes.
func TestAgainstLowered(t *testing.T) {
	r := rulegen.New(1)
	for iter := 0; iter < 200; iter++ {
		s := rulegen.RandomSchema(r, rulegen.SchemaOptions{WideRanges: true})
		var es []key.Entry[int]
		for i := 0; i < 1+r.IntN(20); i++ {
			es = append(es, key.Entry[int]{Rule: rulegen.RandomRule(r, s, 4), Action: i})
		}
		tbl, err := reference.New(s, es, reference.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rules := make([]key.Rule, len(es))
		for i := range es {
			rules[i] = es[i].Rule
		}
		low, err := key.LowerAll(s, rules, key.LowerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < 200; p++ {
			k := rulegen.Probe(r, s, low)
			want := -1
			for i := range low {
				if low[i].Matches(s, k) && (want < 0 || low[i].Priority > low[want].Priority) {
					want = i
				}
			}
			if got := tbl.Match(k); got != want {
				t.Fatalf("schema %v key %x: Match = %d, want %d", s, k, got, want)
			}
		}
	}
}

var (
	_ lookup.BatchLookup[FiveTuple, int] = (*reference.Typed[FiveTuple, int])(nil)
	_ lookup.BatchLookup[[]byte, int]    = (*reference.Table[int])(nil)
)
