"""A repository rule that exposes DPDK's static libraries for every guest architecture.

`dpdk_libs` reads DPDK's development files for each architecture from the
toolchain root at fetch time (x86_64: the root's own `libdpdk-dev`; aarch64:
the arm64 `libdpdk-dev` that `tools/setup` unpacks under
`/opt/rules_go_vm/sysroot/arm64`, see `tools/pins`) and writes a repository
holding, per architecture `<arch>`:

  * `:<arch>`, a `cc_library` of what a dataplane test links, statically:
    the buses, PMDs and mempool driver (`librte_pmds.lo`: an alwayslink
    archive, because they register themselves from constructors) and the
    libraries they need (`librte_core.a`: one archive, so the linker resolves
    their mutual references in any order), merged from Debian's `librte_*.a`
    with the arch's `ar`; DPDK's headers (symlinked, declared inputs);
    `-static` (guests have no libc) and the system libraries as `linkopts`;
  * `defs.bzl` with `COPTS`, a `select()` on the target CPU of the flags
    `CcInfo` cannot carry (`-include rte_config.h` and the `-march` Debian
    built DPDK for), and `VERSION`.

An architecture whose DPDK is missing gets a `:<arch>` that fails analysis
naming what to install, or, with `--repo_env=DPDK_OPTIONAL=1`, one that is
incompatible with every platform (so `//...` skips what needs it).
"""

# What a dataplane test links (see dpdk/README.md): whole archives.
_PMDS = [
    "bus_pci",
    "bus_vdev",
    "mempool_ring",
    "net_e1000",
    "net_ring",
    "net_virtio",
]

# Their dependencies and acl, merged into one plain archive.
_CORE = [
    "acl",
    "argparse",
    "eal",
    "ethdev",
    "hash",
    "kvargs",
    "log",
    "mbuf",
    "mempool",
    "meter",
    "net",
    "pci",
    "rcu",
    "ring",
    "telemetry",
    "timer",
]

_TRIPLET = {
    "aarch64": "aarch64-linux-gnu",
    "x86_64": "x86_64-linux-gnu",
}

def _tokens(s):
    return [t for t in s.replace("\t", " ").split(" ") if t]

def _pc_cflags(rctx, pc):
    # The Cflags of a .pc file without its -I directories: pkg-config itself
    # would also want every Requires.private of the other architecture.
    for line in rctx.read(pc).split("\n"):
        if line.startswith("Cflags:"):
            return [t for t in _tokens(line[len("Cflags:"):]) if not t.startswith("-I")]
    fail("dpdk_libs: %s has no Cflags line" % pc)

def _list(xs, indent = "    "):
    if not xs:
        return "[]"
    return "[\n" + "".join([indent + "    " + repr(x) + ",\n" for x in xs]) + indent + "]"

def _merge(rctx, arch, ar, out, libs):
    script = ["create " + out] + ["addlib " + lib for lib in libs] + ["save", "end", ""]
    rctx.file(out + ".mri", "\n".join(script))
    res = rctx.execute(["sh", "-c", 'exec "$1" -M <"$2"', "-", ar, out + ".mri"])
    if res.return_code != 0:
        fail("dpdk_libs: merging %s's DPDK archives with %s failed:\n%s%s" % (arch, ar, res.stdout, res.stderr))
    rctx.delete(out + ".mri")

def _arch(rctx, arch, prefix):
    """Writes <arch>/ and returns (BUILD text, COPTS list or None)."""
    triplet = _TRIPLET[arch]
    libdir = "%s/lib/%s" % (prefix, triplet)
    want = ["%s/librte_%s.a" % (libdir, n) for n in _PMDS + _CORE] + [libdir + "/libnuma.a", libdir + "/pkgconfig/libdpdk-libs.pc"]
    for f in want:
        # Refetch when DPDK is installed, upgraded or removed (Bazel 7.1+:
        # a path that does not exist is watched for its creation).
        rctx.watch(f)
    missing = [f for f in want if not rctx.path(f).exists]
    if missing:
        return (_MISSING.format(
            arch = arch,
            why = "%s is missing (%d of DPDK's files for %s guests are)" % (missing[0], len(missing), arch),
            optional = rctx.os.environ.get("DPDK_OPTIONAL", "") not in ("", "0"),
        ), None)
    ar = rctx.attr.ar[arch]
    if rctx.which(ar) == None and not rctx.path(ar).exists:
        fail("dpdk_libs: no `%s` (the %s archiver) where Bazel runs; tools/setup installs it in the toolchain root" % (ar, arch))
    _merge(rctx, arch, ar, arch + "/librte_pmds.lo", ["%s/librte_%s.a" % (libdir, n) for n in _PMDS])
    _merge(rctx, arch, ar, arch + "/librte_core.a", ["%s/librte_%s.a" % (libdir, n) for n in _CORE] + [libdir + "/libnuma.a"])
    rctx.symlink(prefix + "/include/dpdk", arch + "/include/dpdk")
    rctx.symlink("%s/include/%s/dpdk" % (prefix, triplet), "%s/include/%s/dpdk" % (arch, triplet))

    # Debian builds DPDK with libbsd: rte_string_fns.h includes <bsd/string.h>.
    bsd = "%s/include/%s/bsd" % (prefix, triplet)
    if not rctx.path(bsd).exists:
        fail("dpdk_libs: %s is missing: DPDK's headers include <bsd/string.h> (libbsd-dev for %s; tools/pins)" % (bsd, arch))
    rctx.symlink(bsd, "%s/include/%s/bsd" % (arch, triplet))
    return (_ARCH.format(arch = arch, triplet = triplet, libdir = libdir), _pc_cflags(rctx, libdir + "/pkgconfig/libdpdk-libs.pc"))

def _dpdk_libs_impl(rctx):
    builds = []
    copts = {}
    for arch, prefix in sorted(rctx.attr.prefixes.items()):
        if arch not in _TRIPLET:
            fail("dpdk_libs: prefixes: unknown arch %r (want one of %s)" % (arch, ", ".join(sorted(_TRIPLET.keys()))))
        build, c = _arch(rctx, arch, prefix)
        builds.append(build)
        if c != None:
            copts[arch] = c
    rctx.file("BUILD.bazel", _HEADER + "\n".join(builds))
    sel = "".join(['    "@platforms//cpu:%s": %s,\n' % (a, _list(c, "    ")) for a, c in sorted(copts.items())])
    rctx.file("defs.bzl", _DEFS.format(select = sel))

_HEADER = """\
# Generated by //dpdk:repo.bzl (dpdk_libs) from DPDK's static libraries in
# the toolchain root.

load("@rules_go_vm//dpdk:missing.bzl", "dpdk_missing")

exports_files(["defs.bzl"])

"""

_ARCH = """\
# DPDK for {arch} guests, from {libdir}: the PMDs and buses (whole archive),
# then what they need (one archive, linked after them).
cc_library(
    name = "{arch}",
    srcs = ["{arch}/librte_pmds.lo"],
    target_compatible_with = ["@platforms//cpu:{arch}"],
    visibility = ["//visibility:public"],
    deps = [":{arch}_core"],
)

# DPDK's headers alone, for cgo code in packages other than //dpdk: the
# libraries must reach a link once (whole archives twice are duplicate
# symbols), and //dpdk brings them.
cc_library(
    name = "{arch}_headers",
    hdrs = glob(["{arch}/include/**/*.h"]),
    includes = [
        "{arch}/include/dpdk",
        "{arch}/include/{triplet}/dpdk",
        "{arch}/include/{triplet}",
    ],
    target_compatible_with = ["@platforms//cpu:{arch}"],
    visibility = ["//visibility:public"],
)

cc_library(
    name = "{arch}_core",
    srcs = ["{arch}/librte_core.a"],
    linkopts = [
        "-static",
        "-lpthread",
        "-ldl",
        "-lm",
    ],
    target_compatible_with = ["@platforms//cpu:{arch}"],
    deps = [":{arch}_headers"],
)
"""

_MISSING = """\
# DPDK for {arch} guests is missing: {why}.
[
    dpdk_missing(
        name = name,
        arch = "{arch}",
        optional = {optional},
        why = "{why}",
        visibility = ["//visibility:public"],
    )
    for name in [
        "{arch}",
        "{arch}_headers",
    ]
]
"""

_DEFS = """\
\"\"\"DPDK's compiler flags per guest CPU (generated by //dpdk:repo.bzl).\"\"\"

# The Cflags of libdpdk-libs.pc without include directories (those reach
# dependents through CcInfo): flags a cgo go_library passes as its copts.
COPTS = select({{
{select}    "//conditions:default": [],
}})
"""

dpdk_libs = repository_rule(
    implementation = _dpdk_libs_impl,
    doc = "DPDK's static libraries and headers per guest architecture, as `:x86_64` and `:aarch64` cc_library targets and `defs.bzl`.",
    attrs = {
        "ar": attr.string_dict(
            default = {
                "aarch64": "aarch64-linux-gnu-ar",
                "x86_64": "ar",
            },
            doc = "The archiver per architecture, used to merge Debian's archives (looked up on PATH).",
        ),
        "prefixes": attr.string_dict(
            default = {
                "aarch64": "/opt/rules_go_vm/sysroot/arm64/usr",
                "x86_64": "/usr",
            },
            doc = "Per architecture, the prefix holding DPDK's `include/` and `lib/<triplet>/` (in the toolchain root).",
        ),
    },
    environ = ["DPDK_OPTIONAL", "PATH"],
)
