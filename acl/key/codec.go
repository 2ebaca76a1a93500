package key

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unsafe"
)

// op is one compiled pack operation: load width bytes at src in the struct,
// store them big-endian at dst in the output.
type op struct {
	src   uintptr
	dst   int
	size  int
	kind  uint8 // opUint, opBytes, opU128
	field int
}

const (
	opUint uint8 = iota
	opBytes
	opU128
)

// Codec packs values of a tagged struct type K. It is built once per type by
// [CodecOf] (reflection runs there, never while packing) and is safe for
// concurrent use.
type Codec[K any] struct {
	schema *Schema
	ops    []op
	size   int // output size: the schema's for canonical packing
}

var codecCache sync.Map // reflect.Type -> *codecInfo

type codecInfo struct {
	schema *Schema
	ops    []op
	err    error
}

// CodecOf reads K's `acl:"name,kind"` struct tags (once per type; the result
// is cached) and returns the codec that packs K in the canonical layout of
// its schema.
func CodecOf[K any]() (*Codec[K], error) {
	t := reflect.TypeFor[K]()
	v, ok := codecCache.Load(t)
	if !ok {
		v, _ = codecCache.LoadOrStore(t, buildCodec(t))
	}
	ci := v.(*codecInfo)
	if ci.err != nil {
		return nil, ci.err
	}
	return &Codec[K]{schema: ci.schema, ops: ci.ops, size: ci.schema.Size()}, nil
}

// MustCodec is CodecOf that panics on error; for package-level variables.
func MustCodec[K any]() *Codec[K] {
	c, err := CodecOf[K]()
	if err != nil {
		panic(err)
	}
	return c
}

var u128Type = reflect.TypeFor[U128]()

func buildCodec(t reflect.Type) *codecInfo {
	if t.Kind() != reflect.Struct {
		return &codecInfo{err: fmt.Errorf("%w: %v is not a struct", ErrBadSchema, t)}
	}
	var fields []Field
	var ops []op
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("acl")
		if !ok || tag == "-" {
			continue
		}
		name, kindStr, found := strings.Cut(tag, ",")
		if !found {
			return &codecInfo{err: &FieldError{sf.Name, fmt.Errorf("%w: tag %q wants \"name,kind\"", ErrBadSchema, tag)}}
		}
		if name == "" {
			name = sf.Name
		}
		kind, err := ParseKind(kindStr)
		if err != nil {
			return &codecInfo{err: &FieldError{name, err}}
		}
		o := op{src: sf.Offset, field: len(fields)}
		ft := sf.Type
		switch {
		case ft == u128Type:
			o.kind, o.size = opU128, 16
		case ft.Kind() == reflect.Uint8 || ft.Kind() == reflect.Uint16 || ft.Kind() == reflect.Uint32 || ft.Kind() == reflect.Uint64:
			o.kind, o.size = opUint, int(ft.Size())
		case ft.Kind() == reflect.Array && ft.Elem().Kind() == reflect.Uint8 && ValidSize(ft.Len()):
			o.kind, o.size = opBytes, ft.Len()
		default:
			return &codecInfo{err: &FieldError{name, fmt.Errorf("%w: Go type %v", ErrFieldSize, ft)}}
		}
		fields = append(fields, Field{Name: name, Kind: kind, Size: o.size})
		ops = append(ops, o)
	}
	s, err := NewSchema(fields...)
	if err != nil {
		return &codecInfo{err: fmt.Errorf("acl: key type %v: %w", t, err)}
	}
	for i := range ops {
		ops[i].dst = s.fields[i].Offset
	}
	return &codecInfo{schema: s, ops: ops}
}

// Schema returns the schema described by K's tags.
func (c *Codec[K]) Schema() *Schema { return c.schema }

// Size returns the number of bytes Pack writes.
func (c *Codec[K]) Size() int { return c.size }

// Placed returns a codec that writes field i at offsets[i] of a size-byte
// output instead of the canonical layout. Backends use it to pack keys
// straight into their own input layout.
func (c *Codec[K]) Placed(offsets []int, size int) (*Codec[K], error) {
	if len(offsets) != len(c.ops) {
		return nil, fmt.Errorf("acl: %d offsets for %d fields: %w", len(offsets), len(c.ops), ErrKeyLength)
	}
	out := &Codec[K]{schema: c.schema, ops: append([]op(nil), c.ops...), size: size}
	for i := range out.ops {
		if offsets[i] < 0 || offsets[i]+out.ops[i].size > size {
			return nil, fmt.Errorf("acl: field %q placed at %d outside %d bytes: %w", c.schema.fields[i].Name, offsets[i], size, ErrKeyLength)
		}
		out.ops[i].dst = offsets[i]
	}
	return out, nil
}

// Pack writes k into dst[:Size()] big-endian. It panics if dst is short.
func (c *Codec[K]) Pack(dst []byte, k *K) {
	_ = dst[c.size-1]
	base := unsafe.Pointer(k)
	for i := range c.ops {
		o := &c.ops[i]
		p := unsafe.Add(base, o.src)
		switch o.kind {
		case opUint:
			switch o.size {
			case 1:
				dst[o.dst] = *(*uint8)(p)
			case 2:
				binary.BigEndian.PutUint16(dst[o.dst:], *(*uint16)(p))
			case 4:
				binary.BigEndian.PutUint32(dst[o.dst:], *(*uint32)(p))
			case 8:
				binary.BigEndian.PutUint64(dst[o.dst:], *(*uint64)(p))
			}
		case opBytes:
			copy(dst[o.dst:o.dst+o.size], unsafe.Slice((*byte)(p), o.size))
		case opU128:
			u := (*U128)(p)
			binary.BigEndian.PutUint64(dst[o.dst:], u.Hi)
			binary.BigEndian.PutUint64(dst[o.dst+8:], u.Lo)
		}
	}
}

// Append appends k's packed bytes to dst.
func (c *Codec[K]) Append(dst []byte, k *K) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, c.size)...)
	c.Pack(dst[n:], k)
	return dst
}
