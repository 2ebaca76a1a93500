"""A guest kernel that was built elsewhere, as a user may bring their own (KernelInfo is public)."""

load("@rules_go_vm//rules:defs.bzl", "KernelInfo")

def _prebuilt_kernel_impl(ctx):
    if (ctx.file.build_tree == None) != (ctx.file.source == None):
        fail("prebuilt_kernel %s: give build_tree and source together (guest_kernel needs both), or neither" % ctx.label)
    return [
        DefaultInfo(files = depset([ctx.file.image])),
        KernelInfo(
            arch = ctx.attr.arch,
            image = ctx.file.image,
            config = None,
            manifest = None,
            build_tree = ctx.file.build_tree,
            source = ctx.file.source,
        ),
    ]

prebuilt_kernel = rule(
    implementation = _prebuilt_kernel_impl,
    doc = "A kernel image file (a declared input, no action) for guests of `arch`, with the build tree and source " +
          "that `guest_kernel` builds a user's options on.",
    attrs = {
        "arch": attr.string(doc = "The guest arch: \"x86_64\" or \"aarch64\".", mandatory = True),
        "build_tree": attr.label(
            doc = "The kernel's build tree (`kernel_image`'s `build_tree` output group), or None.",
            allow_single_file = [".tar.gz"],
        ),
        "image": attr.label(doc = "The image QEMU boots.", mandatory = True, allow_single_file = True),
        "source": attr.label(
            doc = "The source tarball the kernel and its tree were built from, or None.",
            allow_single_file = [".tar.xz", ".tar.gz", ".tar"],
        ),
    },
)
