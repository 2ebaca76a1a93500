//go:build bazel

// Package e2e runs Bazel on a user's module (testdata/module) that depends on
// this repository by bazel_dep + local_path_override, exactly as a user
// would, and checks what the user sees:
//
//   - a passing go_vm_test is PASSED and a failing one FAILED (a test
//     failure, not a build error);
//   - a DPDK test written as a user writes it (the dependency, NICs,
//     hugepages, vfio_nics; no pure, copts or linkopts) forwards frames
//     through DPDK's e1000 PMD;
//   - a guest_kernel (the default kernel plus options, one label for both
//     arches) boots a test that pings across a veth pair into a new network
//     namespace, and its configuration has the added option;
//   - --platforms=@rules_go_vm//:aarch64 boots an aarch64 guest, DPDK and
//     the guest_kernel too;
//   - editing a test file rebuilds that test's layer and no kernel or base
//     layer action (counted from --execution_log_json_file).
//
// It needs Bazel >= 7 ("bazel" on PATH, or $RULES_GO_VM_E2E_BAZEL) and, on
// this project's machines, the toolchain root's bazelrc (registry, caches),
// found at /opt/rules_go_vm/bazelrc or $RULES_GO_VM_E2E_BAZELRC. Missing
// either is a failure, never a skip.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/tests/internal/nestedbazel"
)

// kernelConfigDownload has Bazel download the guest_kernel's config, which
// the test reads: it is no top-level output, and Bazel 7 does not download
// those from a (disk) cache hit by default.
const kernelConfigDownload = "--remote_download_regex=.*/netns_kernel/config$"

func TestUserModule(t *testing.T) {
	repo, err := nestedbazel.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binary, rc, err := nestedbazel.Find()
	if err != nil {
		t.Fatal(err)
	}
	// A short output root: Bazel's own paths below it get long.
	root, err := os.MkdirTemp("", "rgv-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// On stdout, so that test.log always has what ran and how long it took.
	b := &nestedbazel.Bazel{Binary: binary, Bazelrc: rc, Root: root, Dir: filepath.Join(t.TempDir(), "module"), Prefix: "e2e", Log: os.Stdout}
	t.Cleanup(func() {
		if err := b.Shutdown(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := nestedbazel.RemoveAll(root); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	if err := nestedbazel.CopyTree(filepath.Join(repo, "tests/e2e/testdata/module"), b.Dir, repo); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, args ...string) (string, int) {
		t.Helper()
		out, code, err := b.Run(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out, code
	}
	info := func(t *testing.T, key string, flags ...string) string {
		t.Helper()
		v, err := b.Info(key, flags...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	testlogs := ""

	t.Run("pass and fail", func(t *testing.T) {
		out, code := run(t, "test", "--symlink_prefix=/", "--test_output=errors", "--nocache_test_results", kernelConfigDownload, "//...")
		if code != nestedbazel.ExitTestsFailed {
			t.Fatalf("bazel test //... exited %d, want %d (tests failed):\n%s", code, nestedbazel.ExitTestsFailed, nestedbazel.Tail(out))
		}
		if err := nestedbazel.CheckStatus(out, map[string]string{"//:pass_vm_test": "PASSED", "//:fail_vm_test": "FAILED", "//:dpdk_vm_test": "PASSED", "//:netns_vm_test": "PASSED"}); err != nil {
			t.Errorf("%v\n%s", err, nestedbazel.Tail(out))
		}
		if !strings.Contains(out, "E2E-FAIL: this test fails on purpose") {
			t.Errorf("the failing test's own message is not in the output:\n%s", nestedbazel.Tail(out))
		}
		testlogs = info(t, "bazel-testlogs")
		checkGuestLine(t, filepath.Join(testlogs, "pass_vm_test/test.log"), "goarch=amd64 machine=x86_64", "edit=original")
		checkLogLine(t, filepath.Join(testlogs, "dpdk_vm_test/test.log"), "E2E-DPDK", "1000 frames forwarded through net_e1000_em")
		checkLogLine(t, filepath.Join(testlogs, "netns_vm_test/test.log"), "E2E-NETNS", "machine=amd64", "ping both ways ok")
		checkKernelConfig(t, filepath.Join(info(t, "bazel-bin"), "netns_kernel/config"), "CONFIG_NET_SCH_NETEM=y", "CONFIG_VETH=y")
		checkStarts(t, testlogs)
	})

	t.Run("a hanging test ends TIMEOUT with its stacks", func(t *testing.T) {
		const timeout = 20 // seconds: as a go_test, the test gets all of it
		out, code := run(t, "test", "--symlink_prefix=/", "--test_output=errors", "--nocache_test_results",
			fmt.Sprintf("--test_timeout=%d", timeout), "//:hang_vm_test")
		if code != nestedbazel.ExitTestsFailed {
			t.Fatalf("bazel test //:hang_vm_test exited %d, want %d:\n%s", code, nestedbazel.ExitTestsFailed, nestedbazel.Tail(out))
		}
		if !regexp.MustCompile(`//:hang_vm_test\s+TIMEOUT in ` + strconv.Itoa(timeout)).MatchString(out) {
			t.Errorf("//:hang_vm_test is not reported TIMEOUT after %d s:\n%s", timeout, nestedbazel.Tail(out))
		}
		log, err := os.ReadFile(filepath.Join(info(t, "bazel-testlogs"), "hang_vm_test/test.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"E2E-HANG", "SIGQUIT: quit", ".TestHangs(", "goroutine "} {
			if !strings.Contains(string(log), want) {
				t.Errorf("test.log lacks %q (the guest test's goroutine stacks):\n%s", want, nestedbazel.Tail(string(log)))
			}
		}
		if strings.Contains(string(log), "panic: test timed out") {
			t.Errorf("a -test.timeout fired before Bazel's timeout:\n%s", nestedbazel.Tail(string(log)))
		}
	})

	t.Run("edit rebuilds no kernel or base layer", func(t *testing.T) {
		src := filepath.Join(b.Dir, "pass_test.go")
		body, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		edited := bytes.Replace(body, []byte(`const edit = "original"`), []byte(`const edit = "edited"`), 1)
		if bytes.Equal(edited, body) {
			t.Fatal("pass_test.go has no `const edit = \"original\"` to edit")
		}
		if err := os.WriteFile(src, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		execLog := filepath.Join(t.TempDir(), "exec.json")
		out, code := run(t, "test", "--symlink_prefix=/", "--execution_log_json_file="+execLog, "//:pass_vm_test")
		if code != nestedbazel.ExitOK {
			t.Fatalf("bazel test //:pass_vm_test after the edit: exit %d\n%s", code, nestedbazel.Tail(out))
		}
		spawns, err := nestedbazel.ReadSpawns(execLog)
		if err != nil {
			t.Fatalf("%v: cannot tell what was rebuilt", err)
		}
		counts := nestedbazel.Count(spawns)
		fmt.Printf("e2e: actions run after editing pass_test.go: %v\n", counts)
		for _, m := range []string{"KernelBuild", "GuestBaseLayer"} {
			if counts[m] != 0 {
				t.Errorf("%d %s actions ran after editing a test file; want 0", counts[m], m)
			}
		}
		if counts["GuestTestLayer"] != 1 {
			t.Errorf("%d GuestTestLayer actions ran after editing a test file; want 1 (the edited test's)", counts["GuestTestLayer"])
		}
		if testlogs != "" {
			checkGuestLine(t, filepath.Join(testlogs, "pass_vm_test/test.log"), "machine=x86_64", "edit=edited")
		}
	})

	t.Run("aarch64", func(t *testing.T) {
		out, code := run(t, "test", "--symlink_prefix=/", "--nocache_test_results", "--platforms=@rules_go_vm//:aarch64", kernelConfigDownload, "//:pass_vm_test", "//:dpdk_vm_test", "//:netns_vm_test")
		if code != nestedbazel.ExitOK {
			t.Fatalf("bazel test --platforms=@rules_go_vm//:aarch64 //:pass_vm_test //:dpdk_vm_test //:netns_vm_test: exit %d\n%s", code, nestedbazel.Tail(out))
		}
		logs := info(t, "bazel-testlogs", "--platforms=@rules_go_vm//:aarch64")
		checkGuestLine(t, filepath.Join(logs, "pass_vm_test/test.log"), "goarch=arm64 machine=aarch64")
		checkLogLine(t, filepath.Join(logs, "dpdk_vm_test/test.log"), "E2E-DPDK", "1000 frames forwarded through net_e1000_em")
		checkLogLine(t, filepath.Join(logs, "netns_vm_test/test.log"), "E2E-NETNS", "machine=arm64", "ping both ways ok")
		checkKernelConfig(t, filepath.Join(info(t, "bazel-bin", "--platforms=@rules_go_vm//:aarch64"), "netns_kernel/config"), "CONFIG_NET_SCH_NETEM=y", "CONFIG_ARM64=y")
		checkStarts(t, logs)
	})
}

// checkKernelConfig checks that a kernel's final .config has every want
// line.
func checkKernelConfig(t *testing.T, config string, want ...string) {
	t.Helper()
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[l] = true
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("%s lacks %s", config, w)
		}
	}
}

// checkStarts checks how the user module's tests started (start = "auto",
// the default): the default VM restores the VM toolchain's shared
// template; a test with its own kernel, and one with NICs, boot cold and
// say why.
func checkStarts(t *testing.T, testlogs string) {
	t.Helper()
	checkLogLine(t, filepath.Join(testlogs, "pass_vm_test/test.log"), "invm: start ", "start snapshot (start = auto; template ")
	checkLogLine(t, filepath.Join(testlogs, "netns_vm_test/test.log"), "invm: start ", "start cold (start = auto, but the build made no template: the test's kernel is not the VM toolchain's")
	checkLogLine(t, filepath.Join(testlogs, "dpdk_vm_test/test.log"), "invm: start ", "start cold (start = auto, but a template cannot carry this VM: ")
}

// checkGuestLine checks that the test log has the guest's E2E-GUEST line
// with every want in it.
func checkGuestLine(t *testing.T, log string, want ...string) {
	t.Helper()
	checkLogLine(t, log, "E2E-GUEST", want...)
}

// checkLogLine checks that the test log has a line starting with tag (the
// first one) with every want in it.
func checkLogLine(t *testing.T, log, tag string, want ...string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(regexp.QuoteMeta(tag) + `[^\n]*`).Find(b)
	if m == nil {
		t.Fatalf("%s has no %s line:\n%s", log, tag, nestedbazel.Tail(string(b)))
	}
	for _, w := range want {
		if !bytes.Contains(m, []byte(w)) {
			t.Errorf("guest line %q lacks %q", m, w)
		}
	}
}
