"""The `kernel_image` rule: a guest kernel built from config fragments by kbuild."""

load(":providers.bzl", "ARCHES", "KernelInfo")

_IMAGE = {
    "aarch64": "Image",
    "x86_64": "vmlinux",
}

def _kernel_image_impl(ctx):
    arch = ctx.attr.arch
    if arch not in ARCHES:
        fail("kernel_image %s: arch = %r is not supported; use one of %s" % (ctx.label, arch, ARCHES))
    outs = {name: ctx.actions.declare_file("%s/%s" % (ctx.label.name, name)) for name in [_IMAGE[arch], "config", "manifest.json"]}
    if arch == "x86_64":
        outs["bzImage"] = ctx.actions.declare_file("%s/bzImage" % ctx.label.name)
    args = ctx.actions.args()
    args.add(ctx.executable._kbuild)
    args.add("-arch", arch)
    args.add("-source", ctx.file.source)
    args.add_joined("-fragments", ctx.files.fragments, join_with = ",")
    if ctx.files.patches:
        args.add_joined("-patches", ctx.files.patches, join_with = ",")
    else:
        args.add("-patches", "none")
    args.add("-out", outs["config"].dirname)
    ctx.actions.run_shell(
        # The declared inputs are all it reads (besides make, gcc and tar
        # of the execution environment), the outputs all it leaves: without
        # RULES_GO_VM_KERNEL_CACHE (remote workers: --config=remote empties
        # it) kbuild builds in a scratch directory under $TMPDIR, removed
        # after. With it set (tools/setup's bazelrc, for local builds: where
        # it prebuilt the default kernels) kbuild's content-addressed cache
        # (source, patches, fragments, arch, compiler version) is reused and
        # filled, an optimisation of this machine only.
        command = """
if [ -n "${RULES_GO_VM_KERNEL_CACHE:-}" ]; then c=$RULES_GO_VM_KERNEL_CACHE; else
  c=$(mktemp -d) && trap 'rm -rf "$c"' EXIT; fi
"$1" -cache "$c" "${@:2}"
""",
        arguments = [args],
        inputs = ctx.files.fragments + ctx.files.patches + [ctx.file.source],
        tools = [ctx.executable._kbuild],
        outputs = outs.values(),
        mnemonic = "KernelBuild",
        progress_message = "Building %s guest kernel %%{label} (minutes)" % arch,
        # make, gcc and the cross compiler come from the execution environment
        # (the toolchain root's, pinned in tools/pins).
        use_default_shell_env = True,
    )
    return [
        DefaultInfo(files = depset([outs[_IMAGE[arch]]])),
        KernelInfo(
            arch = arch,
            image = outs[_IMAGE[arch]],
            config = outs["config"],
            manifest = outs["manifest.json"],
        ),
    ]

kernel_image = rule(
    implementation = _kernel_image_impl,
    doc = """A guest kernel: the source tarball with `patches` applied, `make tinyconfig` plus config fragments,
every requested option checked after `olddefconfig` (see kernel/README.md). Built with the execution
environment's patch, make and gcc (`aarch64-linux-gnu-gcc` for aarch64).""",
    attrs = {
        "arch": attr.string(
            doc = "Guest architecture: \"x86_64\" (vmlinux with a PVH entry, for QEMU microvm) or \"aarch64\" (Image).",
            mandatory = True,
            values = ARCHES,
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
