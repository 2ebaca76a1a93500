"""`go_vm_test`: a go_test whose binary runs inside a Linux guest booted by the host runner."""

load("@io_bazel_rules_go//go:def.bzl", "go_test")
load(":providers.bzl", "KernelInfo", "VmTestInfo")

VM_TOOLCHAIN = "@rules_go_vm//rules:vm_toolchain_type"

NIC_MODELS = ["virtio_net", "e1000", "e1000e"]
HOST_PAGES = ["4k", "2M", "1G"]
ACCELS = ["auto", "kvm", "tcg"]
BACKENDS = ["qemu"]

_SIZE_UNITS = {"G": 1024 * 1024 * 1024, "K": 1024, "M": 1024 * 1024}

def _bytes(attr_name, value, label):
    """Parses "512M" / "1G" / "2048K" into bytes, failing with the attribute's name."""
    if len(value) < 2 or value[-1] not in _SIZE_UNITS or not value[:-1].isdigit():
        fail("%s: %s = %r is not a size; write a whole number with K, M or G, e.g. \"512M\"" % (label, attr_name, value))
    n = int(value[:-1]) * _SIZE_UNITS[value[-1]]
    if n == 0:
        fail("%s: %s = %r must be larger than 0" % (label, attr_name, value))
    return n

def validate_spec(label, memory, cpus, nics, guest_hugepages, host_pages, accel, backend, mgmt_nic = ""):
    """Checks the VM attributes at analysis time, failing with the attribute's name and the allowed values.

    Args:
      label: the target, for messages.
      memory: guest RAM, e.g. "512M".
      cpus: guest vCPUs.
      nics: NIC models.
      guest_hugepages: "SIZE:COUNT" or "".
      host_pages: host page backing.
      accel: accelerator policy.
      backend: VMM.
      mgmt_nic: management NIC model, "" for none.

    Returns:
      (memory in MiB, hugepage size or "", hugepage count)
    """
    mem = _bytes("memory", memory, label)
    if mem % (1024 * 1024) != 0:
        fail("%s: memory = %r must be a whole number of MiB" % (label, memory))
    if cpus < 1 or cpus > 64:
        fail("%s: cpus = %d must be between 1 and 64" % (label, cpus))
    for nic in nics:
        if nic not in NIC_MODELS:
            fail("%s: nics: %r is not a NIC model; use one of %s" % (label, nic, ", ".join(NIC_MODELS)))
    if mgmt_nic and mgmt_nic not in NIC_MODELS:
        fail("%s: mgmt_nic = %r is not a NIC model; use one of %s (or leave it empty for none)" % (label, mgmt_nic, ", ".join(NIC_MODELS)))
    if host_pages not in HOST_PAGES:
        fail("%s: host_pages = %r; use one of %s" % (label, host_pages, ", ".join(HOST_PAGES)))
    if host_pages != "4k" and mem % _bytes("host_pages", host_pages, label) != 0:
        fail("%s: memory = %r is not a multiple of host_pages = %r" % (label, memory, host_pages))
    if accel not in ACCELS:
        fail("%s: accel = %r; use one of %s" % (label, accel, ", ".join(ACCELS)))
    if backend not in BACKENDS:
        fail("%s: backend = %r; use one of %s" % (label, backend, ", ".join(BACKENDS)))
    hp_size, hp_count = "", 0
    if guest_hugepages:
        size, sep, count = guest_hugepages.partition(":")
        if not sep or size not in ["2M", "1G"] or not count.isdigit() or int(count) == 0:
            fail("%s: guest_hugepages = %r; write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. \"2M:64\"" % (label, guest_hugepages))
        hp_size, hp_count = size, int(count)
        if _bytes("guest_hugepages", size, label) * hp_count >= mem:
            fail("%s: guest_hugepages = %r needs %d MiB, more than memory = %r; raise memory or lower the count" % (
                label,
                guest_hugepages,
                _bytes("guest_hugepages", size, label) * hp_count // (1024 * 1024),
                memory,
            ))
    return mem // (1024 * 1024), hp_size, hp_count

def _rlocation(ctx, f):
    """The runfiles path of a file ("_main/pkg/x" or "repo/x")."""
    if f.short_path.startswith("../"):
        return f.short_path[3:]
    return ctx.workspace_name + "/" + f.short_path

def _go_vm_test_impl(ctx):
    mem_mib, hp_size, hp_count = validate_spec(
        ctx.label,
        ctx.attr.memory,
        ctx.attr.cpus,
        ctx.attr.nics,
        ctx.attr.guest_hugepages,
        ctx.attr.host_pages,
        ctx.attr.accel,
        ctx.attr.backend,
        mgmt_nic = ctx.attr.mgmt_nic,
    )
    tc = ctx.toolchains[VM_TOOLCHAIN]
    if tc == None:
        fail("%s: the target platform's CPU has no guest kernel: rules_go_vm boots x86_64 and aarch64 guests; " % ctx.label +
             "build with --platforms=@rules_go_vm//:x86_64 or --platforms=@rules_go_vm//:aarch64 " +
             "(or register a vm_toolchain for your CPU)")
    tc = tc.vm
    kernel = ctx.attr.kernel[KernelInfo] if ctx.attr.kernel else tc.kernel
    if kernel.arch != tc.arch:
        fail("%s: kernel = %s is for %s, but this test is built for %s guests" % (ctx.label, ctx.attr.kernel.label, kernel.arch, tc.arch))
    base = tc.base_layer

    # The thin per-test layer: the test binary and its runfiles, at their
    # runfiles paths under /invm/runfiles.
    binary = ctx.executable.test_binary
    bin_runfiles = ctx.attr.test_binary[DefaultInfo].default_runfiles
    files = [binary] + bin_runfiles.files.to_list()
    manifest = ctx.actions.declare_file(ctx.label.name + ".layer.json")
    entries = []
    seen = {}
    for f in files:
        dst = "invm/runfiles/" + _rlocation(ctx, f)
        if dst in seen:
            continue
        seen[dst] = True
        entries.append({"path": dst, "src": f.path, "type": "file"})
    ctx.actions.write(manifest, json.encode({"entries": entries}))
    layer = ctx.actions.declare_file(ctx.label.name + ".layer.cpio")
    ctx.actions.run(
        executable = ctx.executable._mkinitramfs,
        arguments = ["-o", layer.path, "-manifest", manifest.path],
        inputs = files + [manifest],
        outputs = [layer],
        mnemonic = "GuestTestLayer",
        progress_message = "Writing test initramfs layer %{label}",
    )

    pkg_dir = ctx.workspace_name + "/" + ctx.label.package if ctx.label.package else ctx.workspace_name
    if ctx.label.workspace_name:
        pkg_dir = ctx.label.workspace_name + "/" + ctx.label.package
    spec = {
        "accel": ctx.attr.accel,
        "arch": tc.arch,
        "args": ctx.attr.vm_args,
        "backend": ctx.attr.backend,
        "cmdline": ctx.attr.cmdline,
        "cpus": ctx.attr.cpus,
        "env": ctx.attr.vm_env,
        "guest_hugepages": {"count": hp_count, "size": hp_size} if hp_count else None,
        "host_pages": ctx.attr.host_pages,
        "iommu": ctx.attr.iommu,
        "kernel": _rlocation(ctx, kernel.image),
        "kernel_manifest": _rlocation(ctx, kernel.manifest) if kernel.manifest else "",
        "layers": [_rlocation(ctx, base.archive), _rlocation(ctx, layer)],
        "memory_mib": mem_mib,
        "mgmt_nic": ctx.attr.mgmt_nic,
        "nics": ctx.attr.nics,
        "test": "/invm/runfiles/" + _rlocation(ctx, binary),
        "timeout_scale_tcg": ctx.attr.tcg_timeout_scale,
        "transport": ctx.attr.transport,
        "workdir": "/invm/runfiles/" + pkg_dir,
    }
    spec_file = ctx.actions.declare_file(ctx.label.name + ".vm.json")
    ctx.actions.write(spec_file, json.encode_indent(spec) + "\n")

    runner = ctx.executable._runner
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(launcher, """#!/bin/sh
# go_vm_test launcher for {label}: boots the guest on the host (exec platform).
r="${{RUNFILES_DIR:-${{TEST_SRCDIR:-$0.runfiles}}}}"
exec "$r/{runner}" -runfiles "$r" -spec "$r/{spec}" -- "$@"
""".format(label = ctx.label, runner = _rlocation(ctx, runner), spec = _rlocation(ctx, spec_file)), is_executable = True)

    # The binary itself rides along only so the launcher can check its ELF
    # arch against the spec; the guest gets it from the layer.
    runfiles = ctx.runfiles(files = [runner, spec_file, kernel.image, base.archive, layer, binary] + ([kernel.manifest] if kernel.manifest else []))
    runfiles = runfiles.merge(ctx.attr._runner[DefaultInfo].default_runfiles)
    return [
        VmTestInfo(runner = runner, spec = spec_file),
        DefaultInfo(executable = launcher, runfiles = runfiles, files = depset([launcher, spec_file, layer])),
        RunEnvironmentInfo(environment = {}, inherited_environment = ["RULES_GO_VM_CACHE", "INVM_QEMU", "INVM_VERBOSE"]),
    ]

_go_vm_test = rule(
    implementation = _go_vm_test_impl,
    test = True,
    # Optional, so that an unsupported target CPU gets our message, not a
    # toolchain resolution error.
    toolchains = [config_common.toolchain_type(VM_TOOLCHAIN, mandatory = False)],
    doc = "Runs a test binary inside a Linux guest. Use the `go_vm_test` macro.",
    attrs = {
        "accel": attr.string(doc = "Accelerator: \"auto\" (KVM only after a canary boot proves it works, else TCG), \"kvm\" or \"tcg\".", default = "auto"),
        "backend": attr.string(doc = "VMM: \"qemu\" (cloud-hypervisor is planned).", default = "qemu"),
        "cmdline": attr.string_list(doc = "Extra kernel command-line parameters."),
        "cpus": attr.int(doc = "Guest vCPUs (1 to 64).", default = 1),
        "guest_hugepages": attr.string(doc = "Guest hugepages as SIZE:COUNT, SIZE 2M or 1G, e.g. \"2M:64\"; empty for none. Must fit in memory."),
        "host_pages": attr.string(doc = "Host page backing of guest RAM: \"4k\" (memfd), \"2M\" or \"1G\" (hugetlbfs).", default = "4k"),
        "iommu": attr.bool(doc = "Give the guest a virtual IOMMU (intel-iommu on x86_64, SMMUv3 on aarch64)."),
        "kernel": attr.label(doc = "A guest kernel (`kernel_image`); default: the VM toolchain's for the target arch.", providers = [KernelInfo]),
        "memory": attr.string(doc = "Guest RAM, e.g. \"256M\" or \"1G\".", default = "256M"),
        "mgmt_nic": attr.string(
            doc = "A management NIC next to the `nics`: its model (\"virtio_net\", \"e1000\", \"e1000e\"), empty for none. " +
                  "It is at PCI address 0000:00:0f.0, alone on its own QEMU hub (no host network, ever), with a deterministic " +
                  "MAC ending in ff; the guest finds it with `invm.MgmtNIC()` ($INVM_MGMT_NIC). Makes an x86_64 guest a q35 machine.",
        ),
        "nics": attr.string_list(doc = "NIC models, one NIC each, in PCI order: \"virtio_net\", \"e1000\", \"e1000e\"."),
        "tcg_timeout_scale": attr.int(
            doc = "How much slower the test may be under TCG than under KVM. The `go_vm_test` macro raises Bazel's " +
                  "timeout category so it holds the nominal timeout (from `timeout` or `size`) times this factor; " +
                  "when the runner gets KVM, the guest test's own `-test.timeout` is the nominal one again.",
            default = 3,
        ),
        "test_binary": attr.label(doc = "The go_test binary built for the guest platform.", mandatory = True, executable = True, cfg = "target"),
        "transport": attr.string(
            doc = "Host<->guest transport of the test's streams: \"auto\" (kernel vhost-vsock when /dev/vhost-vsock is usable, " +
                  "else the vhost-device-vsock daemon, else virtio-serial), \"vhost-vsock\", \"vhost-user-vsock\" or " +
                  "\"virtio-serial\" (one connection for every stream; for guest kernels without vsock). The test log says which one and why.",
            default = "auto",
            values = ["auto", "vhost-vsock", "vhost-user-vsock", "virtio-serial"],
        ),
        "vm_args": attr.string_list(doc = "Arguments passed to the test binary in the guest."),
        "vm_env": attr.string_dict(doc = "Environment of the test in the guest."),
        "_mkinitramfs": attr.label(default = "@rules_go_vm//runner/cmd/mkinitramfs", executable = True, cfg = "exec"),
        "_runner": attr.label(default = "@rules_go_vm//runner/cmd/vmtest", executable = True, cfg = "exec"),
    },
)

# Bazel's timeout categories, in seconds, and the default one per size.
_TIMEOUTS = [("short", 60), ("moderate", 300), ("long", 900), ("eternal", 3600)]
_SIZE_TIMEOUT = {"enormous": "eternal", "large": "long", "medium": "moderate", "small": "short"}

def scaled_timeout(size, timeout, scale):
    """The smallest Bazel timeout category holding the nominal timeout times scale.

    Args:
      size: the test's size ("" for the default, medium).
      timeout: the test's timeout category ("" for the size's default).
      scale: tcg_timeout_scale (>= 1).

    Returns:
      A timeout category ("short" ... "eternal"; "eternal" when nothing is long enough).
    """
    nominal = timeout or _SIZE_TIMEOUT.get(size or "medium")
    if nominal == None:
        fail("size = %r; use one of %s" % (size, ", ".join(_SIZE_TIMEOUT.keys())))
    seconds = {name: secs for name, secs in _TIMEOUTS}
    if nominal not in seconds:
        fail("timeout = %r; use one of %s" % (timeout, ", ".join([name for name, _ in _TIMEOUTS])))
    if scale < 1:
        fail("tcg_timeout_scale = %r must be at least 1" % scale)
    want = seconds[nominal] * scale
    for name, secs in _TIMEOUTS:
        if secs >= want:
            return name
    return "eternal"

# Tests that must have KVM (accel = "kvm") run only on execution platforms
# with this constraint (see README.md, "Remote execution").
KVM_CONSTRAINT = Label("//rules/exec:kvm")

def _go_vm_debug_impl(ctx):
    info = ctx.attr.test[VmTestInfo]
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(launcher, """#!/bin/sh
# `bazel run {label}`: boots the VM of {test} with the console on this
# terminal, runs the test, then opens a shell in the guest.
r="${{RUNFILES_DIR:-$0.runfiles}}"
exec "$r/{runner}" -debug -runfiles "$r" -spec "$r/{spec}" -- "$@"
""".format(label = ctx.label, test = ctx.attr.test.label, runner = _rlocation(ctx, info.runner), spec = _rlocation(ctx, info.spec)), is_executable = True)
    return [DefaultInfo(executable = launcher, runfiles = ctx.attr.test[DefaultInfo].default_runfiles)]

_go_vm_debug = rule(
    implementation = _go_vm_debug_impl,
    executable = True,
    doc = "`bazel run` target that boots a go_vm_test's VM interactively. Made by the `go_vm_test` macro as `<name>.debug`.",
    attrs = {
        "test": attr.label(doc = "The go_vm_test to debug.", mandatory = True, providers = [VmTestInfo]),
    },
)

_VM_ATTRS = ["accel", "backend", "cmdline", "cpus", "guest_hugepages", "host_pages", "iommu", "kernel", "memory", "mgmt_nic", "nics", "tcg_timeout_scale", "transport"]

def go_vm_test(name, **kwargs):
    """A go_test that runs inside a Linux guest.

    `bazel run //pkg:<name>.debug` boots the same VM with the console on the terminal, runs the
    test, then opens a shell (busybox) in the guest.

    Every go_test attribute (srcs, embed, deps, data, ...) passes through to an inner go_test
    `<name>_guest_binary`, built for the target platform and never run on the host. The VM attributes
    (memory, cpus, nics, mgmt_nic, guest_hugepages, host_pages, iommu, kernel, cmdline, accel, backend,
    tcg_timeout_scale, transport) shape the guest; `args` and `env` reach the test inside it.

    Args:
      name: the test's name.
      **kwargs: go_test attributes, VM attributes, and the common test attributes (size, timeout,
        tags, flaky, shard_count, visibility, exec_properties, exec_compatible_with,
        target_compatible_with). `timeout` is raised by `tcg_timeout_scale`; `accel = "kvm"` adds the
        `@rules_go_vm//rules/exec:kvm` execution constraint.
    """
    vm = {k: kwargs.pop(k) for k in _VM_ATTRS if k in kwargs}
    common = {k: kwargs.pop(k) for k in ["size", "timeout", "flaky", "shard_count", "exec_properties", "exec_compatible_with", "visibility", "target_compatible_with", "local"] if k in kwargs}

    # Under TCG a guest is several times slower than under KVM: give Bazel's
    # timeout room for that (the runner narrows the guest's own timeout back
    # to the nominal one when it gets KVM).
    common["timeout"] = scaled_timeout(common.get("size", ""), common.get("timeout", ""), vm.get("tcg_timeout_scale", 3))
    if vm.get("accel") == "kvm":
        common["exec_compatible_with"] = common.get("exec_compatible_with", []) + [KVM_CONSTRAINT]
    tags = kwargs.pop("tags", [])
    args = kwargs.pop("args", [])
    env = kwargs.pop("env", {})

    # The guest has no libc: link statically unless the test asks otherwise.
    kwargs.setdefault("pure", "on")
    go_test(
        name = name + "_guest_binary",
        tags = ["manual"] + tags,
        visibility = ["//visibility:private"],
        testonly = True,
        **kwargs
    )
    _go_vm_test(
        name = name,
        test_binary = ":" + name + "_guest_binary",
        vm_args = args,
        vm_env = env,
        tags = tags,
        **(vm | common)
    )

    # `bazel run //pkg:<name>.debug`: the same VM, interactively.
    _go_vm_debug(
        name = name + ".debug",
        test = ":" + name,
        tags = ["manual"] + [t for t in tags if t != "manual"],
        testonly = True,
        visibility = common.get("visibility"),
        target_compatible_with = common.get("target_compatible_with"),
    )
