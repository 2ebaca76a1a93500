"""DPDK's compiler and linker flags as pkg-config reported them at fetch time.

Load these in a BUILD file of cgo code that includes DPDK headers:

    load("//dpdk:defs.bzl", "DPDK_COPTS")

    go_library(
        ...
        cdeps = ["//dpdk:libdpdk"],  # keep
        copts = DPDK_COPTS,  # keep
    )
"""

load(
    "@dpdk_system//:defs.bzl",
    _COPTS = "COPTS",
    _INCLUDE_DIRS = "INCLUDE_DIRS",
    _LINKOPTS = "LINKOPTS",
    _VERSION = "VERSION",
)

# pkg-config --cflags libdpdk without its include directories (those reach
# dependents through //dpdk:libdpdk): on DPDK 25.11 `-include rte_config.h
# -march=corei7 -mrtm`.
DPDK_COPTS = _COPTS

# pkg-config --libs libdpdk (//dpdk:libdpdk's linkopts).
DPDK_LINKOPTS = _LINKOPTS

# The non-system include directories pkg-config names, as absolute paths.
DPDK_INCLUDE_DIRS = _INCLUDE_DIRS

# pkg-config --modversion libdpdk, e.g. "25.11.4" (None when DPDK is missing
# and DPDK_OPTIONAL is set).
DPDK_VERSION = _VERSION
