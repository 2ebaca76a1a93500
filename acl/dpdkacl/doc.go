// Package dpdkacl is the DPDK rte_acl classifier backend. It builds only
// with the dpdk build tag and links libdpdk through cgo; without the tag the
// package is empty. With the go command DPDK's flags come from
// "#cgo pkg-config: libdpdk" in pkgconfig.go (go test -tags dpdk ./acl/...;
// DPDK 25.11 needs CGO_CFLAGS_ALLOW=-mrtm). Under Bazel that file is
// excluded and the flags come from //dpdk:libdpdk and //dpdk:defs.bzl; the
// package's go_test sets gotags = ["dpdk"] (see acl/README.md).
//
// # EAL
//
// rte_acl allocates from DPDK's heap, so the EAL must be up. [InitEAL]
// starts it through package dpdk, the process's one EAL, unless it already
// runs (a program that started it with NICs needs no second start; a
// failed first start is returned again).
// Defaults that work on the development machines (no hugepages, no devices,
// run as root or not): --no-huge --no-pci --no-shconf --no-telemetry -l 0
// -m <MemoryMB>; when free hugepages exist and [EALOptions.PreferHugepages]
// is set, --no-huge is dropped. On DPDK 22.11 --in-memory cannot be combined
// with --no-huge (EAL: "Option --legacy-mem is not compatible with
// --in-memory"); 25.11 accepts the pair, but the defaults leave --in-memory
// out so they work on both. They also work in Bazel's test sandbox. The
// calling thread's CPU affinity is restored after rte_eal_init, which pins
// its caller to the main lcore.
//
// # Layout, rules and precedence
//
// A table plans its rte_acl field layout with package layout (first field one
// byte, 4-byte input-index buckets with padding, 8/16-byte fields split into
// 32-bit fields with the prefix length spread across them; ranges on fields
// wider than 4 bytes are refused with key.ErrRangeTooWide). Rules are lowered
// with package key, so errors name the rule index and field. Precedence is
// the reference backend's: highest priority, ties by insertion order. It is
// implemented by giving rte_acl a unique priority per rule, derived from the
// (priority, insertion index) rank, and userdata = insertion index + 1.
//
// # Classify
//
// [Table.ClassifyInput] is the raw batch path: keys already in the planned
// input layout, one cgo call per batch of up to [MaxBatch] keys, userdata
// results. [Typed.LookupBatch] packs typed keys straight into the input layout
// and maps results back to actions. Categories (1, or up to 16 with rte_acl's
// multiple-of-4 result stride handled internally) give one result per
// category.
//
// # Versions
//
// Written against DPDK 22.11 (Debian bookworm), tested on 22.11 and 25.11
// (Debian forky, the Bazel toolchain root) and kept to APIs that are
// unchanged between them: rte_eal_init, rte_acl_create/add_rules/build/
// classify/set_ctx_classify/free, rte_strerror, rte_version ([Version]
// reports the linked one). rte_acl.h in 22.11 no longer has the
// RTE_ACL_IPV4VLAN_* enum, so all layouts are planned here. 8-byte rte_acl
// fields (native in newer DPDK) are not used: 8-byte fields are split like
// 16-byte ones so behaviour is identical on both versions.
//
// Usage:
//
//	if err := dpdkacl.InitEAL(dpdkacl.EALOptions{}); err != nil { ... }
//	tbl, err := dpdkacl.NewTyped[FiveTuple, string](entries, dpdkacl.Options{})
//	defer tbl.Close()
//	n := tbl.LookupBatch(keys, acts, hits)
package dpdkacl
