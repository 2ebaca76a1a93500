// Package reference is the software reference classifier: a linear scan over
// rules lowered to canonical predicates. It is the oracle every other acl
// backend is tested against, so it favours obviously-correct over fast.
//
// Precedence: the rule with the highest [key.Rule.Priority] wins; among rules
// of equal priority the one added first (lowest index in the entries slice)
// wins. The scan visits rules in exactly that order and stops at the first
// match, per category.
//
// Matching works on packed keys (see package key): each rule's Exact, Prefix
// and Mask fields are merged into whole-key 64-bit mask/value words; Range
// fields are checked as unsigned integers (or bytewise for 16-byte fields).
//
// Usage:
//
//	tbl, err := reference.NewTyped[FiveTuple, string](entries, reference.Options{})
//	verdict, ok := tbl.Lookup(FiveTuple{...})
package reference

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// Options configures a table.
type Options struct {
	// Categories is the number of result categories (0 means 1, max 32).
	Categories int
	// UniquePriorities rejects rule sets in which two rules share a priority.
	UniquePriorities bool
}

// Validate checks the options.
func (o Options) Validate() error {
	return key.LowerOptions{Categories: o.Categories, UniquePriorities: o.UniquePriorities}.Validate()
}

type rng struct {
	off, size int
	min, max  uint64
	minB      []byte // 16-byte fields
	maxB      []byte
}

type rule struct {
	index int // insertion index
	cats  uint32
	mask  []uint64
	val   []uint64
	rngs  []rng
}

// Table is a runtime-shaped reference classifier over packed keys. It is
// immutable after New and safe for concurrent use.
type Table[A any] struct {
	schema  *key.Schema
	cats    int
	words   int
	rules   []rule // in precedence order
	actions []A    // by insertion index
}

// New lowers entries against s and builds a table.
func New[A any](s *key.Schema, entries []key.Entry[A], o Options) (*Table[A], error) {
	rules := make([]key.Rule, len(entries))
	for i := range entries {
		rules[i] = entries[i].Rule
	}
	low, err := key.LowerAll(s, rules, key.LowerOptions{Categories: o.Categories, UniquePriorities: o.UniquePriorities})
	if err != nil {
		return nil, err
	}
	t := &Table[A]{schema: s, cats: max(o.Categories, 1), words: (s.Size() + 7) / 8}
	t.actions = make([]A, len(entries))
	t.rules = make([]rule, len(entries))
	flat := make([]uint64, 2*t.words*len(entries))
	for i := range entries {
		t.actions[i] = entries[i].Action
		r := rule{index: i, cats: low[i].Categories}
		r.mask, flat = flat[:t.words:t.words], flat[t.words:]
		r.val, flat = flat[:t.words:t.words], flat[t.words:]
		mb := make([]byte, 8*t.words)
		vb := make([]byte, 8*t.words)
		for j, m := range low[i].Fields {
			f := s.Field(j)
			if f.Kind == key.KindRange {
				if m.Any {
					continue
				}
				g := rng{off: f.Offset, size: f.Size}
				if f.Size == 16 {
					g.minB, g.maxB = m.Min, m.Max
				} else {
					g.min, g.max = be(m.Min), be(m.Max)
				}
				r.rngs = append(r.rngs, g)
				continue
			}
			copy(mb[f.Offset:], m.Mask)
			copy(vb[f.Offset:], m.Value)
		}
		for w := range t.words {
			r.mask[w] = binary.LittleEndian.Uint64(mb[8*w:])
			r.val[w] = binary.LittleEndian.Uint64(vb[8*w:])
		}
		t.rules[i] = r
	}
	sort.SliceStable(t.rules, func(a, b int) bool {
		return low[t.rules[a].index].Priority > low[t.rules[b].index].Priority
	})
	return t, nil
}

func be(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Schema returns the table's key schema.
func (t *Table[A]) Schema() *key.Schema { return t.schema }

// Len returns the number of rules.
func (t *Table[A]) Len() int { return len(t.rules) }

// Categories returns the number of categories.
func (t *Table[A]) Categories() int { return t.cats }

// Action returns the action of the rule with insertion index i.
func (t *Table[A]) Action(i int) A { return t.actions[i] }

func (r *rule) matches(words []uint64, packed []byte) bool {
	for w, m := range r.mask {
		if words[w]&m != r.val[w] {
			return false
		}
	}
	for i := range r.rngs {
		g := &r.rngs[i]
		x := packed[g.off : g.off+g.size]
		if g.size == 16 {
			if bytes.Compare(x, g.minB) < 0 || bytes.Compare(x, g.maxB) > 0 {
				return false
			}
			continue
		}
		v := be(x)
		if v < g.min || v > g.max {
			return false
		}
	}
	return true
}

func (t *Table[A]) load(packed []byte, buf *[key.MaxKeySize/8 + 1]uint64) []uint64 {
	if len(packed) != t.schema.Size() {
		panic(fmt.Sprintf("reference: %d-byte key for a %d-byte schema: %v", len(packed), t.schema.Size(), key.ErrKeyLength))
	}
	var b [key.MaxKeySize + 8]byte
	copy(b[:], packed)
	w := buf[:t.words]
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return w
}

// Match returns the insertion index of the best rule in category 0 matching
// the packed key, or -1. It panics if len(packed) != Schema().Size().
func (t *Table[A]) Match(packed []byte) int {
	var buf [key.MaxKeySize/8 + 1]uint64
	words := t.load(packed, &buf)
	for i := range t.rules {
		r := &t.rules[i]
		if r.cats&1 != 0 && r.matches(words, packed) {
			return r.index
		}
	}
	return -1
}

// MatchCategories writes, for each category c < Categories(), the insertion
// index of the best matching rule in c (or -1) to out[c].
func (t *Table[A]) MatchCategories(packed []byte, out []int) {
	var buf [key.MaxKeySize/8 + 1]uint64
	words := t.load(packed, &buf)
	out = out[:t.cats]
	for c := range out {
		out[c] = -1
	}
	left := uint32(1)<<uint(t.cats) - 1
	if t.cats == 32 {
		left = ^uint32(0)
	}
	for i := range t.rules {
		r := &t.rules[i]
		if r.cats&left == 0 || !r.matches(words, packed) {
			continue
		}
		for c := range out {
			if left&r.cats&(1<<uint(c)) != 0 {
				out[c] = r.index
			}
		}
		left &^= r.cats
		if left == 0 {
			return
		}
	}
}

// Lookup returns the action of the best category-0 rule matching packed.
func (t *Table[A]) Lookup(packed []byte) (A, bool) {
	if i := t.Match(packed); i >= 0 {
		return t.actions[i], true
	}
	var zero A
	return zero, false
}

// LookupBatch classifies each packed key (category 0).
func (t *Table[A]) LookupBatch(keys [][]byte, acts []A, hits []bool) int {
	n := 0
	for i, k := range keys {
		acts[i], hits[i] = t.Lookup(k)
		if hits[i] {
			n++
		}
	}
	return n
}

// Typed is a reference table keyed by a tagged struct type K (see
// [key.CodecOf]).
type Typed[K, A any] struct {
	*Table[A]
	codec *key.Codec[K]
}

// NewTyped builds a table whose schema comes from K's struct tags.
func NewTyped[K, A any](entries []key.Entry[A], o Options) (*Typed[K, A], error) {
	c, err := key.CodecOf[K]()
	if err != nil {
		return nil, err
	}
	t, err := New(c.Schema(), entries, o)
	if err != nil {
		return nil, err
	}
	return &Typed[K, A]{Table: t, codec: c}, nil
}

// Codec returns the key codec.
func (t *Typed[K, A]) Codec() *key.Codec[K] { return t.codec }

// MatchKey returns the insertion index of the best category-0 rule, or -1.
func (t *Typed[K, A]) MatchKey(k K) int {
	var b [key.MaxKeySize]byte
	p := b[:t.codec.Size()]
	t.codec.Pack(p, &k)
	return t.Table.Match(p)
}

// Lookup implements lookup.Lookup[K, A].
func (t *Typed[K, A]) Lookup(k K) (A, bool) {
	if i := t.MatchKey(k); i >= 0 {
		return t.actions[i], true
	}
	var zero A
	return zero, false
}

// LookupBatch implements lookup.BatchLookup[K, A].
func (t *Typed[K, A]) LookupBatch(keys []K, acts []A, hits []bool) int {
	n := 0
	for i, k := range keys {
		acts[i], hits[i] = t.Lookup(k)
		if hits[i] {
			n++
		}
	}
	return n
}
