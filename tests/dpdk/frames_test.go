//go:build dpdk

package dpdk

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// FiveTuple is the classification key of a frame (as acl's examples).
type FiveTuple struct {
	Proto key.U8   `acl:"proto,exact"`
	Src   key.IPv4 `acl:"src,prefix"`
	Dst   key.IPv4 `acl:"dst,prefix"`
	SPort key.Port `acl:"sport,range"`
	DPort key.Port `acl:"dport,range"`
}

const (
	protoTCP = 6
	protoUDP = 17
	// headerLen is Ethernet (14) + IPv4 (20) + TCP/UDP ports (4 of the
	// L4 header, padded to 8).
	headerLen = 14 + 20 + 8
)

// tupleOf is frame i's 5-tuple: distinct for every i < 2^20.
func tupleOf(i int) FiveTuple {
	proto := key.U8(protoUDP)
	if i%3 == 0 {
		proto = protoTCP
	}
	return FiveTuple{
		Proto: proto,
		Src:   key.IPv4{10, byte(i >> 16), byte(i >> 8), byte(i)},
		Dst:   key.IPv4{192, 0, 2, byte(i % 7)},
		SPort: key.Port(1024 + i%50000),
		DPort: key.Port([]int{53, 80, 443, 4789, 8080}[i%5]),
	}
}

// makeFrame is frame i from src to dst: Ethernet, IPv4 with tupleOf(i),
// and a payload numbering it, 64 to 127 bytes long.
func makeFrame(i int, src, dst net.HardwareAddr) []byte {
	tu := tupleOf(i)
	f := make([]byte, 64+i%64)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(f)-14))
	ip[8] = 64
	ip[9] = byte(tu.Proto)
	copy(ip[12:16], tu.Src[:])
	copy(ip[16:20], tu.Dst[:])
	binary.BigEndian.PutUint16(f[34:36], uint16(tu.SPort))
	binary.BigEndian.PutUint16(f[36:38], uint16(tu.DPort))
	binary.BigEndian.PutUint32(f[headerLen:], uint32(i))
	return f
}

// parseFrame returns the index and 5-tuple of a frame made by makeFrame.
func parseFrame(f []byte) (int, FiveTuple, error) {
	if len(f) < headerLen+4 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return 0, FiveTuple{}, fmt.Errorf("not one of our frames (%d bytes)", len(f))
	}
	var tu FiveTuple
	tu.Proto = key.U8(f[23])
	copy(tu.Src[:], f[26:30])
	copy(tu.Dst[:], f[30:34])
	tu.SPort = key.Port(binary.BigEndian.Uint16(f[34:36]))
	tu.DPort = key.Port(binary.BigEndian.Uint16(f[36:38]))
	return int(binary.BigEndian.Uint32(f[headerLen:])), tu, nil
}

// rules classify the frames into several actions (so that agreeing on
// them means something): by protocol, source prefix and port range.
func rules() []key.Entry[string] {
	r := func(prio int32, act string, p ...key.Pred) key.Entry[string] {
		return key.Entry[string]{Rule: key.Rule{Priority: prio, Fields: p}, Action: act}
	}
	return []key.Entry[string]{
		r(40, "tcp-web", key.Exact(key.U8(protoTCP)), key.Any(), key.Any(), key.Any(), key.Range(key.Port(80), key.Port(443))),
		r(30, "vxlan", key.Exact(key.U8(protoUDP)), key.Any(), key.Any(), key.Any(), key.Range(key.Port(4789), key.Port(4789))),
		r(20, "low-src", key.Any(), key.Prefix(key.MustV4("10.0.0.0"), 20), key.Any(), key.Range(key.Port(1024), key.Port(3000)), key.Any()),
		r(10, "dst-odd", key.Any(), key.Any(), key.Prefix(key.MustV4("192.0.2.1"), 32), key.Any(), key.Any()),
		r(1, "default", key.Any(), key.Any(), key.Any(), key.Any(), key.Any()),
	}
}
