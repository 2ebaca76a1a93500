//go:build bazel

// Package e2e runs Bazel on a user's module (testdata/module) that depends on
// this repository by bazel_dep + local_path_override, exactly as a user
// would, and checks what the user sees:
//
//   - a passing go_vm_test is PASSED and a failing one FAILED (a test
//     failure, not a build error);
//   - --platforms=@rules_go_vm//:aarch64 boots an aarch64 guest;
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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// defaultBazelrc is where tools/setup writes the toolchain root's bazelrc.
const defaultBazelrc = "/opt/rules_go_vm/bazelrc"

// Bazel's exit codes (bazel.build/run/scripts).
const (
	exitOK          = 0
	exitTestsFailed = 3
)

// bazel runs one Bazel command in a private output root.
type bazel struct {
	t       *testing.T
	binary  string
	rc      string
	root    string // --output_user_root
	workdir string
}

func (b *bazel) run(args ...string) (string, int) {
	b.t.Helper()
	startup := []string{"--output_user_root=" + b.root}
	if b.rc != "" {
		startup = append(startup, "--bazelrc="+b.rc)
	}
	cmd := exec.Command(b.binary, append(startup, args...)...)
	cmd.Dir = b.workdir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		b.t.Fatalf("bazel %s: %v", strings.Join(args, " "), err)
	}
	// On stdout, so that test.log always has what ran and how long it took.
	fmt.Printf("e2e: bazel %s → exit %d in %v\n", strings.Join(args, " "), code, took.Round(time.Millisecond))
	return out.String(), code
}

func TestUserModule(t *testing.T) {
	repo := repoRoot(t)
	b := &bazel{t: t, binary: os.Getenv("RULES_GO_VM_E2E_BAZEL"), rc: os.Getenv("RULES_GO_VM_E2E_BAZELRC")}
	if b.binary == "" {
		var err error
		if b.binary, err = exec.LookPath("bazel"); err != nil {
			t.Fatalf("no bazel on PATH (%v): run this test through tools/bazel, or set RULES_GO_VM_E2E_BAZEL", err)
		}
	}
	if b.rc == "" {
		if _, err := os.Stat(defaultBazelrc); err == nil {
			b.rc = defaultBazelrc
		}
	}
	// A short output root: Bazel's own paths below it get long.
	root, err := os.MkdirTemp("", "rgv-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	b.root = root
	b.workdir = filepath.Join(t.TempDir(), "module")
	t.Cleanup(func() {
		b.run("shutdown")
		removeAll(t, root)
	})
	copyModule(t, filepath.Join(repo, "tests/e2e/testdata/module"), b.workdir, repo)
	testlogs := ""

	t.Run("pass and fail", func(t *testing.T) {
		out, code := b.run("test", "--symlink_prefix=/", "--test_output=errors", "--nocache_test_results", "//...")
		if code != exitTestsFailed {
			t.Fatalf("bazel test //... exited %d, want %d (tests failed):\n%s", code, exitTestsFailed, tail(out))
		}
		for target, status := range map[string]string{"//:pass_vm_test": "PASSED", "//:fail_vm_test": "FAILED"} {
			if !regexp.MustCompile(regexp.QuoteMeta(target) + `\s+(\(cached\)\s+)?` + status + `\b`).MatchString(out) {
				t.Errorf("%s is not reported %s:\n%s", target, status, tail(out))
			}
		}
		if !strings.Contains(out, "E2E-FAIL: this test fails on purpose") {
			t.Errorf("the failing test's own message is not in the output:\n%s", tail(out))
		}
		info, code := b.run("info", "bazel-testlogs")
		if code != exitOK {
			t.Fatalf("bazel info: exit %d\n%s", code, info)
		}
		testlogs = lastLine(info)
		checkGuestLine(t, filepath.Join(testlogs, "pass_vm_test/test.log"), "goarch=amd64 machine=x86_64", "edit=original")
	})

	t.Run("a hanging test ends TIMEOUT with its stacks", func(t *testing.T) {
		const timeout = 20 // seconds: as a go_test, the test gets all of it
		out, code := b.run("test", "--symlink_prefix=/", "--test_output=errors", "--nocache_test_results",
			fmt.Sprintf("--test_timeout=%d", timeout), "//:hang_vm_test")
		if code != exitTestsFailed {
			t.Fatalf("bazel test //:hang_vm_test exited %d, want %d:\n%s", code, exitTestsFailed, tail(out))
		}
		if !regexp.MustCompile(`//:hang_vm_test\s+TIMEOUT in ` + strconv.Itoa(timeout)).MatchString(out) {
			t.Errorf("//:hang_vm_test is not reported TIMEOUT after %d s:\n%s", timeout, tail(out))
		}
		info, code := b.run("info", "bazel-testlogs")
		if code != exitOK {
			t.Fatalf("bazel info: exit %d\n%s", code, info)
		}
		log, err := os.ReadFile(filepath.Join(lastLine(info), "hang_vm_test/test.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"E2E-HANG", "SIGQUIT: quit", ".TestHangs(", "goroutine "} {
			if !strings.Contains(string(log), want) {
				t.Errorf("test.log lacks %q (the guest test's goroutine stacks):\n%s", want, tail(string(log)))
			}
		}
		if strings.Contains(string(log), "panic: test timed out") {
			t.Errorf("a -test.timeout fired before Bazel's timeout:\n%s", tail(string(log)))
		}
	})

	t.Run("edit rebuilds no kernel or base layer", func(t *testing.T) {
		src := filepath.Join(b.workdir, "pass_test.go")
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
		out, code := b.run("test", "--symlink_prefix=/", "--execution_log_json_file="+execLog, "//:pass_vm_test")
		if code != exitOK {
			t.Fatalf("bazel test //:pass_vm_test after the edit: exit %d\n%s", code, tail(out))
		}
		counts := countMnemonics(t, execLog)
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
		out, code := b.run("test", "--symlink_prefix=/", "--nocache_test_results", "--platforms=@rules_go_vm//:aarch64", "//:pass_vm_test")
		if code != exitOK {
			t.Fatalf("bazel test --platforms=@rules_go_vm//:aarch64 //:pass_vm_test: exit %d\n%s", code, tail(out))
		}
		info, code := b.run("info", "--platforms=@rules_go_vm//:aarch64", "bazel-testlogs")
		if code != exitOK {
			t.Fatalf("bazel info: exit %d\n%s", code, info)
		}
		checkGuestLine(t, filepath.Join(lastLine(info), "pass_vm_test/test.log"), "goarch=arm64 machine=aarch64")
	})
}

// repoRoot finds the checkout under test through a runfile (a symlink to
// the source tree: the test runs without a sandbox).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_SRCDIR")
	if dir == "" {
		t.Fatal("TEST_SRCDIR is not set: run this test with tools/bazel test //tests/e2e:e2e_test")
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dir, os.Getenv("TEST_WORKSPACE"), "MODULE.bazel"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(real)
}

// copyModule copies the module and points its local_path_override at repo.
func copyModule(t *testing.T, from, to, repo string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "MODULE.bazel" {
			old := []byte(`path = "../../../.."`)
			if !bytes.Contains(b, old) {
				return fmt.Errorf("%s: no %s to rewrite", p, old)
			}
			b = bytes.Replace(b, old, fmt.Appendf(nil, "path = %q", repo), 1)
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkGuestLine checks that the test log has the guest's E2E-GUEST line
// with every want in it.
func checkGuestLine(t *testing.T, log string, want ...string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`E2E-GUEST [^\n]*`).Find(b)
	if m == nil {
		t.Fatalf("%s has no E2E-GUEST line:\n%s", log, tail(string(b)))
	}
	for _, w := range want {
		if !bytes.Contains(m, []byte(w)) {
			t.Errorf("guest line %q lacks %q", m, w)
		}
	}
}

// countMnemonics counts the spawns per mnemonic in a Bazel JSON execution
// log (a stream of SpawnExec objects).
func countMnemonics(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int{}
	dec := json.NewDecoder(f)
	for {
		var spawn struct {
			Mnemonic string `json:"mnemonic"`
		}
		if err := dec.Decode(&spawn); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		counts[spawn.Mnemonic]++
	}
	if len(counts) == 0 {
		t.Fatalf("%s lists no actions at all: cannot tell what was rebuilt", path)
	}
	return counts
}

// removeAll deletes a Bazel output root (Bazel leaves read-only dirs).
func removeAll(t *testing.T, dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func tail(s string) string {
	const n = 6000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
