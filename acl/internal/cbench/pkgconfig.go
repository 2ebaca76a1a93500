//go:build dpdk

package cbench

// With the go command, DPDK's compiler and linker flags come from pkg-config
// through the directive below; it is in a file of its own because Bazel does
// not run pkg-config: BUILD.bazel excludes this file (gazelle:exclude) and
// takes the same flags from //dpdk:libdpdk (cdeps) and //dpdk:defs.bzl
// (copts). DPDK 25.11's pkg-config cflags include -mrtm, which the go
// command's cgo flag check refuses: build with CGO_CFLAGS_ALLOW=-mrtm there
// (see acl/README.md).

// #cgo pkg-config: libdpdk
import "C"
