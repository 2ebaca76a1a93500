"""Snapshot-start templates as build outputs: `guest_template` (the VM toolchain's, one per guest arch, shared by
every test of the default VM shape) and the per-test template of `start = "snapshot"` tests of another shape."""

load(":providers.bzl", "GuestLayerInfo", "GuestTemplateInfo", "KernelInfo")
load(":runfiles.bzl", "rlocation")
load(":spec.bzl", "FIELDS")

# The spec fields that do not shape the VM a template holds: how it starts
# and how long its test may take.
_NOT_VM_FIELDS = ["start", "tcg_timeout_scale"]

def default_shape():
    """The shape of a go_vm_test that sets no VM attribute.

    Returns:
      dict: every spec field's default, in the text form of the launch file.
    """
    shape = {}
    for name, field in FIELDS.items():
        default = field["default"]
        if field["kind"] == "string_list":
            shape[name] = default.split(",") if default else []
        else:
            shape[name] = default
    return shape

def vm_key(shape):
    """What of a shape a template depends on.

    Args:
      shape: a VM shape in the launch file's text form.

    Returns:
      dict: shape without start and tcg_timeout_scale.
    """
    return {name: value for name, value in shape.items() if name not in _NOT_VM_FIELDS}

def make_template(ctx, name, arch, kernel, base, shape):
    """Declares the GuestTemplate action: the template directory of the VM (arch, kernel, base layer, shape).

    runner/cmd/mktemplate boots the VM once to where its init waits for the test layer and saves it (QEMU
    migration to a file); a launcher restores it. The action sees only what the template depends on, so no test's
    code change remakes it, and a remote cache shares it. QEMU is the exec host's (PATH, or $INVM_QEMU through
    --action_env); a template made by another QEMU build is refused at run time and the test boots cold. A shape a
    template cannot carry gets a directory saying why (mktemplate's no-template.txt): its test boots cold.

    Args:
      ctx: the rule context (with an executable `_mktemplate` attribute).
      name: the output directory's name, unique in the package.
      arch: the guest arch.
      kernel: KernelInfo of the guest kernel.
      base: GuestLayerInfo of the base layer.
      shape: the VM shape in the launch file's text form.

    Returns:
      The template directory (a tree artifact).
    """
    spec = {
        "arch": arch,
        "args": [],
        "env": {},
        "kernel": rlocation(ctx, kernel.image),
        "layers": [rlocation(ctx, base.archive)],
        "shape": shape,
        "test": "/invm/template",
        "workdir": "/",
    }
    spec_file = ctx.actions.declare_file(name + ".template.json")
    ctx.actions.write(spec_file, json.encode_indent(spec) + "\n")
    out = ctx.actions.declare_directory(name + ".template")
    ctx.actions.run(
        executable = ctx.executable._mktemplate,
        arguments = ["-o", out.path, "-spec", spec_file.path, "-kernel", kernel.image.path, "-base", base.archive.path],
        inputs = [spec_file, kernel.image, base.archive],
        outputs = [out],
        mnemonic = "GuestTemplate",
        progress_message = "Making the snapshot-start template %{label}",
        # PATH: QEMU, as the test's launcher finds it ($INVM_QEMU through --action_env).
        use_default_shell_env = True,
    )
    return out

def _guest_template_impl(ctx):
    kernel = ctx.attr.kernel[KernelInfo]
    base = ctx.attr.base_layer[GuestLayerInfo]
    if kernel.arch != base.arch:
        fail("guest_template %s: kernel is for %s but base_layer for %s; both must be for the same arch" % (ctx.label, kernel.arch, base.arch))
    shape = default_shape()
    shape["start"] = "auto"
    out = make_template(ctx, ctx.label.name, kernel.arch, kernel, base, shape)
    return [
        DefaultInfo(files = depset([out])),
        GuestTemplateInfo(arch = kernel.arch, directory = out, vm = vm_key(shape)),
    ]

guest_template = rule(
    implementation = _guest_template_impl,
    doc = """The snapshot-start template of the default VM shape (what a `go_vm_test` that sets no VM attribute
boots) for a kernel and a base layer: the VM toolchain's, shared by every such test of its arch (see README,
"Snapshot start").""",
    attrs = {
        "base_layer": attr.label(
            doc = "A `guest_base_layer` for the kernel's arch.",
            mandatory = True,
            providers = [GuestLayerInfo],
        ),
        "kernel": attr.label(
            doc = "A `kernel_image` (any target providing KernelInfo).",
            mandatory = True,
            providers = [KernelInfo],
        ),
        "_mktemplate": attr.label(
            default = "@rules_go_vm//runner/cmd/mktemplate",
            executable = True,
            cfg = "exec",
        ),
    },
)
