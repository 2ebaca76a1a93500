// Package dpdk is a thin cgo binding of DPDK for Go code and its tests:
// start the EAL from Go arguments ([InitEAL], once per process), make a
// packet mempool ([NewPktPool]), open an ethdev port with one RX and one TX
// queue ([OpenPort]), send and receive bursts of raw frames
// ([Port.TxBurst], [Port.RxBurst]), read its counters ([Port.Stats]) and
// close it all again. Errors wrap this package's sentinels and carry
// rte_errno's text ([Error]).
//
// It builds only with the dpdk build tag (without it the package is empty,
// so `go test ./...` works on machines without DPDK). With the go command,
// DPDK's flags come from "#cgo pkg-config: libdpdk" in pkgconfig.go (DPDK
// 25.11 needs CGO_CFLAGS_ALLOW=-mrtm); under Bazel that file is excluded and
// the flags come from //dpdk:libdpdk (cdeps) and //dpdk:defs.bzl (copts),
// the pattern of acl/dpdkacl, which starts its EAL with this package.
//
// Usage:
//
//	if err := dpdk.InitEAL(dpdk.EALOptions{VDevs: []string{"net_ring0"}}); err != nil { ... }
//	pool, err := dpdk.NewPktPool("pkts", 4095, 0)
//	port, err := dpdk.OpenPort(0, pool, dpdk.PortConfig{})
//	sent, err := port.TxBurst(frames)
//	got, err := port.RxBurst(32)
//	st, err := port.Stats()
//	port.Close(); pool.Close()
package dpdk
