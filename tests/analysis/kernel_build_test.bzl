"""Analysis tests of KernelBuild: it runs the kernel build toolchain's tools with that toolchain's environment only."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")

# An --action_env variable that Bazel's default shell environment would
# carry into an action that used it.
_PROBE = "RULES_GO_VM_ANALYSIS_PROBE"

# What //tests/analysis:fake_kernel_build declares.
_FAKE_ENV = {"LC_ALL": "C", "PATH": "/opt/fake-cc/bin:/opt/fake/bin:/opt/fake/perl"}
_FAKE_FLAGS = [
    "--make=/opt/fake/bin/make",
    "--tar=/opt/fake/bin/tar",
    "--xz=/opt/fake/bin/xz",
    "--patch=/opt/fake/bin/patch",
    "--host-cc=/opt/fake/bin/gcc",
    "--flex=/opt/fake/bin/flex",
    "--bison=/opt/fake/bin/bison",
    "--bc=/opt/fake/bin/bc",
    "--perl=/opt/fake/perl/perl",
]

def _kernel_build_action(env):
    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == "KernelBuild"]
    asserts.equals(env, 1, len(actions), "KernelBuild actions of the target")
    return actions[0] if actions else None

def _kernel_build_test_impl(ctx):
    env = analysistest.begin(ctx)
    action = _kernel_build_action(env)
    if action == None:
        return analysistest.end(env)
    asserts.equals(env, _FAKE_ENV, action.env, "the KernelBuild action's environment (the toolchain's, nothing else)")
    asserts.false(env, _PROBE in action.env, "--action_env reached KernelBuild: it uses the default shell environment")
    argv = action.argv
    for flag in _FAKE_FLAGS + ["--cc=" + ctx.attr.cc]:
        asserts.true(env, flag in argv, "kbuild's argv lacks %s: %s" % (flag, argv))
    for want in ctx.attr.args_want:
        asserts.true(env, want in argv, "kbuild's argv lacks %s: %s" % (want, argv))
    if ctx.attr.cache:
        asserts.true(env, "--cache" in argv and argv[argv.index("--cache") + 1] == ctx.attr.cache, "kbuild is not given --cache %s: %s" % (ctx.attr.cache, argv))
        asserts.false(env, "--scratch-cache" in argv, "--scratch-cache with a cache: %s" % argv)
    else:
        asserts.true(env, "--scratch-cache" in argv, "no cache but no --scratch-cache: %s" % argv)
        asserts.false(env, "--cache" in argv, "--cache without RULES_GO_VM_KERNEL_CACHE: %s" % argv)
    return analysistest.end(env)

_ATTRS = {
    "args_want": attr.string_list(doc = "More arguments kbuild must get."),
    "cache": attr.string(doc = "The kbuild cache the action must get (--cache), or \"\" for --scratch-cache."),
    "cc": attr.string(doc = "The --cc the action must get."),
}

_FAKE_TOOLCHAIN = str(Label("//tests/analysis:fake_kernel_build"))

kernel_build_test = analysistest.make(
    _kernel_build_test_impl,
    attrs = _ATTRS,
    config_settings = {
        "//command_line_option:action_env": [_PROBE + "=leaked"],
        "//command_line_option:extra_toolchains": [_FAKE_TOOLCHAIN],
    },
)

kernel_build_cached_test = analysistest.make(
    _kernel_build_test_impl,
    attrs = _ATTRS,
    config_settings = {
        "//command_line_option:action_env": [_PROBE + "=leaked", "RULES_GO_VM_KERNEL_CACHE=/probe/kernels"],
        "//command_line_option:extra_toolchains": [_FAKE_TOOLCHAIN],
    },
)

kernel_build_x86_64_test = analysistest.make(
    _kernel_build_test_impl,
    attrs = _ATTRS,
    config_settings = {
        "//command_line_option:action_env": [_PROBE + "=leaked"],
        "//command_line_option:extra_toolchains": [_FAKE_TOOLCHAIN],
        "//command_line_option:platforms": str(Label("//:x86_64")),
    },
)

kernel_build_aarch64_test = analysistest.make(
    _kernel_build_test_impl,
    attrs = _ATTRS,
    config_settings = {
        "//command_line_option:action_env": [_PROBE + "=leaked"],
        "//command_line_option:extra_toolchains": [_FAKE_TOOLCHAIN],
        "//command_line_option:platforms": str(Label("//:aarch64")),
    },
)
