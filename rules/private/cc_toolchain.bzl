"""A C toolchain for building cgo guest binaries of another CPU (the root's cross GCC).

Bazel's autodetected C toolchain targets the machine Bazel runs on. A cgo test
for an aarch64 guest (e.g. one that uses //dpdk) needs a compiler for aarch64:
`cross_cc_toolchain` describes the toolchain root's `aarch64-linux-gnu-gcc`
(Debian's gcc-aarch64-linux-gnu with libc6-dev-arm64-cross, see tools/pins).
The tools are named by absolute path; they are part of the toolchain root that
local and remote executors share (see README, "Remote execution").
"""

load("@bazel_tools//tools/build_defs/cc:action_names.bzl", "ACTION_NAMES")
load("@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl", "feature", "flag_group", "flag_set", "tool_path")

_COMPILE = [
    ACTION_NAMES.assemble,
    ACTION_NAMES.preprocess_assemble,
    ACTION_NAMES.c_compile,
    ACTION_NAMES.cpp_compile,
]

_LINK = [
    ACTION_NAMES.cpp_link_executable,
    ACTION_NAMES.cpp_link_dynamic_library,
    ACTION_NAMES.cpp_link_nodeps_dynamic_library,
]

def _flags(name, actions, flags):
    return feature(
        name = name,
        enabled = True,
        flag_sets = [flag_set(actions = actions, flag_groups = [flag_group(flags = flags)])],
    )

def _cross_cc_toolchain_config_impl(ctx):
    p = ctx.attr.prefix
    tools = ["ar", "cpp", "gcc", "gcov", "ld", "nm", "objcopy", "objdump", "strip"]

    # rules_cc is not in this offline module graph; Bazel 7's native
    # cc_common is what it would load.
    # buildifier: disable=native-cc-common
    return cc_common.create_cc_toolchain_config_info(
        ctx = ctx,
        toolchain_identifier = "rules_go_vm_" + ctx.attr.cpu,
        host_system_name = "x86_64-unknown-linux-gnu",
        target_system_name = ctx.attr.triplet,
        target_cpu = ctx.attr.cpu,
        target_libc = "glibc",
        compiler = "gcc",
        abi_version = "gcc",
        abi_libc_version = "glibc",
        cxx_builtin_include_directories = ctx.attr.builtin_include_directories,
        tool_paths = [tool_path(name = t, path = p + t) for t in tools],
        features = [
            feature(name = "supports_pic", enabled = True),
            _flags("default_compile_flags", _COMPILE, ["-fstack-protector", "-Wall", "-fno-omit-frame-pointer"]),
            _flags("default_link_flags", _LINK, ["-lm"]),
        ],
    )

cross_cc_toolchain_config = rule(
    implementation = _cross_cc_toolchain_config_impl,
    doc = "The CcToolchainConfigInfo of a GCC cross compiler named `<prefix><tool>` (e.g. /usr/bin/aarch64-linux-gnu-gcc).",
    attrs = {
        "builtin_include_directories": attr.string_list(
            doc = "The compiler's own include directories (`<prefix>gcc -E -v -x c /dev/null` lists them).",
            mandatory = True,
        ),
        "cpu": attr.string(doc = "The target CPU, as in @platforms//cpu (e.g. \"aarch64\").", mandatory = True),
        "prefix": attr.string(doc = "Path prefix of the tools, e.g. \"/usr/bin/aarch64-linux-gnu-\".", mandatory = True),
        "triplet": attr.string(doc = "The GNU target triplet, e.g. \"aarch64-linux-gnu\".", mandatory = True),
    },
    provides = [CcToolchainConfigInfo],
)
