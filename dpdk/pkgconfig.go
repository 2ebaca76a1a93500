//go:build dpdk

package dpdk

// With the go command, DPDK's compiler and linker flags come from
// pkg-config through the directive below; Bazel does not run pkg-config:
// BUILD.bazel excludes this file and takes the same flags from
// //dpdk:libdpdk (cdeps) and //dpdk:defs.bzl (copts). DPDK 25.11's cflags
// include -mrtm, which the go command's cgo flag check refuses: build with
// CGO_CFLAGS_ALLOW=-mrtm there.

// #cgo pkg-config: libdpdk
import "C"
