package rulegen

import (
	"bytes"
	"math/big"
	"math/rand/v2"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// SchemaOptions configures [RandomSchema].
type SchemaOptions struct {
	// MaxFields bounds the number of fields (0 means 8).
	MaxFields int
	// WideRanges allows Range fields of 8 and 16 bytes (the reference
	// backend supports them; rte_acl does not).
	WideRanges bool
}

// Validate checks the options.
func (o SchemaOptions) Validate() error {
	if o.MaxFields < 0 || o.MaxFields > key.MaxFields {
		return key.ErrTooManyFields
	}
	return nil
}

var sizes = []int{1, 2, 4, 8, 16}

// RandomSchema draws a random runtime schema.
func RandomSchema(r *rand.Rand, o SchemaOptions) *key.Schema {
	maxf := o.MaxFields
	if maxf == 0 {
		maxf = 8
	}
	for {
		n := 1 + r.IntN(maxf)
		fs := make([]key.Field, n)
		total := 0
		for i := range fs {
			sz := sizes[r.IntN(len(sizes))]
			k := key.Kind(1 + r.IntN(4))
			if k == key.KindRange && sz > 4 && !o.WideRanges {
				k = key.KindPrefix
			}
			fs[i] = key.Field{Name: "f" + string(rune('a'+i%26)) + string(rune('0'+i/26)), Kind: k, Size: sz}
			total += sz
		}
		if total > key.MaxKeySize {
			continue
		}
		s, err := key.NewSchema(fs...)
		if err == nil {
			return s
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// smallPool biases random values toward a few per-field choices so random
// rules overlap and random keys hit them.
func poolBytes(r *rand.Rand, n int) []byte {
	if r.IntN(3) == 0 {
		return randBytes(r, n)
	}
	b := make([]byte, n)
	b[n-1] = byte(r.IntN(4))
	if r.IntN(2) == 0 {
		b[0] = 0x80
	}
	return b
}

// RandomPred draws a predicate for field f (wildcards included).
func RandomPred(r *rand.Rand, f key.FieldSpec) key.Pred {
	if r.IntN(5) == 0 {
		return key.Any()
	}
	v := key.Bytes(poolBytes(r, f.Size))
	switch f.Kind {
	case key.KindExact:
		return key.Exact(v)
	case key.KindPrefix:
		return key.Prefix(v, r.IntN(8*f.Size+1))
	case key.KindMask:
		m := randBytes(r, f.Size)
		if r.IntN(2) == 0 {
			m = key.PrefixMask(f.Size, r.IntN(8*f.Size+1))
		}
		return key.Mask(v, key.Bytes(m))
	default:
		a, b := poolBytes(r, f.Size), poolBytes(r, f.Size)
		if r.IntN(4) == 0 {
			b = append([]byte(nil), a...)
		}
		if bytes.Compare(a, b) > 0 {
			a, b = b, a
		}
		return key.Range(key.Bytes(a), key.Bytes(b))
	}
}

// RandomRule draws a rule for s with a random priority in [0, maxPrio).
func RandomRule(r *rand.Rand, s *key.Schema, maxPrio int) key.Rule {
	rule := key.Rule{Priority: int32(r.IntN(max(maxPrio, 1))), Fields: make([]key.Pred, s.NumFields())}
	for i := range rule.Fields {
		rule.Fields[i] = RandomPred(r, s.Field(i))
	}
	return rule
}

// RandomKey draws a packed key for s.
func RandomKey(r *rand.Rand, s *key.Schema) []byte {
	out := make([]byte, s.Size())
	for i := 0; i < s.NumFields(); i++ {
		f := s.Field(i)
		copy(out[f.Offset:], poolBytes(r, f.Size))
	}
	return out
}

func hitField(r *rand.Rand, f key.FieldSpec, m *key.Match, dst []byte) {
	if f.Kind == key.KindRange {
		switch r.IntN(4) {
		case 0:
			copy(dst, m.Min)
		case 1:
			copy(dst, m.Max)
		default:
			lo := new(big.Int).SetBytes(m.Min)
			span := new(big.Int).Sub(new(big.Int).SetBytes(m.Max), lo)
			span.Add(span, big.NewInt(1))
			x := randBelow(r, span) // uniform in [0, span)
			x.Add(x, lo)
			x.FillBytes(dst)
		}
		return
	}
	rb := randBytes(r, f.Size)
	for i := range dst {
		dst[i] = m.Value[i] | rb[i]&^m.Mask[i]
	}
}

// Hit returns a packed key that satisfies every field of l.
func Hit(r *rand.Rand, s *key.Schema, l *key.Lowered) []byte {
	out := make([]byte, s.Size())
	for i := 0; i < s.NumFields(); i++ {
		f := s.Field(i)
		hitField(r, f, &l.Fields[i], out[f.Offset:f.Offset+f.Size])
	}
	return out
}

// Miss returns a packed key that satisfies every field of l except field i,
// which it violates. It returns false if field i matches every value.
func Miss(r *rand.Rand, s *key.Schema, l *key.Lowered, i int) ([]byte, bool) {
	f := s.Field(i)
	m := &l.Fields[i]
	out := Hit(r, s, l)
	x := out[f.Offset : f.Offset+f.Size]
	if f.Kind == key.KindRange {
		lo := new(big.Int).SetBytes(m.Min)
		hi := new(big.Int).SetBytes(m.Max)
		top := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(8*f.Size)), big.NewInt(1))
		below, above := lo.Sign() > 0, hi.Cmp(top) < 0
		if !below && !above {
			return nil, false
		}
		var v *big.Int
		if below && (!above || r.IntN(2) == 0) {
			if r.IntN(2) == 0 {
				v = new(big.Int).Sub(lo, big.NewInt(1))
			} else {
				v = randBelow(r, lo)
			}
		} else {
			if r.IntN(2) == 0 {
				v = new(big.Int).Add(hi, big.NewInt(1))
			} else {
				span := new(big.Int).Sub(top, hi)
				v = randBelow(r, span)
				v.Add(v, hi).Add(v, big.NewInt(1))
			}
		}
		v.FillBytes(x)
		return out, true
	}
	var bits []int
	for b := 0; b < 8*f.Size; b++ {
		if m.Mask[b/8]&(0x80>>uint(b%8)) != 0 {
			bits = append(bits, b)
		}
	}
	if len(bits) == 0 {
		return nil, false
	}
	b := bits[r.IntN(len(bits))]
	x[b/8] ^= 0x80 >> uint(b%8)
	return out, true
}

// Probe draws a probe for a rule set: with equal odds a hit on a random
// rule, a one-field miss of a random rule, or a random key.
func Probe(r *rand.Rand, s *key.Schema, rules []key.Lowered) []byte {
	if len(rules) == 0 {
		return RandomKey(r, s)
	}
	l := &rules[r.IntN(len(rules))]
	switch r.IntN(3) {
	case 0:
		return Hit(r, s, l)
	case 1:
		if k, ok := Miss(r, s, l, r.IntN(s.NumFields())); ok {
			return k
		}
		return Hit(r, s, l)
	}
	return RandomKey(r, s)
}

// randBelow returns a (near-)uniform value in [0, n); n must be positive.
func randBelow(r *rand.Rand, n *big.Int) *big.Int {
	if n.IsUint64() {
		return new(big.Int).SetUint64(r.Uint64N(n.Uint64()))
	}
	b := randBytes(r, len(n.Bytes())+8)
	return new(big.Int).Mod(new(big.Int).SetBytes(b), n)
}
