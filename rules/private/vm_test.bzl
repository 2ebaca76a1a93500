"""`go_vm_test`: a go_test whose binary runs inside a Linux guest booted by the host runner."""

load("@io_bazel_rules_go//go:def.bzl", "go_test")
load(":providers.bzl", "KernelInfo", "VmTestInfo")
load(":runfiles.bzl", "rlocation")
load(
    ":spec.bzl",
    "ACCELS",
    "BACKENDS",
    "FIELDS",
    "HOST_PAGE_SIZES",
    "HUGEPAGE_MARGIN_MIB",
    "HUGEPAGE_SIZES",
    "MAX_CPUS",
    "MAX_MEMORY_MIB",
    "MAX_NICS",
    "MAX_TCG_TIMEOUT_SCALE",
    "MESSAGE_HOST_PAGE_ALIGN",
    "MESSAGE_HUGEPAGES",
    "MESSAGE_HUGEPAGES_FIT",
    "MESSAGE_INT_RANGE",
    "MESSAGE_MEMORY_RANGE",
    "MESSAGE_NIC_COUNT",
    "MESSAGE_ONE_OF",
    "MESSAGE_SIZE",
    "MESSAGE_VFIO_NIC",
    "MESSAGE_VFIO_NICS_NONE",
    "MESSAGE_VFIO_NIC_RANGE",
    "MESSAGE_VFIO_NIC_TWICE",
    "MESSAGE_WHOLE_MIB",
    "MIN_CPUS",
    "MIN_MEMORY_MIB",
    "MIN_TCG_TIMEOUT_SCALE",
    "NIC_MODELS",
    "STARTS",
    "TRANSPORTS",
)
load(":template.bzl", "make_template", "vm_key")

VM_TOOLCHAIN = "@rules_go_vm//rules:vm_toolchain_type"

_UNIT_KIB = {"G": 1024 * 1024, "K": 1, "M": 1024}

_INT64_MAX = 9223372036854775807

def _fail(label, field, template, args):
    """Fails with package vmspec's words: "<label>: <field>: <message>"."""
    fail("%s: %s: %s" % (label, field, template % args))

def _memory_mib(label, v):
    """Parses a memory size ("512M", "1G", "131072K") into MiB, as vmspec.ParseMemory does."""
    unit, digits = v[-1:], v[:-1]
    if len(v) < 2 or unit not in _UNIT_KIB or not digits.isdigit():
        _fail(label, "memory", MESSAGE_SIZE, (v,))
    n = int(digits)
    if n > MAX_MEMORY_MIB * 1024:
        _fail(label, "memory", MESSAGE_MEMORY_RANGE, (v, MIN_MEMORY_MIB, MAX_MEMORY_MIB // 1024))
    kib = n * _UNIT_KIB[unit]
    if kib % 1024 != 0:
        _fail(label, "memory", MESSAGE_WHOLE_MIB, (v,))
    mib = kib // 1024
    if mib < MIN_MEMORY_MIB or mib > MAX_MEMORY_MIB:
        _fail(label, "memory", MESSAGE_MEMORY_RANGE, (v, MIN_MEMORY_MIB, MAX_MEMORY_MIB // 1024))
    return mib

def _hugepages(label, v):
    """Parses SIZE:COUNT into (page MiB, count), as vmspec.ParseHugepages does; ("", 0) for none."""
    if not v:
        return 0, 0
    size, sep, count = v.partition(":")
    if not sep or size not in HUGEPAGE_SIZES or not count.isdigit() or int(count) < 1 or int(count) > _INT64_MAX:
        _fail(label, "guest_hugepages", MESSAGE_HUGEPAGES, (v,))
    return _UNIT_KIB[size[-1]] * int(size[:-1]) // 1024, int(count)

def _vfio_nics(label, items, nics):
    """Checks vfio_nics as vmspec.ParseVFIONICs and its Validate check do."""
    if items == ["all"]:
        if not nics:
            _fail(label, "vfio_nics", MESSAGE_VFIO_NICS_NONE, ())
        return
    seen = {}
    for it in items:
        if not it.isdigit() or len(it) > 2 or int(it) >= MAX_NICS:
            _fail(label, "vfio_nics", MESSAGE_VFIO_NIC, (it, MAX_NICS - 1))
        if int(it) in seen:
            _fail(label, "vfio_nics", MESSAGE_VFIO_NIC_TWICE, (int(it),))
        seen[int(it)] = True
    for it in items:
        if int(it) >= len(nics):
            _fail(label, "vfio_nics", MESSAGE_VFIO_NIC_RANGE, (int(it), len(nics)))

def _one_of(label, field, v, allowed):
    if v not in allowed:
        _fail(label, field, MESSAGE_ONE_OF, (v, ", ".join(allowed)))

def _int_in(label, field, v, lo, hi):
    if v < lo or v > hi:
        _fail(label, field, MESSAGE_INT_RANGE, (str(v), lo, hi))

def validate_spec(label, attr):
    """Checks the VM attributes at analysis time with package vmspec's rules, limits and words.

    Every check here mirrors vmspec.Shape.Set and Validate; the constants come from
    rules/private/spec.bzl (generated from Go), and tests/analysis runs the table of cases
    (vmspec/vmspectest) that Gazelle and invm are tested with too. The launcher re-checks
    the spec with the Go code itself.

    Args:
      label: the target, for messages.
      attr: the rule's attributes.
    """
    _one_of(label, "accel", attr.accel, ACCELS)
    _one_of(label, "backend", attr.backend, BACKENDS)
    _one_of(label, "host_pages", attr.host_pages, HOST_PAGE_SIZES)
    _one_of(label, "transport", attr.transport, TRANSPORTS)
    _one_of(label, "start", attr.start, STARTS)
    _int_in(label, "cpus", attr.cpus, MIN_CPUS, MAX_CPUS)
    _int_in(label, "tcg_timeout_scale", attr.tcg_timeout_scale, MIN_TCG_TIMEOUT_SCALE, MAX_TCG_TIMEOUT_SCALE)
    mem = _memory_mib(label, attr.memory)
    if len(attr.nics) > MAX_NICS:
        _fail(label, "nics", MESSAGE_NIC_COUNT, (len(attr.nics), MAX_NICS))
    for nic in attr.nics:
        _one_of(label, "nics", nic, NIC_MODELS)
    if attr.mgmt_nic:
        _one_of(label, "mgmt_nic", attr.mgmt_nic, NIC_MODELS)
    if attr.host_pages != "4k" and mem % (_UNIT_KIB[attr.host_pages[-1]] * int(attr.host_pages[:-1]) // 1024) != 0:
        _fail(label, "memory", MESSAGE_HOST_PAGE_ALIGN, (attr.memory, attr.host_pages))
    page_mib, count = _hugepages(label, attr.guest_hugepages)
    if page_mib * count > mem - HUGEPAGE_MARGIN_MIB:
        _fail(label, "guest_hugepages", MESSAGE_HUGEPAGES_FIT, (attr.guest_hugepages, str(page_mib * count), HUGEPAGE_MARGIN_MIB, attr.memory))
    _vfio_nics(label, attr.vfio_nics, attr.nics)

def _shape(attr):
    """The spec's shape fields in their text form (lists as lists), for the launcher's vmspec.Parse."""
    return {
        "accel": attr.accel,
        "backend": attr.backend,
        "cmdline": attr.cmdline,
        "cpus": str(attr.cpus),
        "guest_hugepages": attr.guest_hugepages,
        "host_pages": attr.host_pages,
        "iommu": "true" if attr.iommu else "false",
        "memory": attr.memory,
        "mgmt_nic": attr.mgmt_nic,
        "nics": attr.nics,
        "start": attr.start,
        "tcg_timeout_scale": str(attr.tcg_timeout_scale),
        "transport": attr.transport,
        "vfio_nics": attr.vfio_nics,
    }

# The C toolchain of the guest arch: its compiler resolves a dynamically
# linked test binary's libraries (runner/dynlib).
_CC_TOOLCHAIN = "@bazel_tools//tools/cpp:toolchain_type"

def _template(ctx, tc, kernel, base):
    """The test's snapshot-start template and, when it has none, why (for the launcher's log).

    `start = "cold"`: none. A test of the default kernel and the VM toolchain's template's shape restores that
    one template (one GuestTemplate action per arch, shared). Another shape: under `"snapshot"` its own template
    (a GuestTemplate action of its own); under `"auto"` a cold boot, the launcher saying why.

    Returns:
      (File or None, string): the template directory; the reason there is none ("" when there is one, or for cold).
    """
    start = ctx.attr.start
    if start == "cold":
        return None, ""
    shape = _shape(ctx.attr)
    shared = tc.template
    why = ""
    if ctx.attr.kernel:
        why = "the test's kernel is not the VM toolchain's (the shared template is of the default kernel)"
    elif not shared:
        why = "the VM toolchain has no template"
    else:
        differ = sorted([k for k, v in vm_key(shape).items() if shared.vm.get(k) != v])
        if differ:
            why = "the VM's %s differ%s from the shared template's (the default shape)" % (", ".join(differ), "" if len(differ) > 1 else "s")
    if not why:
        return shared.directory, ""
    if start == "snapshot":
        return make_template(ctx, ctx.label.name, tc.arch, kernel, base, shape), ""
    return None, why + "; start = \"snapshot\" makes a template for this test"

def _go_vm_test_impl(ctx):
    validate_spec(ctx.label, ctx.attr)
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
        dst = "invm/runfiles/" + rlocation(ctx, f)
        if dst in seen:
            continue
        seen[dst] = True
        entries.append({"path": dst, "src": f.path, "type": "file"})
    ctx.actions.write(manifest, json.encode({"entries": entries}))
    layer = ctx.actions.declare_file(ctx.label.name + ".layer.cpio")
    layer_args = ["-o", layer.path, "-manifest", manifest.path]

    # A dynamically linked (cgo) binary gets its ELF interpreter and shared
    # libraries in the layer, resolved by the C compiler of the guest arch's
    # toolchain (the one that linked it); a static binary gets nothing.
    cc = ctx.toolchains[_CC_TOOLCHAIN]
    if cc and cc.cc.compiler_executable:
        layer_args += ["-libs-for", binary.path, "-cc", cc.cc.compiler_executable]
    ctx.actions.run(
        executable = ctx.executable._mkinitramfs,
        arguments = layer_args,
        inputs = files + [manifest],
        outputs = [layer],
        mnemonic = "GuestTestLayer",
        progress_message = "Writing test initramfs layer %{label}",
    )

    pkg_dir = ctx.workspace_name + "/" + ctx.label.package if ctx.label.package else ctx.workspace_name
    if ctx.label.workspace_name:
        pkg_dir = ctx.label.workspace_name + "/" + ctx.label.package
    spec = {
        "arch": tc.arch,
        "args": ctx.attr.vm_args,
        "env": ctx.attr.vm_env,
        "kernel": rlocation(ctx, kernel.image),
        "kernel_manifest": rlocation(ctx, kernel.manifest) if kernel.manifest else "",
        "layers": [rlocation(ctx, base.archive), rlocation(ctx, layer)],
        "shape": _shape(ctx.attr),
        "test": "/invm/runfiles/" + rlocation(ctx, binary),
        "workdir": "/invm/runfiles/" + pkg_dir,
    }
    template, no_template = _template(ctx, tc, kernel, base)
    if template:
        spec["template"] = rlocation(ctx, template)
    if no_template:
        spec["no_template"] = no_template
    spec_file = ctx.actions.declare_file(ctx.label.name + ".vm.json")
    ctx.actions.write(spec_file, json.encode_indent(spec) + "\n")

    runner = ctx.executable._runner
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(launcher, """#!/bin/sh
# go_vm_test launcher for {label}: boots the guest on the host (exec platform).
r="${{RUNFILES_DIR:-${{TEST_SRCDIR:-$0.runfiles}}}}"
exec "$r/{runner}" -runfiles "$r" -spec "$r/{spec}" -- "$@"
""".format(label = ctx.label, runner = rlocation(ctx, runner), spec = rlocation(ctx, spec_file)), is_executable = True)

    # The binary itself rides along only so the launcher can check its ELF
    # arch against the spec; the guest gets it from the layer.
    runfiles = ctx.runfiles(files = [runner, spec_file, kernel.image, base.archive, layer, binary] + ([kernel.manifest] if kernel.manifest else []) + ([template] if template else []))
    runfiles = runfiles.merge(ctx.attr._runner[DefaultInfo].default_runfiles)
    return [
        VmTestInfo(runner = runner, spec = spec_file),
        DefaultInfo(executable = launcher, runfiles = runfiles, files = depset([launcher, spec_file, layer])),
        RunEnvironmentInfo(environment = {}, inherited_environment = ["RULES_GO_VM_CACHE", "INVM_QEMU", "INVM_VERBOSE"]),
        # `bazel coverage`: the inner go_test's instrumented sources are this
        # test's (the launcher brings the guest's LCOV files to COVERAGE_DIR).
        coverage_common.instrumented_files_info(ctx, dependency_attributes = ["test_binary"]),
    ]

_go_vm_test = rule(
    implementation = _go_vm_test_impl,
    test = True,
    # Optional, so that an unsupported target CPU gets our message, not a
    # toolchain resolution error.
    toolchains = [
        config_common.toolchain_type(VM_TOOLCHAIN, mandatory = False),
        config_common.toolchain_type(_CC_TOOLCHAIN, mandatory = False),
    ],
    doc = "Runs a test binary inside a Linux guest. Use the `go_vm_test` macro.",
    attrs = {
        "accel": attr.string(doc = FIELDS["accel"]["doc"], default = FIELDS["accel"]["default"]),
        "backend": attr.string(doc = FIELDS["backend"]["doc"], default = FIELDS["backend"]["default"]),
        "cmdline": attr.string_list(doc = FIELDS["cmdline"]["doc"]),
        "cpus": attr.int(doc = FIELDS["cpus"]["doc"], default = int(FIELDS["cpus"]["default"])),
        "guest_hugepages": attr.string(doc = FIELDS["guest_hugepages"]["doc"]),
        "host_pages": attr.string(doc = FIELDS["host_pages"]["doc"], default = FIELDS["host_pages"]["default"]),
        "iommu": attr.bool(doc = FIELDS["iommu"]["doc"]),
        "kernel": attr.label(doc = "A guest kernel (`kernel_image`); default: the VM toolchain's for the target arch.", providers = [KernelInfo]),
        "memory": attr.string(doc = FIELDS["memory"]["doc"], default = FIELDS["memory"]["default"]),
        "mgmt_nic": attr.string(doc = FIELDS["mgmt_nic"]["doc"]),
        "nics": attr.string_list(doc = FIELDS["nics"]["doc"]),
        "start": attr.string(doc = FIELDS["start"]["doc"], default = FIELDS["start"]["default"]),
        "tcg_timeout_scale": attr.int(doc = FIELDS["tcg_timeout_scale"]["doc"], default = int(FIELDS["tcg_timeout_scale"]["default"])),
        "test_binary": attr.label(doc = "The go_test binary built for the guest platform.", mandatory = True, executable = True, cfg = "target"),
        "transport": attr.string(doc = FIELDS["transport"]["doc"], default = FIELDS["transport"]["default"]),
        "vfio_nics": attr.string_list(doc = FIELDS["vfio_nics"]["doc"]),
        "vm_args": attr.string_list(doc = "Arguments passed to the test binary in the guest."),
        "vm_env": attr.string_dict(doc = "Environment of the test in the guest."),
        # Bazel's per-test LCOV merger (--coverage_output_generator), built
        # only under `bazel coverage`; as go_test has it.
        "_lcov_merger": attr.label(default = configuration_field(fragment = "coverage", name = "output_generator"), cfg = "exec"),
        "_mkinitramfs": attr.label(default = "@rules_go_vm//runner/cmd/mkinitramfs", executable = True, cfg = "exec"),
        "_mktemplate": attr.label(default = "@rules_go_vm//runner/cmd/mktemplate", executable = True, cfg = "exec"),
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
      scale: tcg_timeout_scale (below 1 counts as 1).

    Returns:
      A timeout category ("short" ... "eternal"; "eternal" when nothing is long enough).
    """
    nominal = timeout or _SIZE_TIMEOUT.get(size or "medium")
    if nominal == None:
        fail("size = %r; use one of %s" % (size, ", ".join(_SIZE_TIMEOUT.keys())))
    seconds = {name: secs for name, secs in _TIMEOUTS}
    if nominal not in seconds:
        fail("timeout = %r; use one of %s" % (timeout, ", ".join([name for name, _ in _TIMEOUTS])))

    # A scale below 1 is reported at analysis (validate_spec), with the
    # other attributes' errors; here it only must not break loading.
    want = seconds[nominal] * max(scale, 1)
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
""".format(label = ctx.label, test = ctx.attr.test.label, runner = rlocation(ctx, info.runner), spec = rlocation(ctx, info.spec)), is_executable = True)
    return [DefaultInfo(executable = launcher, runfiles = ctx.attr.test[DefaultInfo].default_runfiles)]

_go_vm_debug = rule(
    implementation = _go_vm_debug_impl,
    executable = True,
    doc = "`bazel run` target that boots a go_vm_test's VM interactively. Made by the `go_vm_test` macro as `<name>.debug`.",
    attrs = {
        "test": attr.label(doc = "The go_vm_test to debug.", mandatory = True, providers = [VmTestInfo]),
    },
)

# Build tags of every guest test binary: the standard library's pure-Go DNS
# resolver and user lookup (no libc in the guest, and no cgo unless a test's
# own dependencies use it), and `dpdk`, which the DPDK binding (//dpdk,
# acl/dpdkacl) builds under (see dpdk/README.md).
GUEST_GOTAGS = ["dpdk", "netgo", "osusergo"]

_VM_ATTRS = ["accel", "backend", "cmdline", "cpus", "guest_hugepages", "host_pages", "iommu", "kernel", "memory", "mgmt_nic", "nics", "start", "tcg_timeout_scale", "transport", "vfio_nics"]

def go_vm_test(name, **kwargs):
    """A go_test that runs inside a Linux guest.

    `bazel run //pkg:<name>.debug` boots the same VM with the console on the terminal, runs the
    test, then opens a shell (busybox) in the guest.

    Every go_test attribute (srcs, embed, deps, data, ...) passes through to an inner go_test
    `<name>_guest_binary`, built for the target platform and never run on the host. The VM attributes
    (memory, cpus, nics, mgmt_nic, guest_hugepages, host_pages, iommu, vfio_nics, kernel, cmdline, accel,
    backend, tcg_timeout_scale, transport, start) shape the guest; `args` and `env` reach the test inside it.
    The binary is built with cgo available (rules_go's default `pure = "auto"`) and the build tags `dpdk`, `netgo` and
    `osusergo` added to `gotags`: a test without cgo dependencies still links statically in pure Go, and
    one that depends on `@rules_go_vm//dpdk` links DPDK statically for the guest arch.

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

    # pure stays "auto": cgo is available where the guest arch has a C
    # toolchain (x86_64, aarch64), so a test that uses a cgo package (e.g.
    # //dpdk) builds with it; the guest build tags keep every other test
    # free of cgo, and Go then links it internally and statically (the
    # guest has no libc). //dpdk links DPDK with -static, so its users stay
    # static too. (A CPU without a C toolchain builds pure, and gets the
    # rule's own message about guest arches.)
    kwargs["gotags"] = GUEST_GOTAGS + [t for t in kwargs.get("gotags", []) if t not in GUEST_GOTAGS]
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
