"""The `guest_base_layer` rule: the initramfs layer every guest of one architecture shares."""

load(":providers.bzl", "ARCHES", "GuestLayerInfo")

def _guest_platform_impl(_settings, attr):
    # The init runs in the guest: build it for the layer's arch, whatever
    # platform the layer itself is configured for.
    return {"//command_line_option:platforms": str(Label("//:" + attr.arch))}

_guest_platform = transition(
    implementation = _guest_platform_impl,
    inputs = [],
    outputs = ["//command_line_option:platforms"],
)

def _guest_base_layer_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".cpio")
    args = ctx.actions.args()
    args.add("base")
    init = ctx.attr.init[0][DefaultInfo].files_to_run.executable
    args.add("-init", init)
    inputs = [init]
    if ctx.file.busybox:
        args.add("-busybox", ctx.file.busybox)
        inputs.append(ctx.file.busybox)
    args.add("-o", out)
    ctx.actions.run(
        executable = ctx.executable._mklayer,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "GuestBaseLayer",
        progress_message = "Writing %s base initramfs layer %%{label}" % ctx.attr.arch,
    )
    return [
        DefaultInfo(files = depset([out])),
        GuestLayerInfo(arch = ctx.attr.arch, archive = out),
    ]

guest_base_layer = rule(
    implementation = _guest_base_layer_impl,
    doc = """The base initramfs layer of a guest: the guest init as /init plus the directories and device
nodes it needs, and a static busybox at /bin/busybox with the applets tests commonly exec (sh, sleep, cat,
ip, ...; runner.GuestApplets) linked to it in /bin, on the test's PATH. Built once per architecture and shared
by every test of that architecture.""",
    attrs = {
        "arch": attr.string(
            doc = "Guest architecture the init is built for: \"x86_64\" or \"aarch64\".",
            mandatory = True,
            values = ARCHES,
        ),
        "busybox": attr.label(
            doc = "A static busybox for the layer's arch (default toolchains: the root's busybox-static); none: no userland.",
            allow_single_file = True,
        ),
        "init": attr.label(
            doc = "The guest init: a static Linux executable for the guest architecture " +
                  "(default toolchains use //guestinit/cmd/init, built pure and static).",
            mandatory = True,
            executable = True,
            cfg = _guest_platform,
        ),
        "_mklayer": attr.label(
            default = "@rules_go_vm//runner/cmd/mklayer",
            executable = True,
            cfg = "exec",
        ),
    },
)
