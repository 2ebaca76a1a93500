"""Stand-in for @package_metadata's `package_metadata` rule (see tools/standins/README.md).

Gazelle's go_deps writes a `package_metadata` target into every Go dependency's
root package and names it in `default_package_metadata`. This stand-in accepts
the same attributes and records nothing.
"""

def _impl(_ctx):
    return []

_package_metadata = rule(
    implementation = _impl,
    attrs = {
        "attributes": attr.label_list(doc = "Ignored."),
        "purl": attr.string(doc = "Package URL of the package (ignored)."),
    },
    doc = "Accepts package metadata and records nothing.",
)

def package_metadata(name, **kwargs):
    # applicable_licenses = [] breaks the cycle through default_package_metadata.
    _package_metadata(name = name, applicable_licenses = [], **kwargs)
