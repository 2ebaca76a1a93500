"""`go_host_test`: a go_test that runs on the machine Bazel runs on."""

load("@io_bazel_rules_go//go:def.bzl", "go_test")
load("@platforms//host:constraints.bzl", "HOST_CONSTRAINTS")

def go_host_test(name, target_compatible_with = [], **kwargs):
    """A go_test that only makes sense on the host's own platform.

    Under another target platform (e.g. `--platforms=//:aarch64` on an x86_64 machine) the test is
    incompatible, so Bazel reports it as skipped instead of trying to run a binary the host cannot
    execute. Guest tests use `go_vm_test` instead. Gazelle emits it for every go_test of this
    repository (`# gazelle:map_kind` in the root BUILD file).

    Args:
      name: the test's name.
      target_compatible_with: extra constraints; the host's CPU and OS are added.
      **kwargs: go_test attributes.
    """
    go_test(
        name = name,
        target_compatible_with = target_compatible_with + HOST_CONSTRAINTS,
        **kwargs
    )
