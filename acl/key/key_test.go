package key_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

type fiveTuple struct {
	Proto key.U8   `acl:"proto,exact"`
	Src   key.IPv4 `acl:"src,prefix"`
	Dst   key.IPv4 `acl:"dst,prefix"`
	SPort key.Port `acl:"sport,range"`
	DPort key.Port `acl:"dport,range"`
	Meta  string   // untagged: ignored
}

type allTypes struct {
	A uint8     `acl:"a,exact"`
	B uint16    `acl:"b,mask"`
	C key.VNI   `acl:"c,exact"`
	D uint64    `acl:"d,prefix"`
	E key.U128  `acl:"e,mask"`
	F key.IPv6  `acl:"f,prefix"`
	G [2]byte   `acl:",range"`
	H key.U32   `acl:"h,range"`
	_ [3]uint64 // padding to make offsets interesting
}

func TestCodecPack(t *testing.T) {
	c := key.MustCodec[fiveTuple]()
	k := fiveTuple{Proto: 6, Src: key.MustV4("10.1.2.3"), Dst: key.MustV4("192.168.0.1"), SPort: 0x1234, DPort: 443, Meta: "x"}
	got := make([]byte, c.Size())
	c.Pack(got, &k)
	want := []byte{6, 10, 1, 2, 3, 192, 168, 0, 1, 0x12, 0x34, 0x01, 0xbb}
	if !bytes.Equal(got, want) {
		t.Fatalf("Pack = %x, want %x", got, want)
	}
	if s := c.Schema().String(); s != "proto:exact/1 src:prefix/4 dst:prefix/4 sport:range/2 dport:range/2" {
		t.Fatalf("schema %s", s)
	}
	// Same bytes through the runtime-shaped path.
	rt := make([]byte, c.Size())
	if err := c.Schema().Pack(rt, k.Proto, k.Src, k.Dst, k.SPort, k.DPort); err != nil || !bytes.Equal(rt, want) {
		t.Fatalf("Schema.Pack = %x, %v", rt, err)
	}
}

func TestCodecAllTypes(t *testing.T) {
	c := key.MustCodec[allTypes]()
	k := allTypes{A: 1, B: 0x0203, C: 0x040506, D: 0x0708090a0b0c0d0e, E: key.U128{Hi: 0x1011121314151617, Lo: 0x18191a1b1c1d1e1f},
		F: key.MustV6("2001:db8::1"), G: [2]byte{0x20, 0x21}, H: 0x22232425}
	got := c.Append(nil, &k)
	var want []byte
	want = append(want, 1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)
	want = append(want, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f)
	f := key.MustV6("2001:db8::1")
	want = append(want, f[:]...)
	want = append(want, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25)
	if !bytes.Equal(got, want) {
		t.Fatalf("Pack = %x\nwant   %x", got, want)
	}
	if c.Schema().Field(6).Name != "G" {
		t.Fatalf("empty tag name should default to the Go name, got %q", c.Schema().Field(6).Name)
	}
	p, err := c.Placed([]int{40, 0, 2, 6, 14, 41, 30, 36}, 64)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	p.Pack(out, &k)
	if out[40] != 1 || out[0] != 2 || out[1] != 3 || out[30] != 0x20 || out[39] != 0x25 {
		t.Fatalf("placed pack %x", out)
	}
}

type badType struct {
	A float64 `acl:"a,exact"`
}
type badKind struct {
	A uint8 `acl:"a,fuzzy"`
}
type badTag struct {
	A uint8 `acl:"a"`
}
type tooBig struct {
	A [16]byte `acl:"a,exact"`
	B [16]byte `acl:"b,exact"`
	C [16]byte `acl:"c,exact"`
	D [16]byte `acl:"d,exact"`
	E [16]byte `acl:"e,exact"`
	F [16]byte `acl:"f,exact"`
	G [16]byte `acl:"g,exact"`
	H [16]byte `acl:"h,exact"`
	I [16]byte `acl:"i,exact"`
}

func TestCodecErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"float field", errOf[badType](), key.ErrFieldSize},
		{"unknown kind", errOf[badKind](), key.ErrBadSchema},
		{"tag without kind", errOf[badTag](), key.ErrBadSchema},
		{"key over size limit", errOf[tooBig](), key.ErrKeyTooLarge},
		{"not a struct", errOf[int](), key.ErrBadSchema},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("err = %v, want %v", tc.err, tc.want)
			}
		})
	}
}

func errOf[K any]() error {
	_, err := key.CodecOf[K]()
	return err
}

func TestSchemaErrors(t *testing.T) {
	many := make([]key.Field, key.MaxFields+1)
	for i := range many {
		many[i] = key.Field{Name: string(rune('A' + i)), Kind: key.KindExact, Size: 1}
	}
	tests := []struct {
		name   string
		fields []key.Field
		want   error
	}{
		{"empty", nil, key.ErrBadSchema},
		{"bad size", []key.Field{{"a", key.KindExact, 3}}, key.ErrFieldSize},
		{"dup name", []key.Field{{"a", key.KindExact, 1}, {"a", key.KindExact, 1}}, key.ErrBadSchema},
		{"no kind", []key.Field{{"a", 0, 1}}, key.ErrBadSchema},
		{"too many fields", many, key.ErrTooManyFields},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := key.NewSchema(tc.fields...); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLowerErrors(t *testing.T) {
	s := key.MustCodec[fiveTuple]().Schema()
	tests := []struct {
		name      string
		rules     []key.Rule
		opts      key.LowerOptions
		want      error
		wantRule  int
		wantField string
	}{
		{"prefix longer than field", []key.Rule{{}, {Fields: []key.Pred{key.Any(), key.Prefix(key.MustV4("10.0.0.0"), 33)}}}, key.LowerOptions{}, key.ErrPrefixTooLong, 1, "src"},
		{"min > max", []key.Rule{{Fields: []key.Pred{{}, {}, {}, {}, key.Range(key.Port(9), key.Port(8))}}}, key.LowerOptions{}, key.ErrRangeInverted, 0, "dport"},
		{"kind mismatch", []key.Rule{{Fields: []key.Pred{key.Prefix(key.U8(6), 8)}}}, key.LowerOptions{}, key.ErrKindMismatch, 0, "proto"},
		{"value size", []key.Rule{{Fields: []key.Pred{key.Exact(key.U16(6))}}}, key.LowerOptions{}, key.ErrValueSize, 0, "proto"},
		{"too many predicates", []key.Rule{{Fields: make([]key.Pred, 6)}}, key.LowerOptions{}, key.ErrTooManyPredicates, 0, ""},
		{"duplicate priority", []key.Rule{{Priority: 1}, {Priority: 2}, {Priority: 1}}, key.LowerOptions{UniquePriorities: true}, key.ErrDuplicatePriority, 2, ""},
		{"category outside table", []key.Rule{{Categories: 4}}, key.LowerOptions{Categories: 2}, key.ErrCategory, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := key.LowerAll(s, tc.rules, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var re *key.RuleError
			if !errors.As(err, &re) || re.Rule != tc.wantRule || re.Field != tc.wantField {
				t.Fatalf("err = %#v, want rule %d field %q", err, tc.wantRule, tc.wantField)
			}
		})
	}
	if _, err := key.LowerAll(s, []key.Rule{{Priority: 1}, {Priority: 1}}, key.LowerOptions{}); err != nil {
		t.Fatalf("duplicate priorities are allowed by default: %v", err)
	}
}

type maskTuple struct {
	Proto key.U8   `acl:"proto,exact"`
	Src   key.IPv4 `acl:"src,prefix"`
	Dst   key.IPv4 `acl:"dst,mask"`
	SPort key.Port `acl:"sport,range"`
	DPort key.Port `acl:"dport,range"`
}

func TestMatches(t *testing.T) {
	c := key.MustCodec[maskTuple]()
	s := c.Schema()
	rule := key.Rule{Fields: []key.Pred{
		key.Exact(key.U8(6)),
		key.Prefix(key.MustV4("10.1.255.255"), 16), // host bits are ignored
		key.Mask(key.MustV4("0.0.0.1"), key.MustV4("0.0.0.1")),
		key.Any(),
		key.Range(key.Port(80), key.Port(90)),
	}}
	tests := []struct {
		name string
		k    maskTuple
		want bool
	}{
		{"hit", maskTuple{6, key.MustV4("10.1.0.9"), key.MustV4("1.1.1.1"), 5, 80}, true},
		{"range max", maskTuple{6, key.MustV4("10.1.0.9"), key.MustV4("1.1.1.3"), 5, 90}, true},
		{"range above", maskTuple{6, key.MustV4("10.1.0.9"), key.MustV4("1.1.1.3"), 5, 91}, false},
		{"proto", maskTuple{17, key.MustV4("10.1.0.9"), key.MustV4("1.1.1.1"), 5, 80}, false},
		{"prefix", maskTuple{6, key.MustV4("10.2.0.9"), key.MustV4("1.1.1.1"), 5, 80}, false},
		{"mask", maskTuple{6, key.MustV4("10.1.0.9"), key.MustV4("1.1.1.2"), 5, 80}, false},
	}
	l, err := s.Lower(0, rule, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := c.Append(nil, &tc.k)
			if got := l.Matches(s, b); got != tc.want {
				t.Fatalf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVNI(t *testing.T) {
	b := key.BytesOf(key.VNI(0xff123456))
	if !bytes.Equal(b, []byte{0, 0x12, 0x34, 0x56}) {
		t.Fatalf("VNI bytes %x", b)
	}
}
