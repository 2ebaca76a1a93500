"""`dpdk_missing`: what //dpdk:libdpdk resolves to for a guest arch whose DPDK is missing.

`dpdk_libs` (repo.bzl) writes one per missing arch. Analysis of anything that
links it fails with a message naming the arch, the missing file and the fix;
with `--repo_env=DPDK_OPTIONAL=1` it is incompatible instead, so `//...`
skips what needs it.
"""

def _dpdk_missing_impl(ctx):
    if ctx.attr.optional:
        # Never analysed in practice: the macro makes it incompatible.
        return []
    fail(("DPDK for {} guests is missing: {}. Run tools/setup (tools/pins pins the DPDK it installs or " +
          "unpacks for {}), or pass --repo_env=DPDK_OPTIONAL=1 to skip the targets that need it.").format(
        ctx.attr.arch,
        ctx.attr.why,
        ctx.attr.arch,
    ))

_dpdk_missing = rule(
    implementation = _dpdk_missing_impl,
    doc = "Stands in for the DPDK of a guest arch that is missing: analysis fails saying so.",
    attrs = {
        "arch": attr.string(doc = "The guest arch (x86_64, aarch64).", mandatory = True),
        "optional": attr.bool(doc = "Do not fail (DPDK_OPTIONAL): the target is incompatible instead."),
        "why": attr.string(doc = "What is missing (a path).", mandatory = True),
    },
)

def dpdk_missing(name, optional, **kwargs):
    """A stand-in for a missing DPDK: failing at analysis, or incompatible when optional.

    Args:
      name: the target's name.
      optional: skip (incompatible with every platform) instead of failing.
      **kwargs: arch, why, visibility.
    """
    _dpdk_missing(
        name = name,
        optional = optional,
        target_compatible_with = ["@platforms//:incompatible"] if optional else [],
        **kwargs
    )
