"""Unit test of scaled_timeout: the Bazel timeout a go_vm_test gets for its TCG slowdown factor."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load(":vm_test.bzl", "scaled_timeout")

def _scaled_timeout_test_impl(ctx):
    env = unittest.begin(ctx)
    for size, timeout, scale, want in [
        ("", "", 1, "moderate"),  # medium → moderate, unscaled
        ("", "", 3, "long"),  # 300 s × 3 = 900 s
        ("small", "", 3, "moderate"),  # 60 s × 3 = 180 s → 300 s
        ("small", "", 5, "moderate"),  # 300 s exactly
        ("small", "", 6, "long"),
        ("", "short", 1, "short"),
        ("large", "", 3, "eternal"),  # 900 s × 3 = 2700 s
        ("enormous", "", 2, "eternal"),  # nothing is longer than eternal
        ("small", "long", 2, "eternal"),  # an explicit timeout wins over size
    ]:
        asserts.equals(env, want, scaled_timeout(size, timeout, scale), "size=%r timeout=%r scale=%d" % (size, timeout, scale))
    return unittest.end(env)

scaled_timeout_test = unittest.make(_scaled_timeout_test_impl)
