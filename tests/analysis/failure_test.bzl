"""Analysis-time error tests: a bad go_vm_test attribute fails with the documented message."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:defs.bzl", "go_vm_test")

def _failure_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, ctx.attr.message)
    return analysistest.end(env)

failure_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = {
        "message": attr.string(doc = "A substring the analysis error must contain."),
    },
)

# The same, with the subject built for a riscv64 guest (no kernel for it).
riscv64_failure_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = {
        "message": attr.string(doc = "A substring the analysis error must contain."),
    },
    config_settings = {"//command_line_option:platforms": str(Label("//tests/analysis:riscv64"))},
)

def go_vm_test_failure(name, message, riscv64 = False, **attrs):
    """A go_vm_test with bad attributes (never built on its own) and a test that its analysis fails with message.

    Args:
      name: the test's name; the subject is `<name>_subject`.
      message: a substring of the expected analysis error.
      riscv64: analyze the subject for a riscv64 target platform.
      **attrs: go_vm_test VM attributes.
    """
    go_vm_test(
        name = name + "_subject",
        # Analysis never compiles it: any Go test source will do.
        srcs = ["//tests/hello:hello_test.go"],
        tags = ["manual"],
        **attrs
    )
    (riscv64_failure_test if riscv64 else failure_test)(
        name = name,
        message = message,
        target_under_test = ":" + name + "_subject",
    )

def _success_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    asserts.true(env, target[DefaultInfo].files_to_run.executable != None, "the go_vm_test analysed without a launcher")
    return analysistest.end(env)

success_test = analysistest.make(_success_test_impl)

def spec_case_tests(name, cases):
    """One analysis test per VM spec case (vmspec/vmspectest, via spec_cases.bzl).

    A valid case must analyse; an invalid one must fail with the case's "FIELD: MESSAGE",
    the words Gazelle and invm use for the same mistake.

    Args:
      name: prefix of the tests' names (`<name>_<case>_test`).
      cases: SPEC_CASES.
    """
    for case in cases:
        test = name + "_" + case["name"] + "_test"
        if case["error"]:
            go_vm_test_failure(name = test, message = case["error"], **case["attrs"])
            continue
        go_vm_test(
            name = test + "_subject",
            srcs = ["//tests/hello:hello_test.go"],
            tags = ["manual"],
            **case["attrs"]
        )
        success_test(name = test, target_under_test = ":" + test + "_subject")
