// Package contract checks, from outside, what a go_vm_test owes Bazel: it
// runs the launchers of the guest tests in testdata/ (each with one
// expected outcome) with a fabricated Bazel test environment and asserts
// the exit code, the JUnit XML, shard coverage, the infrastructure failure
// file and the undeclared outputs.
//
// It runs under `tools/bazel test //tests/contract:contract_test` (the
// launchers come as data; each boots a guest, nine boots in all).
package contract

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Exit codes of the launcher (runner/exitcode.go).
const (
	exitPass       = 0
	exitTestFail   = 1
	exitTestPanic  = 2
	exitNoQEMU     = 66
	exitGuestPanic = 69
)

// launcher returns the path of a guest test's launcher (its .sh), from the
// env variable the BUILD file sets to the target's $(rootpaths).
func launcher(t *testing.T, name string) string {
	t.Helper()
	env := "CONTRACT_" + strings.ToUpper(name)
	paths := os.Getenv(env)
	if paths == "" || os.Getenv("TEST_SRCDIR") == "" {
		t.Skipf("%s not set: this test runs under `tools/bazel test //tests/contract:contract_test`", env)
	}
	for _, p := range strings.Fields(paths) {
		if strings.HasSuffix(p, ".sh") {
			return filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"), p)
		}
	}
	t.Fatalf("%s = %q has no launcher (.sh)", env, paths)
	return ""
}

// run is one launcher run and what it left behind.
type run struct {
	code           int
	stdout, stderr string
	dir            string // holds test.xml, outputs/, infra, shard, tmp/
	xml            suites
	xmlRaw         string
	sigtermed      bool // the launcher got the SIGTERM launchOpts asked for
}

type suites struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message  string `xml:"message,attr"`
				Contents string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message  string `xml:"message,attr"`
				Contents string `xml:",chardata"`
			} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// cases returns "name=state" for every testcase, sorted; state is pass,
// fail, error or skip.
func (r *run) cases() []string {
	var out []string
	for _, s := range r.xml.Suites {
		for _, c := range s.Cases {
			state := "pass"
			switch {
			case c.Failure != nil:
				state = "fail"
			case c.Error != nil:
				state = "error"
			case c.Skipped != nil:
				state = "skip"
			}
			out = append(out, c.Name+"="+state)
		}
	}
	sort.Strings(out)
	return out
}

// message returns the failure or error message and contents of a testcase.
func (r *run) message(name string) string {
	for _, s := range r.xml.Suites {
		for _, c := range s.Cases {
			if c.Name != name {
				continue
			}
			if c.Failure != nil {
				return c.Failure.Message + "\n" + c.Failure.Contents
			}
			if c.Error != nil {
				return c.Error.Message + "\n" + c.Error.Contents
			}
		}
	}
	return ""
}

var cacheOnce sync.Once
var cacheDir string

// launch runs a launcher with a Bazel-like test environment plus extra.
func launch(t *testing.T, name string, extra map[string]string) *run {
	t.Helper()
	return launchWith(t, name, extra, launchOpts{})
}

// launchOpts are what a Bazel test run may add: test arguments, and
// Bazel's SIGTERM at TEST_TIMEOUT.
type launchOpts struct {
	args []string
	// sigterm, if set, is when the launcher gets SIGTERM, as Bazel sends
	// it at TEST_TIMEOUT.
	sigterm time.Duration
}

// launchWith is launch with test arguments and a SIGTERM.
func launchWith(t *testing.T, name string, extra map[string]string, lo launchOpts) *run {
	t.Helper()
	exe := launcher(t, name)
	cacheOnce.Do(func() {
		// Host facts (QEMU capabilities, accelerator canary) shared by the
		// runs of this test, as RULES_GO_VM_CACHE would.
		cacheDir = os.Getenv("RULES_GO_VM_CACHE")
		if cacheDir == "" {
			cacheDir = filepath.Join(os.Getenv("TEST_TMPDIR"), "vm-cache")
		}
	})
	dir := t.TempDir()
	for _, d := range []string{"outputs", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"PATH":                             os.Getenv("PATH"),
		"HOME":                             os.Getenv("HOME"),
		"RUNFILES_DIR":                     os.Getenv("TEST_SRCDIR"),
		"RULES_GO_VM_CACHE":                cacheDir,
		"XML_OUTPUT_FILE":                  filepath.Join(dir, "test.xml"),
		"TEST_UNDECLARED_OUTPUTS_DIR":      filepath.Join(dir, "outputs"),
		"TEST_INFRASTRUCTURE_FAILURE_FILE": filepath.Join(dir, "infra"),
		"TEST_TMPDIR":                      filepath.Join(dir, "tmp"),
		"TEST_TIMEOUT":                     "300",
		"TEST_TARGET":                      "//tests/contract/testdata:" + name + "_vm_test",
	}
	for k, v := range extra {
		env[k] = v
	}
	cmd := exec.Command(exe, lo.args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	exited := make(chan struct{})
	var termed atomic.Bool
	if lo.sigterm > 0 {
		go func() {
			select {
			case <-time.After(lo.sigterm):
				termed.Store(true)
				_ = cmd.Process.Signal(syscall.SIGTERM)
			case <-exited:
			}
		}()
	}
	err := cmd.Wait()
	close(exited)
	r := &run{stdout: stdout.String(), stderr: stderr.String(), dir: dir, sigtermed: termed.Load()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	t.Logf("%s: exit %d after %v", name, r.code, time.Since(start).Round(time.Millisecond))
	b, err := os.ReadFile(env["XML_OUTPUT_FILE"])
	if err != nil {
		t.Fatalf("%s: no XML_OUTPUT_FILE: %v\nstderr:\n%s", name, err, r.stderr)
	}
	r.xmlRaw = string(b)
	if err := xml.Unmarshal(b, &r.xml); err != nil {
		t.Fatalf("%s: XML_OUTPUT_FILE does not parse: %v\n%s", name, err, b)
	}
	return r
}

// check asserts the exit code, the testcases and the infra file.
func (r *run) check(t *testing.T, code int, cases []string, infra bool) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	cases = slices.Sorted(slices.Values(cases))
	if got := r.cases(); !slices.Equal(got, cases) {
		t.Errorf("testcases\n got %q\nwant %q\nXML:\n%s", got, cases, r.xmlRaw)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "infra"))
	switch {
	case infra && err != nil:
		t.Errorf("no TEST_INFRASTRUCTURE_FAILURE_FILE: %v", err)
	case !infra && err == nil:
		t.Errorf("TEST_INFRASTRUCTURE_FAILURE_FILE written for a test failure: %s", b)
	}
	if strings.ContainsRune(r.stdout, 0x16) {
		t.Errorf("test2json markers reached stdout")
	}
}

// output reads an undeclared output.
func (r *run) output(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "outputs", name))
	if err != nil {
		t.Errorf("undeclared output %s: %v", name, err)
	}
	return string(b)
}

func TestPass(t *testing.T) {
	t.Parallel()
	r := launch(t, "pass", nil)
	r.check(t, exitPass, []string{
		"TestCoverageEnv=skip", "TestInGuest=pass", "TestSlowish=pass", "TestSubtests=pass", "TestSubtests/one=pass",
		"TestSubtests/three=pass", "TestSubtests/three/deeper=pass", "TestSubtests/two=skip",
	}, false)
	if !strings.Contains(r.stdout, "=== RUN   TestInGuest") || !strings.Contains(r.stdout, "in the guest") {
		t.Errorf("stdout is not the test's verbose output:\n%s", r.stdout)
	}
	// One suite per top-level test, named <label as a path>.<Test>, sorted
	// (TestCoverageEnv first).
	if s := r.xml.Suites[1].Name; s != "tests/contract/testdata/pass_vm_test.TestInGuest" {
		t.Errorf("second suite %q", s)
	}
	// The kernel is quiet: its log has few lines, all timestamped.
	if c := r.output(t, "console.log"); !regexp.MustCompile(`(?m)^\[ *\d+\.\d+\] `).MatchString(c) {
		t.Errorf("console.log has no kernel log:\n%.2000s", c)
	}
	if q := r.output(t, "qemu-command.txt"); !strings.Contains(q, "qemu-system-") {
		t.Errorf("qemu-command.txt: %q", q)
	}
	log := r.output(t, "runner.log")
	for _, want := range []string{"accel ", "timings: host boot", "result: PASS"} {
		if !strings.Contains(log, want) {
			t.Errorf("runner.log lacks %q:\n%s", want, log)
		}
	}
	if m := regexp.MustCompile(`host overhead \(total - guest clock\) (\S+)`).FindStringSubmatch(log); m != nil {
		t.Logf("host overhead: %s", m[1])
	}
	if j := r.output(t, "test.json"); !strings.Contains(j, `"Action":"pass","Package":"tests/contract/testdata/pass_vm_test","Test":"TestInGuest"`) {
		t.Errorf("test.json lacks the pass event of TestInGuest:\n%.3000s", j)
	}
	// Nothing of the runner's state outside TEST_TMPDIR: no /tmp link left.
	links, _ := filepath.Glob("/tmp/vmtest-*")
	for _, l := range links {
		if dst, err := os.Readlink(l); err == nil && strings.HasPrefix(dst, r.dir) {
			t.Errorf("%s -> %s left behind", l, dst)
		}
	}
}

// TestCoverage: under `bazel coverage` (COVERAGE_DIR set by
// collect_coverage.sh) the guest test gets a go_test's coverage variables,
// with a guest COVERAGE_DIR, and what it writes there lands in the host's
// COVERAGE_DIR, where Bazel's LCOV merger looks.
func TestCoverage(t *testing.T) {
	t.Parallel()
	cov := t.TempDir()
	r := launch(t, "pass", map[string]string{"COVERAGE_DIR": cov, "TESTBRIDGE_TEST_ONLY": "TestCoverageEnv"})
	r.check(t, exitPass, []string{"TestCoverageEnv=pass"}, false)
	b, err := os.ReadFile(filepath.Join(cov, "guest.dat"))
	if want := "COVERAGE=1 COVERAGE_DIR=/invm/coverage COVERAGE_OUTPUT_FILE=/tmp/invm-coverage.dat\n"; err != nil || string(b) != want {
		t.Errorf("guest.dat in COVERAGE_DIR: %q (%v), want %q", b, err, want)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "outputs", "invm-coverage")); err == nil {
		t.Error("the coverage files also landed in the undeclared outputs")
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	r := launch(t, "pass", map[string]string{"TESTBRIDGE_TEST_ONLY": "TestSubtests,-TestSubtests/two"})
	r.check(t, exitPass, []string{
		"TestSubtests=pass", "TestSubtests/one=pass", "TestSubtests/three=pass", "TestSubtests/three/deeper=pass",
	}, false)
}

func TestFail(t *testing.T) {
	t.Parallel()
	r := launch(t, "fail", nil)
	r.check(t, exitTestFail, []string{"TestFails=fail", "TestFails/broken=fail", "TestFails/fine=pass", "TestOK=pass"}, false)
	if m := r.message("TestFails/broken"); !strings.Contains(m, "contract: expected failure") {
		t.Errorf("failure of TestFails/broken: %q", m)
	}
}

func TestPanic(t *testing.T) {
	t.Parallel()
	r := launch(t, "panic", nil)
	r.check(t, exitTestPanic, []string{"TestBeforePanic=pass", "TestPanics=fail"}, false)
	if m := r.message("TestPanics"); !strings.Contains(m, "contract: expected panic") {
		t.Errorf("failure of TestPanics lacks the panic: %q", m)
	}
}

// Bazel's timeout, as a go_test meets it: the hanging test has the whole
// TEST_TIMEOUT (the launcher sets no -test.timeout of its own), Bazel's
// SIGTERM at TEST_TIMEOUT (which Bazel reports as TIMEOUT) makes the guest
// test dump its goroutine stacks into the log, and the XML says the hanging
// tests were interrupted. Not an infrastructure failure.
func TestBazelTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 20 * time.Second
	r := launchWith(t, "hang", map[string]string{"TEST_TIMEOUT": "20"}, launchOpts{sigterm: timeout})
	if !r.sigtermed {
		t.Fatalf("the launcher exited (%d) before Bazel's SIGTERM at TEST_TIMEOUT: the test did not get its whole timeout\n%s%s", r.code, r.stdout, r.stderr)
	}
	r.check(t, r.code, []string{"TestHangs=fail", "TestHangs/forever=fail", "TestQuick=pass"}, false)
	if r.code == 0 {
		t.Errorf("exit code 0 after a SIGTERM")
	}
	out := r.stdout + r.stderr
	for _, want := range []string{"SIGQUIT: quit", "goroutine ", ".TestHangs.func1(", "asking the guest for the test's goroutine stacks"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q (the guest test's goroutine stacks):\n%s", want, out)
		}
	}
	if strings.Contains(out, "panic: test timed out") {
		t.Errorf("a -test.timeout fired before Bazel's timeout:\n%s", out)
	}
	if m := r.message("TestHangs/forever"); !strings.Contains(m, "Interrupted") {
		t.Errorf("TestHangs/forever: %q", m)
	}
}

// An explicit -test.timeout in the test's args behaves as the user asked:
// the test's own timeout panic, a test failure (exit 2), the hanging tests
// reported as interrupted.
func TestOwnTimeout(t *testing.T) {
	t.Parallel()
	r := launchWith(t, "hang", map[string]string{"TEST_TIMEOUT": "60"}, launchOpts{args: []string{"-test.timeout=8s"}})
	r.check(t, exitTestPanic, []string{"TestHangs=error", "TestHangs/forever=error", "TestQuick=pass"}, false)
	if m := r.message("TestHangs/forever"); !strings.Contains(m, "Interrupted") {
		t.Errorf("TestHangs/forever: %q", m)
	}
	if !strings.Contains(r.stderr+r.stdout, "panic: test timed out after 8s") {
		t.Errorf("no timeout panic in the output")
	}
}

// The test kills the guest's init: the kernel panics mid-test. No verdict,
// but the XML fails the running test with the reason and the console tail;
// it is the test's doing, not an infrastructure failure.
func TestKernelPanic(t *testing.T) {
	t.Parallel()
	r := launch(t, "crash", nil)
	r.check(t, exitGuestPanic, []string{"TestBeforeCrash=pass", "TestCrashesKernel=fail"}, false)
	m := r.message("TestCrashesKernel")
	// (The test's last log line may die with init before it is sent.)
	for _, want := range []string{"Interrupted: guest kernel panic", "=== RUN   TestCrashesKernel", "Kernel panic - not syncing"} {
		if !strings.Contains(m, want) {
			t.Errorf("failure of TestCrashesKernel lacks %q:\n%s", want, m)
		}
	}
}

// No QEMU: nothing ran. An infrastructure failure, and one testcase named
// after the target says so.
func TestInfrastructureFailure(t *testing.T) {
	t.Parallel()
	r := launch(t, "pass", map[string]string{"INVM_QEMU": "/nonexistent/qemu-system-x86_64"})
	r.check(t, exitNoQEMU, []string{"//tests/contract/testdata:pass_vm_test=fail"}, true)
	b, _ := os.ReadFile(filepath.Join(r.dir, "infra"))
	if !strings.Contains(string(b), "no usable QEMU") {
		t.Errorf("infrastructure failure file: %q", b)
	}
	if m := r.message("//tests/contract/testdata:pass_vm_test"); !strings.Contains(m, "infrastructure failure") {
		t.Errorf("testcase message: %q", m)
	}
}

// Three shards of seven tests: every test runs in exactly one shard, each
// shard runs some, and each run touches the shard status file.
func TestShards(t *testing.T) {
	t.Parallel()
	const total = 3
	seen := map[string]int{}
	for i := range total {
		status := filepath.Join(t.TempDir(), "shard-status")
		r := launch(t, "shard", map[string]string{
			"TEST_TOTAL_SHARDS":      fmt.Sprint(total),
			"TEST_SHARD_INDEX":       fmt.Sprint(i),
			"TEST_SHARD_STATUS_FILE": status,
		})
		if r.code != exitPass {
			t.Errorf("shard %d: exit %d\n%s", i, r.code, r.stderr)
		}
		if _, err := os.Stat(status); err != nil {
			t.Errorf("shard %d: TEST_SHARD_STATUS_FILE not touched: %v", i, err)
		}
		cases := r.cases()
		if len(cases) == 0 {
			t.Errorf("shard %d ran no test", i)
		}
		for _, c := range cases {
			name, state, _ := strings.Cut(c, "=")
			if state != "pass" {
				t.Errorf("shard %d: %s", i, c)
			}
			seen[name]++
		}
		t.Logf("shard %d: %q", i, cases)
	}
	for n := range 7 {
		name := fmt.Sprintf("TestShard%d", n)
		if seen[name] != 1 {
			t.Errorf("%s ran in %d shards, want exactly 1", name, seen[name])
		}
		delete(seen, name)
	}
	if len(seen) > 0 {
		t.Errorf("unexpected tests: %v", seen)
	}
}
