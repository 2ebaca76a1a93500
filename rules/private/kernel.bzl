"""Guest kernels built by kbuild: `kernel_image` (from config fragments, for one arch) and `guest_kernel` (the
default kernel of the target platform's guest arch plus a user's options, built incrementally from its build tree)."""

load(":kernel_toolchain.bzl", "KERNEL_BUILD_TOOLCHAIN")
load(":providers.bzl", "ARCHES", "KernelInfo")

_IMAGE = {
    "aarch64": "Image",
    "x86_64": "vmlinux",
}

_VM_TOOLCHAIN = "@rules_go_vm//rules:vm_toolchain_type"

# The environment variable, of --action_env (tools/setup's bazelrc sets it),
# that names kbuild's content-addressed cache of this machine: with it set,
# a KernelBuild action gives kbuild `--cache` and the kernels tools/setup
# prebuilt there are hits (and new builds are added); without it (remote
# workers: --config=remote empties it) kbuild builds in a scratch cache
# under $TMPDIR, removed at exit, and its declared outputs are all it
# leaves. The cache key is content (source, patches, fragments, arch, the
# compiler's --version, a base tree's digest), never the tools' paths.
_KERNEL_CACHE_ENV = "RULES_GO_VM_KERNEL_CACHE"

def _declare_outputs(ctx, arch, tree):
    names = [_IMAGE[arch], "config", "manifest.json"]
    if arch == "x86_64":
        names.append("bzImage")
    if tree:
        names.append("tree.tar.gz")
    return {name: ctx.actions.declare_file("%s/%s" % (ctx.label.name, name)) for name in names}

def _kernel_build_toolchain(ctx, arch):
    tc = ctx.toolchains[KERNEL_BUILD_TOOLCHAIN]
    if tc == None:
        fail(("%s: no kernel build toolchain for the execution platform: rules_go_vm registers one for Linux " +
              "x86_64 executors (@rules_go_vm//rules/toolchains:kernel_build); for another, declare a " +
              "kernel_build_toolchain with its tools and register it (README: Kernel options)") % ctx.label)
    kb = tc.kernel_build
    if arch not in kb.cc:
        fail("%s: the kernel build toolchain has no C compiler for %s kernels: add %r to its cc (it has %s)" %
             (ctx.label, arch, arch, sorted(kb.cc.keys())))
    return kb

def _kbuild(ctx, arch, args, inputs, outs, what):
    """Runs kbuild with the kernel build toolchain's tools and environment only."""
    kb = _kernel_build_toolchain(ctx, arch)
    args.add_all(kb.kbuild_args)
    args.add("--cc=" + kb.cc[arch])
    cache = ctx.configuration.default_shell_env.get(_KERNEL_CACHE_ENV, "")
    if cache:
        args.add("--cache", cache)
    else:
        args.add("--scratch-cache")
    ctx.actions.run(
        executable = ctx.executable._kbuild,
        arguments = [args],
        inputs = inputs,
        outputs = outs.values(),
        mnemonic = "KernelBuild",
        progress_message = "Building %s guest kernel %%{label} (%s)" % (arch, what),
        # The toolchain's environment (PATH of its tools' directories), not
        # Bazel's default shell environment.
        env = kb.env,
    )

def _kernel_info(arch, outs, source):
    return KernelInfo(
        arch = arch,
        image = outs[_IMAGE[arch]],
        config = outs["config"],
        manifest = outs["manifest.json"],
        build_tree = outs.get("tree.tar.gz"),
        source = source,
    )

def _kernel_image_impl(ctx):
    arch = ctx.attr.arch
    if arch not in ARCHES:
        fail("kernel_image %s: arch = %r is not supported; use one of %s" % (ctx.label, arch, ARCHES))
    outs = _declare_outputs(ctx, arch, ctx.attr.build_tree)
    args = ctx.actions.args()
    args.add("-arch", arch)
    args.add("-source", ctx.file.source)
    args.add_joined("-fragments", ctx.files.fragments, join_with = ",")
    if ctx.files.patches:
        args.add_joined("-patches", ctx.files.patches, join_with = ",")
    else:
        args.add("-patches", "none")
    if ctx.attr.build_tree:
        args.add("-tree")
    args.add("-out", outs["config"].dirname)
    _kbuild(ctx, arch, args, ctx.files.fragments + ctx.files.patches + [ctx.file.source], outs, "a full build: minutes")
    return [
        DefaultInfo(files = depset([outs[_IMAGE[arch]]])),
        _kernel_info(arch, outs, ctx.file.source),
        # `filegroup(output_group = "build_tree")`: the tree as a file of its
        # own, e.g. to hand to another build as a declared input.
        OutputGroupInfo(build_tree = depset([outs["tree.tar.gz"]] if ctx.attr.build_tree else [])),
    ]

kernel_image = rule(
    implementation = _kernel_image_impl,
    toolchains = [config_common.toolchain_type(KERNEL_BUILD_TOOLCHAIN, mandatory = False)],
    doc = """A guest kernel for one arch: the source tarball with `patches` applied, `make tinyconfig` plus config
fragments, every requested option checked after `olddefconfig` (see kernel/README.md). A full build (tens of
minutes on 2 cores): to add options to rules_go_vm's default kernel, for every guest arch, use `guest_kernel`.
Built by kbuild with the tools of the kernel build toolchain (`kernel_build_toolchain`: tar, xz, patch, make, gcc
or `aarch64-linux-gnu-gcc` with binutils, flex, bison, bc and perl) and that toolchain's environment only.""",
    attrs = {
        "arch": attr.string(
            doc = "Guest architecture: \"x86_64\" (vmlinux with a PVH entry, for QEMU microvm) or \"aarch64\" (Image).",
            mandatory = True,
            values = ARCHES,
        ),
        "build_tree": attr.bool(
            doc = "Also output the build tree (`<name>/tree.tar.gz`: what the build added to the extracted source: " +
                  "objects, generated files, .config, the patched sources), which `guest_kernel` builds on " +
                  "incrementally; KernelInfo.build_tree, and the output group `build_tree`. rules_go_vm's default " +
                  "kernels set it.",
            default = False,
        ),
        "fragments": attr.label_list(
            doc = "Config fragment files (`CONFIG_X=y` lines), merged in order over tinyconfig. A fragment " +
                  "whose first lines say `# arch: x86_64` applies to that arch only.",
            allow_files = [".config"],
            default = ["@rules_go_vm//kernel:fragments"],
        ),
        "patches": attr.label_list(
            doc = "Unified diffs applied to the source tree with `patch -p1`, in the order given, before it is " +
                  "configured; a patch that does not apply fails the build naming it. `[]` builds the " +
                  "unpatched source. The default is rules_go_vm's own (kernel/patches/README.md).",
            allow_files = [".patch"],
            default = ["@rules_go_vm//kernel:patches"],
        ),
        "source": attr.label(
            doc = "The kernel source tarball (e.g. Debian's linux-source-X.Y.tar.xz).",
            allow_single_file = [".tar.xz", ".tar.gz", ".tar"],
            default = "@rules_go_vm_kernel_source//:tarball",
        ),
        "_kbuild": attr.label(
            default = "@rules_go_vm//kernel/cmd/kbuild",
            executable = True,
            cfg = "exec",
        ),
    },
)

# The option lines `config` accepts: what kernel/kconfig parses, minus `=m`
# (the guest kernels have no modules).
_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"

def _is_name(s):
    if not s:
        return False
    for c in s.elems():
        if c not in _NAME_CHARS:
            return False
    return True

def _is_value(v):
    if v in ("y", "n"):
        return True
    if len(v) >= 2 and v.startswith("\"") and v.endswith("\""):
        return True
    digits = v[1:] if v.startswith("-") else v
    if digits.startswith("0x") or digits.startswith("0X"):
        digits = digits[2:]
        return digits != "" and all([c in "0123456789abcdefABCDEF" for c in digits.elems()])
    return digits.isdigit()

def config_line_error(line):
    """Why a `guest_kernel.config` entry is malformed, or None.

    Args:
      line: the entry.

    Returns:
      A message naming the fix, or None when the line is well formed.
    """
    if line.startswith("#"):
        if line.startswith("# CONFIG_") and line.endswith(" is not set") and _is_name(line[len("# CONFIG_"):-len(" is not set")]):
            return None
        return "want CONFIG_NAME=VALUE or \"# CONFIG_NAME is not set\" (an `# arch:` line belongs in a fragment file: use `fragments`)"
    if not line.startswith("CONFIG_") or "=" not in line:
        return "want CONFIG_NAME=VALUE (e.g. \"CONFIG_VETH=y\") or \"# CONFIG_NAME is not set\""
    name, value = line[len("CONFIG_"):].split("=", 1)
    if not _is_name(name):
        return "the option name %r has characters other than letters, digits and _" % name
    if value == "m":
        return "=m: rules_go_vm's guest kernels have no loadable modules (CONFIG_MODULES is off): use =y"
    if not _is_value(value):
        return "the value %r must be y, n, a number or a double-quoted string" % value
    return None

def _guest_kernel_impl(ctx):
    tc = ctx.toolchains[_VM_TOOLCHAIN]
    if tc == None:
        fail("guest_kernel %s: the target platform's CPU has no guest kernel: rules_go_vm boots x86_64 and aarch64 guests; " % ctx.label +
             "build with --platforms=@rules_go_vm//:x86_64 or --platforms=@rules_go_vm//:aarch64")
    arch = tc.vm.arch
    base = tc.vm.kernel
    tree = getattr(base, "build_tree", None)
    source = getattr(base, "source", None)
    if tree == None or source == None:
        fail(("guest_kernel %s: the %s VM toolchain's kernel has no build tree to build on: it needs a kernel_image " +
              "with build_tree = True (rules_go_vm's default kernels have one), not a prebuilt image") % (ctx.label, arch))
    for i, line in enumerate(ctx.attr.config):
        why = config_line_error(line.strip())
        if why:
            fail("guest_kernel %s: config[%d] = %r: %s" % (ctx.label, i, line, why))
    extras = []
    if ctx.attr.config:
        frag = ctx.actions.declare_file("%s/config_attribute.config" % ctx.label.name)

        # No label in the file: the same options give the same kbuild cache
        # key wherever they are declared.
        ctx.actions.write(frag, "# guest_kernel config attribute\n" + "\n".join([c.strip() for c in ctx.attr.config]) + "\n")
        extras.append(frag)
    extras.extend(ctx.files.fragments)

    outs = _declare_outputs(ctx, arch, False)
    args = ctx.actions.args()
    args.add("-arch", arch)
    args.add("-source", source)
    args.add("-base-tree", tree)
    if extras:
        args.add_joined("-fragments", extras, join_with = ",")
    args.add("-out", outs["config"].dirname)
    _kbuild(ctx, arch, args, extras + [tree, source], outs, "incremental, on the default kernel's build tree")
    return [
        DefaultInfo(files = depset([outs[_IMAGE[arch]]])),
        _kernel_info(arch, outs, source),
    ]

guest_kernel = rule(
    implementation = _guest_kernel_impl,
    # Optional, so that an unsupported target CPU or execution platform gets
    # our message.
    toolchains = [
        config_common.toolchain_type(_VM_TOOLCHAIN, mandatory = False),
        config_common.toolchain_type(KERNEL_BUILD_TOOLCHAIN, mandatory = False),
    ],
    doc = """rules_go_vm's default guest kernel for the target platform's guest arch, plus these options: one label
for every arch (`go_vm_test(kernel = ":my_kernel")`, with or without `--platforms=@rules_go_vm//:aarch64`).

```starlark
guest_kernel(
    name = "netns_kernel",
    config = ["CONFIG_NET_SCH_NETEM=y", "CONFIG_VETH=y", "CONFIG_NET_NS=y"],
)
```

It is built incrementally on the default kernel's build tree (the VM toolchain's `kernel_image`, which has
`build_tree = True`): kbuild extracts the source and the tree, appends the options to the tree's .config, runs
`olddefconfig`, checks the default kernel's requested options and these (an option Kconfig dropped fails the build
naming it, its line and its final value) and runs make, which compiles only what the options touch: minutes, not a
full build (kernel/README.md has the figures). The kernel build toolchain provides what it runs, as for
`kernel_image`.""",
    attrs = {
        "config": attr.string_list(
            doc = "Options to add, one .config line each: `\"CONFIG_NAME=y\"`, a number, a double-quoted string, or " +
                  "`\"# CONFIG_NAME is not set\"` to turn one off. No `=m` (no modules). They apply to every arch: " +
                  "an option of one arch only goes in a `fragments` file with an `# arch: x86_64` (or aarch64) line.",
        ),
        "fragments": attr.label_list(
            doc = "Config fragment files (kernel/kconfig's format: option lines, `# arch: ...` to limit one to an " +
                  "arch), applied after `config`, in order; a later value wins.",
            allow_files = [".config"],
        ),
        "_kbuild": attr.label(
            default = "@rules_go_vm//kernel/cmd/kbuild",
            executable = True,
            cfg = "exec",
        ),
    },
)
