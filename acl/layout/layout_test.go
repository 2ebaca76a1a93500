package layout_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/layout"
	"github.com/rules-go-vm/rules_go_vm/acl/rulegen"
)

func TestPlanFiveTuple(t *testing.T) {
	s := key.MustCodec[rulegen.V4]().Schema()
	l, err := layout.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	// proto first; src, dst one bucket each; both ports share a bucket.
	want := []layout.Def{
		{Type: layout.TypeBitmask, Size: 1, InputIndex: 0, Offset: 0, Source: 0},
		{Type: layout.TypeMask, Size: 4, InputIndex: 1, Offset: 4, Source: 1},
		{Type: layout.TypeMask, Size: 4, InputIndex: 2, Offset: 8, Source: 2},
		{Type: layout.TypeRange, Size: 2, InputIndex: 3, Offset: 12, Source: 3},
		{Type: layout.TypeRange, Size: 2, InputIndex: 3, Offset: 14, Source: 4},
	}
	if len(l.Defs) != len(want) || l.Stride != 16 {
		t.Fatalf("defs %+v stride %d", l.Defs, l.Stride)
	}
	for i := range want {
		if l.Defs[i] != want[i] {
			t.Fatalf("def %d = %+v, want %+v", i, l.Defs[i], want[i])
		}
	}
}

func TestPlanV6SplitsAndSpreadsPrefix(t *testing.T) {
	s := key.MustCodec[rulegen.V6]().Schema()
	l, err := layout.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Defs) != 1+4+4+2 {
		t.Fatalf("defs %+v", l.Defs)
	}
	r := key.Rule{Fields: []key.Pred{{}, key.Prefix(key.MustV6("2001:db8:ffff::"), 70)}}
	low, err := s.Lower(0, r, 1)
	if err != nil {
		t.Fatal(err)
	}
	cols := make([]layout.Column, len(l.Defs))
	l.Columns(&low, cols)
	wantBits := []uint64{32, 32, 6, 0}
	for c := 0; c < 4; c++ {
		if cols[1+c].MaskRange != wantBits[c] {
			t.Fatalf("chunk %d prefix /%d, want /%d", c, cols[1+c].MaskRange, wantBits[c])
		}
	}
	if cols[1].Value != 0x20010db8 {
		t.Fatalf("chunk 0 value %#x", cols[1].Value)
	}
}

func TestPlanPadsAndFirstField(t *testing.T) {
	tests := []struct {
		name    string
		fields  []key.Field
		defs    int
		stride  int
		padHead bool
	}{
		{"no 1-byte field gets a pad head", []key.Field{fld("a", key.KindExact, 4)}, 2, 8, true},
		{"lone 2-byte field padded to 4", []key.Field{fld("p", key.KindExact, 1), fld("a", key.KindRange, 2)}, 3, 8, false},
		{"1-byte fields share a bucket", []key.Field{fld("p", key.KindExact, 1), fld("a", key.KindMask, 1), fld("b", key.KindMask, 1), fld("c", key.KindRange, 1)}, 5, 8, false},
		{"u64 splits in two", []key.Field{fld("a", key.KindPrefix, 8)}, 3, 12, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := layout.Plan(key.MustSchema(tc.fields...))
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Defs) != tc.defs || l.Stride != tc.stride || (l.Defs[0].Source < 0) != tc.padHead {
				t.Fatalf("defs %+v stride %d", l.Defs, l.Stride)
			}
			checkInvariants(t, l)
		})
	}
}

func TestPlanErrors(t *testing.T) {
	wide := make([]key.Field, 16)
	for i := range wide {
		wide[i] = key.Field{Name: string(rune('a' + i)), Kind: key.KindExact, Size: 16}
	}
	tests := []struct {
		name   string
		fields []key.Field
		want   error
		field  string
	}{
		{"range on a wide field", []key.Field{fld("p", key.KindExact, 1), fld("addr", key.KindRange, 16)}, key.ErrRangeTooWide, "addr"},
		{"range on u64", []key.Field{fld("x", key.KindRange, 8)}, key.ErrRangeTooWide, "x"},
		{"too many rte_acl fields", wide[:7], nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := key.NewSchema(tc.fields...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = layout.Plan(s)
			if tc.want == nil {
				// 7 x 16 bytes = 112 bytes, 28 chunks + head: fits.
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *key.FieldError
			if !errors.Is(err, tc.want) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v", err)
			}
		})
	}
	many := make([]key.Field, 0, 64)
	for i := 0; i < 64; i++ {
		many = append(many, key.Field{Name: fmt.Sprintf("f%d", i), Kind: key.KindExact, Size: 1})
	}
	// 64 1-byte fields: head + 63 fields in 16 buckets + 1 pad = 65 defs.
	if _, err := layout.Plan(key.MustSchema(many...)); !errors.Is(err, key.ErrTooManyFields) {
		t.Fatalf("err = %v", err)
	}
}

// checkInvariants verifies the rte_acl layout rules.
func checkInvariants(t *testing.T, l *layout.Layout) {
	t.Helper()
	d0 := l.Defs[0]
	if d0.Size != 1 || d0.InputIndex != 0 || d0.Offset != 0 {
		t.Fatalf("first def %+v", d0)
	}
	if len(l.Defs) > layout.MaxDefs || l.Stride%4 != 0 {
		t.Fatalf("%d defs, stride %d", len(l.Defs), l.Stride)
	}
	used := make([]int, l.Stride)
	for i := 1; i < len(l.Defs); {
		in := l.Defs[i].InputIndex
		base := l.Defs[i].Offset
		sum := 0
		for ; i < len(l.Defs) && l.Defs[i].InputIndex == in; i++ {
			d := l.Defs[i]
			if d.Offset != base+sum || d.Size > 4 {
				t.Fatalf("def %d %+v not contiguous in its 4-byte group", i, d)
			}
			sum += d.Size
		}
		if sum != 4 || in != l.Defs[i-1].InputIndex || base+4 > l.Stride {
			t.Fatalf("group %d sums to %d bytes", in, sum)
		}
	}
	for _, d := range l.Defs {
		for b := d.Offset; b < d.Offset+d.Size; b++ {
			used[b]++
		}
	}
	s := l.Schema()
	for i := 0; i < s.NumFields(); i++ {
		f := s.Field(i)
		for b := l.Offsets[i]; b < l.Offsets[i]+f.Size; b++ {
			if used[b] != 1 {
				t.Fatalf("field %s byte %d covered %d times", f.Name, b, used[b])
			}
		}
	}
}

// TestEvalAgreesWithLowered runs random schemas, rules and probes through
// plan + columns + Eval (rte_acl semantics) and compares with key.Matches.
func TestEvalAgreesWithLowered(t *testing.T) {
	r := rulegen.New(7)
	for iter := 0; iter < 300; iter++ {
		s := rulegen.RandomSchema(r, rulegen.SchemaOptions{})
		checkPlan(t, r.Uint64(), s)
	}
}

func fld(name string, k key.Kind, size int) key.Field {
	return key.Field{Name: name, Kind: k, Size: size}
}
