"""The VM toolchain: the default kernel and base layer for guests of one architecture."""

load(":providers.bzl", "GuestLayerInfo", "GuestTemplateInfo", "KernelInfo", "VmToolchainInfo")

def _vm_toolchain_impl(ctx):
    kernel = ctx.attr.kernel[KernelInfo]
    base = ctx.attr.base_layer[GuestLayerInfo]
    if kernel.arch != base.arch:
        fail("vm_toolchain %s: kernel is %s but base_layer is %s; both must be for the same arch" % (ctx.label, kernel.arch, base.arch))
    template = ctx.attr.template[GuestTemplateInfo] if ctx.attr.template else None
    if template and template.arch != kernel.arch:
        fail("vm_toolchain %s: template is for %s but kernel is for %s; both must be for the same arch" % (ctx.label, template.arch, kernel.arch))
    return [platform_common.ToolchainInfo(
        vm = VmToolchainInfo(arch = kernel.arch, kernel = kernel, base_layer = base, template = template),
    )]

vm_toolchain = rule(
    implementation = _vm_toolchain_impl,
    doc = "Declares the default guest kernel, base layer and snapshot-start template for one guest architecture (see rules/toolchains).",
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
        "template": attr.label(
            doc = "A `guest_template` of `kernel` and `base_layer`: tests of the default VM shape restore it " +
                  "(`start = \"auto\"` or `\"snapshot\"`). None: only `start = \"snapshot\"` tests get templates, one each.",
            providers = [GuestTemplateInfo],
        ),
    },
)
