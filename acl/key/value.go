package key

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Value is a fixed-size field value that writes itself big-endian.
type Value interface {
	// Size is the value's width in bytes.
	Size() int
	// PutBE writes the value big-endian into dst[:Size()].
	PutBE(dst []byte)
}

// U8 is an unsigned 8-bit field value.
type U8 uint8

// U16 is an unsigned 16-bit field value.
type U16 uint16

// U32 is an unsigned 32-bit field value.
type U32 uint32

// U64 is an unsigned 64-bit field value.
type U64 uint64

// U128 is an unsigned 128-bit field value.
type U128 struct {
	// Hi holds the most significant 64 bits.
	Hi uint64
	// Lo holds the least significant 64 bits.
	Lo uint64
}

// IPv4 is an IPv4 address in network byte order.
type IPv4 [4]byte

// IPv6 is an IPv6 address in network byte order.
type IPv6 [16]byte

// Port is a TCP/UDP port.
type Port uint16

// VNI is a 24-bit VXLAN network identifier carried in a 4-byte field whose
// high byte is zero. Values above [MaxVNI] are truncated by PutBE.
type VNI uint32

// MaxVNI is the largest VNI.
const MaxVNI = 1<<24 - 1

// Size implements [Value].
func (U8) Size() int { return 1 }

// PutBE implements [Value].
func (v U8) PutBE(dst []byte) { dst[0] = byte(v) }

// Size implements [Value].
func (U16) Size() int { return 2 }

// PutBE implements [Value].
func (v U16) PutBE(dst []byte) { binary.BigEndian.PutUint16(dst, uint16(v)) }

// Size implements [Value].
func (U32) Size() int { return 4 }

// PutBE implements [Value].
func (v U32) PutBE(dst []byte) { binary.BigEndian.PutUint32(dst, uint32(v)) }

// Size implements [Value].
func (U64) Size() int { return 8 }

// PutBE implements [Value].
func (v U64) PutBE(dst []byte) { binary.BigEndian.PutUint64(dst, uint64(v)) }

// Size implements [Value].
func (U128) Size() int { return 16 }

// PutBE implements [Value].
func (v U128) PutBE(dst []byte) {
	binary.BigEndian.PutUint64(dst, v.Hi)
	binary.BigEndian.PutUint64(dst[8:], v.Lo)
}

// Size implements [Value].
func (IPv4) Size() int { return 4 }

// PutBE implements [Value].
func (v IPv4) PutBE(dst []byte) { copy(dst[:4], v[:]) }

// Size implements [Value].
func (IPv6) Size() int { return 16 }

// PutBE implements [Value].
func (v IPv6) PutBE(dst []byte) { copy(dst[:16], v[:]) }

// Size implements [Value].
func (Port) Size() int { return 2 }

// PutBE implements [Value].
func (v Port) PutBE(dst []byte) { binary.BigEndian.PutUint16(dst, uint16(v)) }

// Size implements [Value].
func (VNI) Size() int { return 4 }

// PutBE implements [Value].
func (v VNI) PutBE(dst []byte) { binary.BigEndian.PutUint32(dst, uint32(v)&MaxVNI) }

// Bytes is a raw big-endian value of any supported width; it lets
// runtime-shaped code pass field bytes through the [Value] API.
type Bytes []byte

// Size implements [Value].
func (b Bytes) Size() int { return len(b) }

// PutBE implements [Value].
func (b Bytes) PutBE(dst []byte) { copy(dst[:len(b)], b) }

// AddrV4 converts a netip.Addr holding an IPv4 (or IPv4-mapped) address.
func AddrV4(a netip.Addr) (IPv4, error) {
	a = a.Unmap()
	if !a.Is4() {
		return IPv4{}, fmt.Errorf("key: %v is not an IPv4 address", a)
	}
	return IPv4(a.As4()), nil
}

// AddrV6 converts a netip.Addr to its 16-byte form (IPv4 becomes v4-mapped).
func AddrV6(a netip.Addr) IPv6 { return IPv6(a.As16()) }

// MustV4 parses a dotted-quad IPv4 address and panics on error; for tests,
// examples and constants.
func MustV4(s string) IPv4 {
	v, err := AddrV4(netip.MustParseAddr(s))
	if err != nil {
		panic(err)
	}
	return v
}

// MustV6 parses an IPv6 address and panics on error; for tests, examples and
// constants.
func MustV6(s string) IPv6 { return AddrV6(netip.MustParseAddr(s)) }

// BytesOf returns v's big-endian bytes.
func BytesOf(v Value) []byte {
	b := make([]byte, v.Size())
	v.PutBE(b)
	return b
}
