// Package layout plans how a key schema maps onto DPDK rte_acl's field
// model, in pure Go so it can be tested and fuzzed without DPDK.
//
// rte_acl walks its input one byte for the first field and then four bytes
// per "input index", building one trie level per byte. [Plan] therefore:
//
//   - puts a 1-byte field first (a user field if the schema has one, else a
//     wildcard pad byte) at offset 0, input index 0;
//   - splits 8- and 16-byte fields into 4-byte chunks, each its own input
//     index; a prefix length is spread across the chunks (/70 on an IPv6
//     address becomes /32,/32,/6,/0) and masks/exact values are split bytewise;
//   - packs the remaining 1-, 2- and 4-byte fields first-fit-decreasing into
//     4-byte buckets (one input index each), filling gaps with wildcard pad
//     fields so every bucket is exactly four bytes of trie levels;
//   - rejects ranges on fields wider than 4 bytes ([key.ErrRangeTooWide]):
//     a range does not decompose into independent per-chunk ranges.
//
// The planned input layout is a byte buffer of [Layout.Stride] bytes in
// which user field i lives at [Layout.Offsets][i], big-endian. Pad bytes are
// never matched. [Layout.Columns] lowers a [key.Lowered] rule into one
// (value, mask_range) column per rte_acl field, and [Layout.Eval] evaluates
// columns with rte_acl's per-field semantics in Go (the fuzz oracle for the
// planner).
package layout

import (
	"fmt"
	"sort"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// FieldType is an rte_acl field type; the values equal RTE_ACL_FIELD_TYPE_*.
type FieldType uint8

// The rte_acl field types.
const (
	// TypeMask is a prefix: value plus prefix length.
	TypeMask FieldType = 0
	// TypeRange is an inclusive range: min and max.
	TypeRange FieldType = 1
	// TypeBitmask is value and bit mask.
	TypeBitmask FieldType = 2
)

// MaxDefs is rte_acl's RTE_ACL_MAX_FIELDS.
const MaxDefs = 64

// Def is one rte_acl field definition plus where its bytes come from.
type Def struct {
	// Type is the rte_acl field type.
	Type FieldType
	// Size is the field width in bytes (1, 2 or 4).
	Size int
	// InputIndex is the rte_acl input index (0 for the first field).
	InputIndex int
	// Offset is the byte offset in the input buffer.
	Offset int
	// Source is the schema field this def reads, or -1 for padding.
	Source int
	// Chunk is the 4-byte chunk of a wide source field (0 otherwise).
	Chunk int
}

// Layout is a planned rte_acl field layout. Def i has rte_acl field_index i.
type Layout struct {
	// Defs are the rte_acl field definitions in input order.
	Defs []Def
	// Offsets[i] is the input-buffer offset of schema field i.
	Offsets []int
	// Stride is the input buffer size; a multiple of 4.
	Stride int
	schema *key.Schema
}

// Schema returns the planned schema.
func (l *Layout) Schema() *key.Schema { return l.schema }

type item struct {
	src, chunk, size int
}

// Plan lays s out for rte_acl.
func Plan(s *key.Schema) (*Layout, error) {
	l := &Layout{schema: s, Offsets: make([]int, s.NumFields())}
	first := -1
	for i := 0; i < s.NumFields(); i++ {
		f := s.Field(i)
		if f.Size > 4 && f.Kind == key.KindRange {
			return nil, &key.FieldError{Field: f.Name, Err: fmt.Errorf("%w: %d-byte range (rte_acl ranges are at most 4 bytes here)", key.ErrRangeTooWide, f.Size)}
		}
		if f.Size == 1 && first < 0 {
			first = i
		}
	}
	if first >= 0 {
		l.Defs = append(l.Defs, Def{Type: typeOf(s.Field(first).Kind), Size: 1, Source: first})
	} else {
		l.Defs = append(l.Defs, Def{Type: TypeBitmask, Size: 1, Source: -1})
	}
	var wide, small []item
	for i := 0; i < s.NumFields(); i++ {
		if i == first {
			continue
		}
		f := s.Field(i)
		if f.Size >= 4 {
			for c := 0; c < f.Size/4; c++ {
				wide = append(wide, item{i, c, 4})
			}
			continue
		}
		small = append(small, item{i, 0, f.Size})
	}
	// First-fit decreasing into 4-byte buckets.
	sort.SliceStable(small, func(a, b int) bool { return small[a].size > small[b].size })
	type bucket struct {
		used  int
		items []item
	}
	var buckets []bucket
	for _, w := range wide {
		buckets = append(buckets, bucket{4, []item{w}})
	}
	for _, it := range small {
		placed := false
		for b := len(wide); b < len(buckets); b++ {
			if buckets[b].used+it.size <= 4 {
				buckets[b].used += it.size
				buckets[b].items = append(buckets[b].items, it)
				placed = true
				break
			}
		}
		if !placed {
			buckets = append(buckets, bucket{it.size, []item{it}})
		}
	}
	for b, bk := range buckets {
		in := b + 1
		off := 4 * in
		for _, it := range bk.items {
			f := s.Field(it.src)
			l.Defs = append(l.Defs, Def{Type: typeOf(f.Kind), Size: it.size, InputIndex: in, Offset: off, Source: it.src, Chunk: it.chunk})
			if it.chunk == 0 {
				l.Offsets[it.src] = off
			}
			off += it.size
		}
		for gap := 4 - bk.used; gap > 0; {
			sz := 1
			if gap >= 2 && off%2 == 0 {
				sz = 2
			}
			l.Defs = append(l.Defs, Def{Type: TypeBitmask, Size: sz, InputIndex: in, Offset: off, Source: -1})
			off += sz
			gap -= sz
		}
	}
	// Wide fields are contiguous: chunk c is at Offsets+4c because their
	// buckets were allocated consecutively.
	l.Stride = 4 * (len(buckets) + 1)
	if len(l.Defs) > MaxDefs {
		return nil, fmt.Errorf("acl: schema %v needs %d rte_acl fields (max %d): %w", s, len(l.Defs), MaxDefs, key.ErrTooManyFields)
	}
	return l, nil
}

func typeOf(k key.Kind) FieldType {
	switch k {
	case key.KindPrefix:
		return TypeMask
	case key.KindRange:
		return TypeRange
	}
	return TypeBitmask
}

// Column is one rte_acl rule field: value and mask_range as host integers
// (rte_acl compares them against the big-endian input bytes).
type Column struct {
	// Value is the value (or range min).
	Value uint64
	// MaskRange is the prefix length, bit mask or range max.
	MaskRange uint64
}

func be(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Columns lowers a validated rule (lowered against Schema()) into one column
// per def; out must have len(Defs) entries.
func (l *Layout) Columns(r *key.Lowered, out []Column) {
	for i, d := range l.Defs {
		if d.Source < 0 {
			out[i] = Column{}
			continue
		}
		m := &r.Fields[d.Source]
		lo, hi := 4*d.Chunk, 4*d.Chunk+d.Size
		switch d.Type {
		case TypeRange:
			out[i] = Column{be(m.Min), be(m.Max)}
		case TypeMask:
			bits := min(max(m.Bits-32*d.Chunk, 0), 8*d.Size)
			out[i] = Column{be(m.Value[lo:hi]), uint64(bits)}
		default:
			out[i] = Column{be(m.Value[lo:hi]), be(m.Mask[lo:hi])}
		}
	}
}

// Pack copies a canonically packed key (see [key.Schema]) into dst, an
// input buffer of at least Stride bytes.
func (l *Layout) Pack(dst, packed []byte) {
	for i := 0; i < l.schema.NumFields(); i++ {
		f := l.schema.Field(i)
		copy(dst[l.Offsets[i]:l.Offsets[i]+f.Size], packed[f.Offset:])
	}
}

// Eval reports whether an input buffer satisfies the columns under
// rte_acl's per-field semantics (prefix, bitmask, inclusive range).
func (l *Layout) Eval(cols []Column, input []byte) bool {
	for i, d := range l.Defs {
		x := be(input[d.Offset : d.Offset+d.Size])
		c := cols[i]
		switch d.Type {
		case TypeRange:
			if x < c.Value || x > c.MaskRange {
				return false
			}
		case TypeMask:
			var m uint64
			if c.MaskRange != 0 {
				m = (^uint64(0) << (uint(8*d.Size) - uint(c.MaskRange))) & (1<<uint(8*d.Size) - 1)
			}
			if x&m != c.Value&m {
				return false
			}
		default:
			if x&c.MaskRange != c.Value&c.MaskRange {
				return false
			}
		}
	}
	return true
}
