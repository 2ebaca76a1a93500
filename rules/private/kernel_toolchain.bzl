"""The kernel build toolchain: what `KernelBuild` actions run (kbuild's tool flags and the action's environment)."""

load(":providers.bzl", "ARCHES", "KernelBuildToolchainInfo")

KERNEL_BUILD_TOOLCHAIN = "@rules_go_vm//rules:kernel_build_toolchain_type"

# Tools besides the compiler, in PATH order: (attribute, kbuild flag, the
# file name the build runs it by, or None when kbuild runs it by its path).
_TOOLS = [
    ("make", "make", None),
    ("tar", "tar", None),
    ("xz", "xz", "xz"),
    ("patch", "patch", None),
    ("host_cc", "host-cc", "gcc"),
    ("flex", "flex", "flex"),
    ("bison", "bison", "bison"),
    ("bc", "bc", "bc"),
    ("perl", "perl", "perl"),
]

def _dirname(path):
    return path.rpartition("/")[0] or "/"

def _kernel_build_toolchain_impl(ctx):
    where = "kernel_build_toolchain %s" % ctx.label
    paths = {}
    for attr, _, run_as in _TOOLS:
        path = getattr(ctx.attr, attr)
        if not path.startswith("/"):
            fail("%s: %s = %r: want an absolute path on the execution platform (e.g. \"/usr/bin/%s\")" %
                 (where, attr, path, run_as or attr))
        if run_as and path.rpartition("/")[2] != run_as:
            fail(("%s: %s = %r: the kernel build runs it as %r from PATH, so the file name must be %r " +
                  "(point at a symlink of that name)") % (where, attr, path, run_as, run_as))
        paths[attr] = path
    for arch, path in ctx.attr.cc.items():
        if arch not in ARCHES:
            fail("%s: cc has the key %r: want guest arches, some of %s" % (where, arch, ARCHES))
        if not path.startswith("/") or not path.endswith("gcc"):
            fail(("%s: cc[%r] = %r: want the absolute path of a gcc whose file name is CROSS_COMPILE + \"gcc\" " +
                  "(e.g. \"/usr/bin/aarch64-linux-gnu-gcc\")") % (where, arch, path))
    if not ctx.attr.cc:
        fail("%s: cc is empty: give the C compiler of at least one guest arch, e.g. {\"x86_64\": \"/usr/bin/gcc\"}" % where)

    # PATH: the compilers' directories, then the other tools', in order,
    # each once: make's recipes find gcc, binutils, flex, ... there, and the
    # shell utilities they use (sh, sed, awk, coreutils) in the same
    # directories of the execution platform.
    dirs = []
    for path in [ctx.attr.cc[a] for a in ARCHES if a in ctx.attr.cc] + [paths[a] for a, _, _ in _TOOLS]:
        d = _dirname(path)
        if d not in dirs:
            dirs.append(d)
    for d in ctx.attr.extra_path:
        if not d.startswith("/"):
            fail("%s: extra_path has %r: want absolute directories" % (where, d))
        if d not in dirs:
            dirs.append(d)
    args = ["--%s=%s" % (flag, paths[attr]) for attr, flag, _ in _TOOLS]
    return [platform_common.ToolchainInfo(
        kernel_build = KernelBuildToolchainInfo(
            cc = dict(ctx.attr.cc),
            env = {"LC_ALL": "C", "PATH": ":".join(dirs)},
            kbuild_args = args,
            **paths
        ),
    )]

kernel_build_toolchain = rule(
    implementation = _kernel_build_toolchain_impl,
    doc = """The programs a `KernelBuild` action runs, on one kind of execution platform (declare it in a
`toolchain()` with that platform's `exec_compatible_with`, of type `@rules_go_vm//rules:kernel_build_toolchain_type`).

The paths are absolute paths of the execution platform's image (for rules_go_vm's own, the toolchain root that
`tools/setup` makes, pinned in `tools/pins`; on a remote worker, its container image or runner environment), like
rules_cc's paths of a system compiler: Bazel does not hash them, so a changed image does not by itself rerun an action;
kbuild's cache key has the compiler's `--version`, and its manifest records every tool's path and version. The action
runs with the environment of `KernelBuildToolchainInfo.env` only (`PATH` made of these tools' directories), and kbuild
checks each tool it is given (`--make`, `--cc`, ...) before it starts.""",
    attrs = {
        "bc": attr.string(doc = "Absolute path of `bc` (file name `bc`).", default = "/usr/bin/bc"),
        "bison": attr.string(doc = "Absolute path of `bison` (file name `bison`).", default = "/usr/bin/bison"),
        "cc": attr.string_dict(
            doc = "Guest arch -> absolute path of the C compiler that builds kernels of that arch; the file name " +
                  "ends in `gcc` and what precedes it is `CROSS_COMPILE` (`\"/usr/bin/aarch64-linux-gnu-gcc\"`), " +
                  "with that prefix's binutils in the same directory. A kernel of an arch without one fails to " +
                  "build, naming this attribute.",
            mandatory = True,
        ),
        "extra_path": attr.string_list(
            doc = "More directories for the action's PATH, after the tools' own (e.g. where `sh` and the shell " +
                  "utilities are, if not next to the tools).",
        ),
        "flex": attr.string(doc = "Absolute path of `flex` (file name `flex`).", default = "/usr/bin/flex"),
        "host_cc": attr.string(
            doc = "Absolute path of the build host's C compiler, HOSTCC (file name `gcc`), with libelf's headers " +
                  "(objtool) where it finds them.",
            default = "/usr/bin/gcc",
        ),
        "make": attr.string(doc = "Absolute path of GNU make.", default = "/usr/bin/make"),
        "patch": attr.string(doc = "Absolute path of GNU patch.", default = "/usr/bin/patch"),
        "perl": attr.string(doc = "Absolute path of `perl` (file name `perl`).", default = "/usr/bin/perl"),
        "tar": attr.string(doc = "Absolute path of GNU tar.", default = "/usr/bin/tar"),
        "xz": attr.string(doc = "Absolute path of `xz` (file name `xz`).", default = "/usr/bin/xz"),
    },
)
