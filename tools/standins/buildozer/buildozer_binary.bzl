"""Stand-in for buildozer's binary extension: `bazel mod tidy` is not supported offline."""

def _impl(rctx):
    rctx.file("BUILD.bazel", "# buildozer is not available in the offline toolchain root.\n")

_repo = repository_rule(implementation = _impl)

def _ext_impl(_mctx):
    _repo(name = "buildozer_binary")

buildozer_binary = module_extension(implementation = _ext_impl)
