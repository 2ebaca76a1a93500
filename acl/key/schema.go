package key

import (
	"fmt"
	"strings"
)

// Kind is how a field is matched.
type Kind uint8

// The four predicate kinds. The zero Kind is invalid for fields.
const (
	// KindExact matches one value (a wildcard is also allowed).
	KindExact Kind = iota + 1
	// KindPrefix matches the leading bits of the value (CIDR style).
	KindPrefix
	// KindMask matches value bits selected by an arbitrary bit mask.
	KindMask
	// KindRange matches an inclusive [min, max] interval of the unsigned
	// big-endian value.
	KindRange
)

// String returns the kind's tag spelling.
func (k Kind) String() string {
	switch k {
	case KindExact:
		return "exact"
	case KindPrefix:
		return "prefix"
	case KindMask:
		return "mask"
	case KindRange:
		return "range"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind parses a kind's tag spelling.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "exact":
		return KindExact, nil
	case "prefix":
		return KindPrefix, nil
	case "mask":
		return KindMask, nil
	case "range":
		return KindRange, nil
	}
	return 0, fmt.Errorf("%w: unknown kind %q", ErrBadSchema, s)
}

// Limits of the key vocabulary.
const (
	// MaxFields is the most fields a schema may have.
	MaxFields = 64
	// MaxKeySize is the widest packed key, in bytes.
	MaxKeySize = 128
)

// Field declares one field of a schema.
type Field struct {
	// Name identifies the field in errors; must be unique and non-empty.
	Name string
	// Kind is how the field is matched.
	Kind Kind
	// Size is the width in bytes: 1, 2, 4, 8 or 16.
	Size int
}

// FieldSpec is a field placed in a schema.
type FieldSpec struct {
	Field
	// Offset is the field's byte offset in the packed key.
	Offset int
}

// Schema is an ordered, validated list of fields: the runtime shape of a key.
// A Schema is immutable and safe for concurrent use.
type Schema struct {
	fields []FieldSpec
	size   int
}

// ValidSize reports whether n is a supported field width.
func ValidSize(n int) bool { return n == 1 || n == 2 || n == 4 || n == 8 || n == 16 }

// NewSchema validates fields and lays them out end to end in order.
func NewSchema(fields ...Field) (*Schema, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: no fields", ErrBadSchema)
	}
	if len(fields) > MaxFields {
		return nil, fmt.Errorf("acl: %d fields (max %d): %w", len(fields), MaxFields, ErrTooManyFields)
	}
	s := &Schema{fields: make([]FieldSpec, len(fields))}
	seen := make(map[string]bool, len(fields))
	for i, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("%w: field %d has no name", ErrBadSchema, i)
		}
		if seen[f.Name] {
			return nil, &FieldError{f.Name, fmt.Errorf("%w: duplicate name", ErrBadSchema)}
		}
		seen[f.Name] = true
		if f.Kind < KindExact || f.Kind > KindRange {
			return nil, &FieldError{f.Name, fmt.Errorf("%w: bad kind %v", ErrBadSchema, f.Kind)}
		}
		if !ValidSize(f.Size) {
			return nil, &FieldError{f.Name, fmt.Errorf("%w: %d bytes", ErrFieldSize, f.Size)}
		}
		s.fields[i] = FieldSpec{Field: f, Offset: s.size}
		s.size += f.Size
	}
	if s.size > MaxKeySize {
		return nil, fmt.Errorf("acl: key is %d bytes (max %d): %w", s.size, MaxKeySize, ErrKeyTooLarge)
	}
	return s, nil
}

// MustSchema is NewSchema that panics on error; for package-level variables.
func MustSchema(fields ...Field) *Schema {
	s, err := NewSchema(fields...)
	if err != nil {
		panic(err)
	}
	return s
}

// NumFields returns the number of fields.
func (s *Schema) NumFields() int { return len(s.fields) }

// Field returns field i.
func (s *Schema) Field(i int) FieldSpec { return s.fields[i] }

// Fields returns a copy of the fields.
func (s *Schema) Fields() []FieldSpec { return append([]FieldSpec(nil), s.fields...) }

// Size returns the packed key size in bytes.
func (s *Schema) Size() int { return s.size }

// Index returns the position of the named field, or -1.
func (s *Schema) Index(name string) int {
	for i := range s.fields {
		if s.fields[i].Name == name {
			return i
		}
	}
	return -1
}

// String describes the schema, e.g. "proto:exact/1 src:prefix/4".
func (s *Schema) String() string {
	var b strings.Builder
	for i, f := range s.fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%v/%d", f.Name, f.Kind, f.Size)
	}
	return b.String()
}

// Pack writes values (one per field, in order, each of the field's width) into
// dst, which must hold Size() bytes. It is the runtime-shaped counterpart of
// [Codec.Pack].
func (s *Schema) Pack(dst []byte, values ...Value) error {
	if len(values) != len(s.fields) {
		return fmt.Errorf("acl: %d values for %d fields: %w", len(values), len(s.fields), ErrKeyLength)
	}
	if len(dst) < s.size {
		return fmt.Errorf("acl: buffer of %d bytes for a %d-byte key: %w", len(dst), s.size, ErrKeyLength)
	}
	for i, v := range values {
		f := s.fields[i]
		if v.Size() != f.Size {
			return &FieldError{f.Name, fmt.Errorf("%w: %d bytes for a %d-byte field", ErrValueSize, v.Size(), f.Size)}
		}
		v.PutBE(dst[f.Offset : f.Offset+f.Size])
	}
	return nil
}
