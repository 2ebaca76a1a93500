"""The VM toolchain: the default kernel and base layer for guests of one architecture."""

load(":providers.bzl", "GuestLayerInfo", "KernelInfo", "VmToolchainInfo")

def _vm_toolchain_impl(ctx):
    kernel = ctx.attr.kernel[KernelInfo]
    base = ctx.attr.base_layer[GuestLayerInfo]
    if kernel.arch != base.arch:
        fail("vm_toolchain %s: kernel is %s but base_layer is %s; both must be for the same arch" % (ctx.label, kernel.arch, base.arch))
    return [platform_common.ToolchainInfo(
        vm = VmToolchainInfo(arch = kernel.arch, kernel = kernel, base_layer = base),
    )]

vm_toolchain = rule(
    implementation = _vm_toolchain_impl,
    doc = "Declares the default guest kernel and base layer for one guest architecture (see rules/toolchains).",
    attrs = {
        "base_layer": attr.label(
            doc = "A `guest_base_layer` for the same arch.",
            mandatory = True,
            providers = [GuestLayerInfo],
        ),
        "kernel": attr.label(
            doc = "A `kernel_image` (or any target providing KernelInfo) for the guest arch.",
            mandatory = True,
            providers = [KernelInfo],
        ),
    },
)
