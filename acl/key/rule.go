package key

import (
	"bytes"
	"fmt"
)

// Pred is a predicate on one field. The zero Pred is a wildcard that matches
// every value; build others with [Exact], [Prefix], [Mask] and [Range].
type Pred struct {
	kind Kind
	a, b []byte
	bits int
}

// Any returns the wildcard predicate (the same as the zero Pred).
func Any() Pred { return Pred{} }

// Exact matches exactly v.
func Exact(v Value) Pred { return Pred{kind: KindExact, a: BytesOf(v)} }

// Prefix matches values whose leading bits equal v's leading bits.
func Prefix(v Value, bits int) Pred { return Pred{kind: KindPrefix, a: BytesOf(v), bits: bits} }

// Mask matches values x with x&mask == v&mask.
func Mask(v, mask Value) Pred { return Pred{kind: KindMask, a: BytesOf(v), b: BytesOf(mask)} }

// Range matches the inclusive interval [lo, hi] of unsigned big-endian values.
func Range(lo, hi Value) Pred { return Pred{kind: KindRange, a: BytesOf(lo), b: BytesOf(hi)} }

// Kind returns the predicate's kind, or 0 for a wildcard.
func (p Pred) Kind() Kind { return p.kind }

// IsAny reports whether p is the wildcard.
func (p Pred) IsAny() bool { return p.kind == 0 }

// String renders the predicate for diagnostics.
func (p Pred) String() string {
	switch p.kind {
	case KindExact:
		return fmt.Sprintf("=%x", p.a)
	case KindPrefix:
		return fmt.Sprintf("%x/%d", p.a, p.bits)
	case KindMask:
		return fmt.Sprintf("%x&%x", p.a, p.b)
	case KindRange:
		return fmt.Sprintf("[%x,%x]", p.a, p.b)
	}
	return "*"
}

// Rule is one classifier rule: a predicate per schema field (positional;
// fields beyond len(Fields) are wildcards), a priority and a category mask.
type Rule struct {
	// Priority orders overlapping rules: higher wins, ties go to the rule
	// added first.
	Priority int32
	// Categories is a bit mask of the categories the rule belongs to
	// (bit i = category i). Zero means category 0 only.
	Categories uint32
	// Fields holds the predicates in schema order.
	Fields []Pred
}

// Entry pairs a rule with the action a match returns.
type Entry[A any] struct {
	Rule
	// Action is returned when the rule is the best match.
	Action A
}

// Match is one field of a lowered rule, in canonical byte form. For Exact,
// Prefix and Mask fields the predicate is x&Mask == Value (Value is already
// masked); for Range fields it is Min <= x <= Max, compared as unsigned
// big-endian numbers. Wildcards have Any set and are also expressed in the
// kind's form (zero mask, or the full range, or prefix length 0).
type Match struct {
	// Any reports a wildcard.
	Any bool
	// Value and Mask describe Exact, Prefix and Mask fields.
	Value, Mask []byte
	// Min and Max describe Range fields.
	Min, Max []byte
	// Bits is the prefix length of Prefix fields.
	Bits int
}

// Lowered is a validated rule in canonical byte form.
type Lowered struct {
	// Priority is the rule's priority.
	Priority int32
	// Categories is the rule's category mask (never zero).
	Categories uint32
	// Fields holds one Match per schema field.
	Fields []Match
}

// Matches reports whether the packed key satisfies every field of l.
func (l *Lowered) Matches(s *Schema, packed []byte) bool {
	for i := range l.Fields {
		f := s.fields[i]
		if !l.Fields[i].matches(f.Kind, packed[f.Offset:f.Offset+f.Size]) {
			return false
		}
	}
	return true
}

func (m *Match) matches(k Kind, x []byte) bool {
	if k == KindRange {
		return bytes.Compare(x, m.Min) >= 0 && bytes.Compare(x, m.Max) <= 0
	}
	for i := range x {
		if x[i]&m.Mask[i] != m.Value[i] {
			return false
		}
	}
	return true
}

// PrefixMask returns the size-byte mask with the leading bits set.
func PrefixMask(size, bits int) []byte {
	m := make([]byte, size)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// Lower validates rule r (whose insertion index is idx, used in errors)
// against s and returns its canonical form. categories is the number of
// categories the caller's table has (1..32); the rule's mask must fit.
func (s *Schema) Lower(idx int, r Rule, categories int) (Lowered, error) {
	if len(r.Fields) > len(s.fields) {
		return Lowered{}, &RuleError{Rule: idx, Err: fmt.Errorf("%w: %d predicates, %d fields", ErrTooManyPredicates, len(r.Fields), len(s.fields))}
	}
	cats := r.Categories
	if cats == 0 {
		cats = 1
	}
	if categories < 1 {
		categories = 1
	}
	if categories < 32 && cats>>uint(categories) != 0 {
		return Lowered{}, &RuleError{Rule: idx, Err: fmt.Errorf("%w: mask %#x with %d categories", ErrCategory, cats, categories)}
	}
	l := Lowered{Priority: r.Priority, Categories: cats, Fields: make([]Match, len(s.fields))}
	for i, f := range s.fields {
		var p Pred
		if i < len(r.Fields) {
			p = r.Fields[i]
		}
		m, err := lowerPred(f, p)
		if err != nil {
			return Lowered{}, &RuleError{Rule: idx, Field: f.Name, Err: err}
		}
		l.Fields[i] = m
	}
	return l, nil
}

func lowerPred(f FieldSpec, p Pred) (Match, error) {
	n := f.Size
	if p.kind == 0 {
		m := Match{Any: true}
		if f.Kind == KindRange {
			m.Min = make([]byte, n)
			m.Max = bytes.Repeat([]byte{0xff}, n)
		} else {
			m.Value = make([]byte, n)
			m.Mask = make([]byte, n)
		}
		return m, nil
	}
	if p.kind != f.Kind {
		return Match{}, fmt.Errorf("%w: %v predicate on %v field", ErrKindMismatch, p.kind, f.Kind)
	}
	if len(p.a) != n || (p.kind == KindMask || p.kind == KindRange) && len(p.b) != n {
		return Match{}, fmt.Errorf("%w: %d-byte value for a %d-byte field", ErrValueSize, len(p.a), n)
	}
	var m Match
	switch p.kind {
	case KindExact:
		m.Mask = bytes.Repeat([]byte{0xff}, n)
		m.Value = append([]byte(nil), p.a...)
	case KindPrefix:
		if p.bits < 0 || p.bits > 8*n {
			return Match{}, fmt.Errorf("%w: /%d on a %d-bit field", ErrPrefixTooLong, p.bits, 8*n)
		}
		m.Bits = p.bits
		m.Mask = PrefixMask(n, p.bits)
		m.Value = make([]byte, n)
		for i := range m.Value {
			m.Value[i] = p.a[i] & m.Mask[i]
		}
		m.Any = p.bits == 0
	case KindMask:
		m.Mask = append([]byte(nil), p.b...)
		m.Value = make([]byte, n)
		anyBit := false
		for i := range m.Value {
			m.Value[i] = p.a[i] & m.Mask[i]
			anyBit = anyBit || m.Mask[i] != 0
		}
		m.Any = !anyBit
	case KindRange:
		if bytes.Compare(p.a, p.b) > 0 {
			return Match{}, fmt.Errorf("%w: [%x, %x]", ErrRangeInverted, p.a, p.b)
		}
		m.Min = append([]byte(nil), p.a...)
		m.Max = append([]byte(nil), p.b...)
		m.Any = isZero(m.Min) && isAllOnes(m.Max)
	}
	return m, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func isAllOnes(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// LowerOptions controls [LowerAll].
type LowerOptions struct {
	// Categories is the number of categories (1..32; 0 means 1).
	Categories int
	// UniquePriorities rejects two rules with the same priority.
	UniquePriorities bool
}

// Validate checks the options.
func (o LowerOptions) Validate() error {
	if o.Categories < 0 || o.Categories > 32 {
		return fmt.Errorf("acl: %d categories (want 0..32): %w", o.Categories, ErrCategory)
	}
	return nil
}

// LowerAll validates and lowers rules in insertion order.
func LowerAll(s *Schema, rules []Rule, o LowerOptions) ([]Lowered, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	out := make([]Lowered, len(rules))
	var seen map[int32]int
	if o.UniquePriorities {
		seen = make(map[int32]int, len(rules))
	}
	for i, r := range rules {
		l, err := s.Lower(i, r, o.Categories)
		if err != nil {
			return nil, err
		}
		if seen != nil {
			if j, dup := seen[r.Priority]; dup {
				return nil, &RuleError{Rule: i, Err: fmt.Errorf("%w: priority %d already used by rule %d", ErrDuplicatePriority, r.Priority, j)}
			}
			seen[r.Priority] = i
		}
		out[i] = l
	}
	return out, nil
}
