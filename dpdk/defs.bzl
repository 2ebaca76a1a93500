"""DPDK's compiler flags for cgo code, per target CPU.

Load these in a BUILD file of cgo code that includes DPDK headers:

    load("@rules_go_vm//dpdk:defs.bzl", "DPDK_COPTS")

    go_library(
        ...
        cdeps = ["@rules_go_vm//dpdk:libdpdk"],  # keep
        copts = DPDK_COPTS,  # keep
    )

Code that only imports the Go package `//dpdk` needs neither.
"""

load("@rules_go_vm_dpdk//:defs.bzl", _COPTS = "COPTS")

# The Cflags Debian's DPDK was built with, minus include directories (those
# reach dependents through //dpdk:libdpdk): a select() on the target CPU,
# on DPDK 25.11 `-include rte_config.h -march=corei7 -mrtm` (x86_64) and
# `-include rte_config.h -march=armv8-a+crc -moutline-atomics` (aarch64).
DPDK_COPTS = _COPTS
