"""A guest kernel that was built elsewhere, as a user may bring their own (KernelInfo is public)."""

load("@rules_go_vm//rules:defs.bzl", "KernelInfo")

def _prebuilt_kernel_impl(ctx):
    return [
        DefaultInfo(files = depset([ctx.file.image])),
        KernelInfo(arch = ctx.attr.arch, image = ctx.file.image, config = None, manifest = None),
    ]

prebuilt_kernel = rule(
    implementation = _prebuilt_kernel_impl,
    doc = "A kernel image file (a declared input, no action) for guests of `arch`.",
    attrs = {
        "arch": attr.string(mandatory = True),
        "image": attr.label(mandatory = True, allow_single_file = True),
    },
)
