"""A repository rule that exposes the system DPDK found by pkg-config.

`dpdk_pkg_config` runs `pkg-config` for a DPDK module (default `libdpdk`) on
the machine Bazel runs on, at fetch time, and writes a repository holding

  * `:libdpdk`, a `cc_library` with DPDK's header directories (symlinked into
    the repository, so they are declared inputs and reach dependents through
    `CcInfo`) and pkg-config's `--libs` as `linkopts`;
  * `defs.bzl` with `COPTS` (pkg-config's other cflags, such as
    `-include rte_config.h` and `-march=...`, which `CcInfo` cannot carry to
    dependents: a cgo `go_library` passes them as its `copts`), `LINKOPTS`,
    `INCLUDE_DIRS` and `VERSION`.

The machine Bazel runs on is taken to be the target too: cross compilation
against another sysroot is not supported. When pkg-config or the module is
missing, fetching fails with a message saying what to install, unless the
environment variable `DPDK_OPTIONAL` is set (e.g. `--repo_env=DPDK_OPTIONAL=1`):
then `:libdpdk` is incompatible with every platform, so wildcard patterns such
as `//...` skip the targets that need DPDK and naming one of them is an error.
"""

def _tokens(s):
    # pkg-config output is whitespace separated; DPDK's flags hold no quoted
    # or escaped spaces.
    return [t for t in s.replace("\t", " ").replace("\n", " ").split(" ") if t]

def _normalize(path):
    parts = []
    for p in path.split("/"):
        if p == "" or p == ".":
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/" + "/".join(parts)

def _list(xs, indent = "    "):
    # A Starlark list literal, one element per line, as buildifier writes it.
    if not xs:
        return "[]"
    return "[\n" + "".join([indent + "    " + repr(x) + ",\n" for x in xs]) + indent + "]"

def _run(rctx, args):
    res = rctx.execute(args)
    if res.return_code != 0:
        fail("dpdk_pkg_config: `{}` failed ({}):\n{}{}".format(
            " ".join(args),
            res.return_code,
            res.stdout,
            res.stderr,
        ))
    return res.stdout.strip()

def _missing(rctx, why):
    if rctx.os.environ.get("DPDK_OPTIONAL", "") not in ("", "0"):
        # buildifier: disable=print
        print("dpdk_pkg_config: {} (DPDK_OPTIONAL is set: targets that need @{}//:libdpdk are skipped)".format(why, rctx.name))
        rctx.file("BUILD.bazel", _BUILD_MISSING.format(why = " ".join(_tokens(why))))
        rctx.file("defs.bzl", _DEFS.format(
            version = "None",
            copts = "[]",
            linkopts = "[]",
            include_dirs = "[]",
        ))
        return
    fail("""
dpdk_pkg_config: {why}.

The rte_acl backend (acl/dpdkacl) and //dpdk:libdpdk need DPDK's development
files where Bazel runs: on Debian/Ubuntu `apt-get install dpdk-dev libdpdk-dev
pkg-config` (tools/setup installs them in the toolchain root). To build and
test everything else without DPDK, pass --repo_env=DPDK_OPTIONAL=1: the targets
that need DPDK are then skipped by //... (see dpdk/README.md).
""".format(why = why))

def _dpdk_pkg_config_impl(rctx):
    pc = rctx.which(rctx.attr.pkg_config)
    if pc == None:
        _missing(rctx, "no `{}` on PATH ({})".format(rctx.attr.pkg_config, rctx.os.environ.get("PATH", "")))
        return
    pc = str(pc)
    mod = rctx.attr.module
    exists = rctx.execute([pc, "--exists", "--print-errors", mod])
    if exists.return_code != 0:
        _missing(rctx, "pkg-config finds no `{}`: {}".format(mod, (exists.stderr + exists.stdout).strip()))
        return

    version = _run(rctx, [pc, "--modversion", mod])
    pcdir = _run(rctx, [pc, "--variable=pcfiledir", mod])

    # Refetch when the .pc file changes (DPDK upgraded or removed); Bazel 7.1+.
    if hasattr(rctx, "watch"):
        rctx.watch(pcdir + "/" + mod + ".pc")

    system = [_normalize(d) for d in rctx.attr.system_include_dirs]
    includes = []
    copts = []
    toks = _tokens(_run(rctx, [pc, "--cflags", mod]))
    i = 0
    for _ in range(len(toks)):
        if i >= len(toks):
            break
        t = toks[i]
        i += 1
        if t == "-I" or t == "-isystem":
            t = t + toks[i]
            i += 1
        if t.startswith("-I") or t.startswith("-isystem"):
            d = _normalize(t[2:] if t.startswith("-I") else t[len("-isystem"):])
            if d in system or d in includes:
                continue
            if not rctx.path(d).exists:
                continue
            includes.append(d)
            continue
        if t in ("-include", "-imacros") and i < len(toks):
            copts.extend([t, toks[i]])
            i += 1
            continue
        copts.append(t)

    for d in includes:
        rctx.symlink(d, "sysroot" + d)

    linkopts = _tokens(_run(rctx, [pc, "--libs", mod]))
    if not [o for o in linkopts if o.startswith("-l")]:
        fail("dpdk_pkg_config: `pkg-config --libs {}` names no library: {}".format(mod, linkopts))

    rctx.file("BUILD.bazel", _BUILD.format(
        version = version,
        mod = mod,
        includes = _list(["sysroot" + d for d in includes]),
        linkopts = _list(linkopts),
        cpu = {"aarch64": "aarch64", "amd64": "x86_64", "arm64": "aarch64", "x86_64": "x86_64"}.get(rctx.os.arch, rctx.os.arch),
    ))
    rctx.file("defs.bzl", _DEFS.format(
        version = repr(version),
        copts = _list(copts, ""),
        linkopts = _list(linkopts, ""),
        include_dirs = _list(includes, ""),
    ))

_BUILD = """\
# Generated by //dpdk:pkg_config.bzl from `pkg-config {mod}` (version {version}).

exports_files(["defs.bzl"])

cc_library(
    name = "libdpdk",
    hdrs = glob(
        ["sysroot/**/*.h"],
        allow_empty = True,
    ),
    includes = {includes},
    linkopts = {linkopts},
    # The libraries pkg-config found are for the machine Bazel runs on:
    # targets of another CPU (e.g. --platforms=//:aarch64) skip DPDK.
    target_compatible_with = ["@platforms//cpu:{cpu}"],
    visibility = ["//visibility:public"],
)
"""

_BUILD_MISSING = """\
# Generated by //dpdk:pkg_config.bzl: DPDK is missing ({why}).

exports_files(["defs.bzl"])

cc_library(
    name = "libdpdk",
    target_compatible_with = ["@platforms//:incompatible"],
    visibility = ["//visibility:public"],
)
"""

_DEFS = """\
\"\"\"DPDK as pkg-config reported it at fetch time (generated by //dpdk:pkg_config.bzl).\"\"\"

# pkg-config --modversion (None: DPDK missing and DPDK_OPTIONAL set).
VERSION = {version}

# pkg-config --cflags without the include directories: flags CcInfo cannot
# carry, for the copts of cgo code that includes DPDK headers.
COPTS = {copts}

# pkg-config --libs (also :libdpdk's linkopts).
LINKOPTS = {linkopts}

# The include directories of pkg-config --cflags, minus the compiler's own
# (symlinked under sysroot/ and passed by :libdpdk's includes).
INCLUDE_DIRS = {include_dirs}
"""

dpdk_pkg_config = repository_rule(
    implementation = _dpdk_pkg_config_impl,
    doc = "Exposes the system DPDK, found with pkg-config at fetch time, as `:libdpdk` and `defs.bzl`.",
    attrs = {
        "module": attr.string(
            default = "libdpdk",
            doc = "The pkg-config module to query.",
        ),
        "pkg_config": attr.string(
            default = "pkg-config",
            doc = "The pkg-config program, looked up on PATH.",
        ),
        "system_include_dirs": attr.string_list(
            default = [
                "/usr/include",
                "/usr/local/include",
                "/usr/include/x86_64-linux-gnu",
                "/usr/include/aarch64-linux-gnu",
            ],
            doc = "Include directories the C compiler searches anyway; pkg-config's -I for these is dropped instead of symlinked.",
        ),
    },
    environ = ["DPDK_OPTIONAL", "PATH", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"],
    configure = True,
)
