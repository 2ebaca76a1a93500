package key_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// FuzzPack checks the compiled struct packer against the runtime-shaped
// Value packer and against a direct big-endian encoding.
func FuzzPack(f *testing.F) {
	f.Add(uint8(6), uint16(80), uint32(0x0a000001), uint64(1), []byte("0123456789abcdef"), uint32(5))
	f.Add(uint8(0), uint16(0xffff), uint32(0), uint64(1<<63), []byte{}, uint32(1<<24))
	c := key.MustCodec[allTypes]()
	f.Fuzz(func(t *testing.T, a uint8, b uint16, h uint32, d uint64, raw []byte, vni uint32) {
		var v6 key.IPv6
		copy(v6[:], raw)
		k := allTypes{A: a, B: b, C: key.VNI(vni & key.MaxVNI), D: d, E: key.U128{Hi: d, Lo: ^d}, F: v6, G: [2]byte{byte(b >> 8), byte(b)}, H: key.U32(h)}
		got := c.Append(nil, &k)
		rt := make([]byte, c.Schema().Size())
		if err := c.Schema().Pack(rt, key.U8(a), key.U16(b), k.C, key.U64(d), k.E, v6, key.Bytes(k.G[:]), key.U32(h)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, rt) {
			t.Fatalf("codec %x != schema %x", got, rt)
		}
		if got[0] != a || binary.BigEndian.Uint16(got[1:]) != b || binary.BigEndian.Uint64(got[7:]) != d || binary.BigEndian.Uint32(got[len(got)-4:]) != h {
			t.Fatalf("bad big-endian layout %x", got)
		}
		if binary.BigEndian.Uint32(got[3:]) != vni&key.MaxVNI {
			t.Fatalf("vni %x", got[3:7])
		}
	})
}
