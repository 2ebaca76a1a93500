//go:build bazel

// Package remote runs a user's module (//tests/e2e's testdata/module, plus
// testdata/overlay) with Bazel against a Buildbarn cluster it starts on
// localhost (cluster_test.go: storage, scheduler, frontend, a plain worker
// pool and a KVM pool, the runners inside the toolchain root this test runs
// in), with `--config=remote_local` from this repository's .bazelrc: remote
// execution, no local fallback, no disk cache. It checks:
//
//   - the passing go_vm_test PASSES and the failing one FAILS with its own
//     message, and every spawn (the kernel, the layers, the tests, the Go
//     builds) ran remotely (--execution_log_json_file);
//   - a second run from a clean output base takes the test result from the
//     remote cache;
//   - an accel = "kvm" test runs on the KVM pool's worker and, where KVM does
//     not work (every worker here), ends as an infrastructure failure naming
//     the worker and the KVM probe's result;
//   - killing the worker that runs a test makes Bazel report the failure and
//     leaves no QEMU behind.
//
// It needs Bazel >= 7 (as //tests/e2e) and the Buildbarn binaries that
// tools/setup builds from ../shared/buildbarn ($RULES_GO_VM_BUILDBARN, else
// /var/lib/rules_go_vm/cache/buildbarn/bin). Missing any is a failure, never
// a skip.
package remote

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
	"strings"
	"testing"
	"time"
)

const (
	// defaultBazelrc is where tools/setup writes the toolchain root's bazelrc.
	defaultBazelrc = "/opt/rules_go_vm/bazelrc"
	// defaultBuildbarn is where tools/setup (tools/buildbarn) puts the binaries.
	defaultBuildbarn = "/var/lib/rules_go_vm/cache/buildbarn/bin"
)

// Bazel's exit codes (bazel.build/run/scripts).
const (
	exitOK          = 0
	exitTestsFailed = 3
)

// Bounds of the worker-kill case.
const (
	// qemuStartTimeout bounds the wait for the slow test's QEMU on the worker.
	qemuStartTimeout = 5 * time.Minute
	// reportTimeout bounds the wait for Bazel to report the killed worker
	// (the scheduler gives a worker a minute to come back).
	reportTimeout = 5 * time.Minute
	// qemuGoneTimeout bounds the wait for the killed worker's QEMU to end.
	qemuGoneTimeout = 15 * time.Second
)

// bazel runs Bazel commands in one output root.
type bazel struct {
	t       *testing.T
	binary  string
	rc      string
	root    string // --output_user_root
	workdir string
}

func (b *bazel) command(args ...string) *exec.Cmd {
	startup := []string{"--output_user_root=" + b.root}
	if b.rc != "" {
		startup = append(startup, "--bazelrc="+b.rc)
	}
	cmd := exec.Command(b.binary, append(startup, args...)...)
	cmd.Dir = b.workdir
	return cmd
}

func (b *bazel) run(args ...string) (string, int) {
	b.t.Helper()
	cmd := b.command(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	code := exitCode(b.t, cmd.Run())
	fmt.Printf("remote: bazel %s → exit %d in %v\n", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	return out.String(), code
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		t.Fatalf("bazel: %v", err)
	}
	return 0
}

func TestRemoteCluster(t *testing.T) {
	repo := repoRoot(t)
	binary := os.Getenv("RULES_GO_VM_E2E_BAZEL")
	if binary == "" {
		var err error
		if binary, err = exec.LookPath("bazel"); err != nil {
			t.Fatalf("no bazel on PATH (%v): run this test through tools/bazel, or set RULES_GO_VM_E2E_BAZEL", err)
		}
	}
	rc := os.Getenv("RULES_GO_VM_E2E_BAZELRC")
	if rc == "" {
		if _, err := os.Stat(defaultBazelrc); err == nil {
			rc = defaultBazelrc
		}
	}
	bin := os.Getenv("RULES_GO_VM_BUILDBARN")
	if bin == "" {
		bin = defaultBuildbarn
	}
	for _, b := range []string{"bb_storage", "bb_scheduler", "bb_worker", "bb_runner"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("no Buildbarn binary %s (%v): tools/setup builds them from the Buildbarn source snapshots "+
				"in ../shared/buildbarn next to the checkout (bb-storage, bb-remote-execution, bb-deployments "+
				".tar.gz; see tools/buildbarn); put them there and run tools/setup, or set $RULES_GO_VM_BUILDBARN "+
				"to a directory with bb_storage, bb_scheduler, bb_worker and bb_runner", b, err)
		}
	}
	logs := os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR")
	if logs == "" {
		logs = t.TempDir()
	}
	logs = filepath.Join(logs, "cluster")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Short paths: the runners listen on unix sockets in here (108 bytes),
	// and Bazel's own paths below its output root get long.
	tmp := mkdirTemp(t, "rgv-remote-")
	c := startCluster(t, bin, filepath.Join(tmp, "cluster"), logs)

	workdir := filepath.Join(tmp, "module")
	copyTree(t, filepath.Join(repo, "tests/e2e/testdata/module"), workdir, repo)
	copyTree(t, filepath.Join(repo, "tests/remote/testdata/overlay"), workdir, repo)
	// The user's .bazelrc: this repository's (--config=remote_local).
	rcBytes, err := os.ReadFile(filepath.Join(repo, ".bazelrc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(workdir, ".bazelrc"), rcBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	newBazel := func(name string) *bazel {
		b := &bazel{t: t, binary: binary, rc: rc, root: filepath.Join(tmp, name), workdir: workdir}
		t.Cleanup(func() { b.run("shutdown") })
		return b
	}
	// The summary lists every test (the .bazelrc's terse one only failures).
	remote := []string{"--config=remote_local", "--remote_executor=" + c.endpoint, "--test_summary=short"}
	first := newBazel("out1")

	t.Run("pass and fail, every spawn remote", func(t *testing.T) {
		execLog := filepath.Join(t.TempDir(), "exec.json")
		out, code := first.run(append([]string{"test", "--symlink_prefix=/", "--execution_log_json_file=" + execLog},
			append(remote, "//:pass_vm_test", "//:fail_vm_test")...)...)
		if code != exitTestsFailed {
			t.Fatalf("bazel test exited %d, want %d (tests failed):\n%s", code, exitTestsFailed, tail(out))
		}
		wantStatus(t, out, map[string]string{"//:pass_vm_test": "PASSED", "//:fail_vm_test": "FAILED"})
		if !strings.Contains(out, "E2E-FAIL: this test fails on purpose") {
			t.Errorf("the failing test's own message is not in the output:\n%s", tail(out))
		}
		spawns := readSpawns(t, execLog)
		counts := map[string]int{}
		for _, s := range spawns {
			counts[s.Mnemonic]++
			if s.Runner != "remote" && !s.cacheHit() {
				t.Errorf("%s spawn %s ran on %q, not remotely", s.Mnemonic, s.label(), s.Runner)
			}
		}
		fmt.Printf("remote: spawns by mnemonic: %v\n", counts)
		for _, m := range []string{"KernelBuild", "GuestBaseLayer", "GuestTestLayer", "TestRunner"} {
			if counts[m] == 0 {
				t.Errorf("no %s spawn in the execution log: it did not run remotely", m)
			}
		}
		for _, s := range spawns {
			if s.Mnemonic == "TestRunner" {
				fmt.Printf("remote: %s test spawn on %s: total %s\n", s.label(), s.Runner, s.Metrics.TotalTime)
			}
		}
		// accel = "auto": on either pool (the plain one, the first platform
		// that fits); its kernel is in that worker's build directory.
		log := checkLog(t, first, "pass_vm_test", "E2E-GUEST goarch=amd64")
		ran := ""
		for _, p := range pools {
			if strings.Contains(log, c.buildDir(p.name)+"/") {
				ran = p.name
			}
		}
		if ran == "" {
			t.Errorf("pass_vm_test's log names no worker build directory (%s/...):\n%s", c.dir, tail(log))
		}
		fmt.Printf("remote: //:pass_vm_test (accel = \"auto\") ran on the %s pool\n", ran)
	})

	t.Run("clean output base gets the result from the remote cache", func(t *testing.T) {
		second := newBazel("out2")
		execLog := filepath.Join(t.TempDir(), "exec.json")
		out, code := second.run(append([]string{"test", "--symlink_prefix=/", "--execution_log_json_file=" + execLog},
			append(remote, "//:pass_vm_test")...)...)
		if code != exitOK {
			t.Fatalf("bazel test from a clean output base exited %d:\n%s", code, tail(out))
		}
		wantStatus(t, out, map[string]string{"//:pass_vm_test": "PASSED"})
		hit := false
		for _, s := range readSpawns(t, execLog) {
			if !s.cacheHit() {
				t.Errorf("%s spawn %s was executed (%s), not a remote cache hit", s.Mnemonic, s.label(), s.Runner)
			}
			hit = hit || s.Mnemonic == "TestRunner"
		}
		if !hit {
			t.Errorf("no TestRunner spawn in the execution log: the result did not come from the remote cache\n%s", tail(out))
		}
	})

	t.Run("accel kvm runs on the KVM pool and fails as infrastructure", func(t *testing.T) {
		execLog := filepath.Join(t.TempDir(), "exec.json")
		out, code := first.run(append([]string{"test", "--symlink_prefix=/", "--execution_log_json_file=" + execLog},
			append(remote, "//kvm:kvm_vm_test")...)...)
		if code == exitOK {
			t.Fatalf("an accel = \"kvm\" test passed on workers without a working KVM:\n%s", tail(out))
		}
		if strings.Contains(out, "REMOTE-KVM: ran in a guest") {
			t.Errorf("the accel = \"kvm\" test ran in a guest (TCG?):\n%s", tail(out))
		}
		log := checkLog(t, first, "kvm/kvm_vm_test", workerID("kvm"), "KVM", c.buildDir("kvm"))
		fmt.Printf("remote: accel = \"kvm\" test log:\n%s\n", tail(log))
		if strings.Contains(log, c.buildDir("linux")) {
			t.Errorf("the accel = \"kvm\" test ran on the plain pool's worker")
		}
	})

	t.Run("killing the worker fails the test and leaves no QEMU", func(t *testing.T) {
		cmd := first.command(append([]string{"test", "--symlink_prefix=/"}, append(remote, "//slow:slow_vm_test")...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var berr error
		done := make(chan struct{})
		go func() {
			berr = cmd.Wait()
			close(done)
		}()
		t.Cleanup(func() {
			select {
			case <-done:
			default:
				_ = cmd.Process.Kill()
				<-done
			}
		})
		build := c.buildDir("linux")
		pids, err := waitQEMU(build, done)
		if err != nil {
			t.Fatalf("%v\n%s", err, tail(out.String()))
		}
		fmt.Printf("remote: slow test's QEMU (pid %v) up on the linux worker after %v; killing that worker\n", pids, time.Since(start).Round(time.Second))
		c.workers["linux"].kill()
		killed := time.Now()
		select {
		case <-done:
		case <-time.After(reportTimeout):
			t.Fatalf("bazel did not end %v after the worker was killed:\n%s", reportTimeout, tail(out.String()))
		}
		code := exitCode(t, berr)
		fmt.Printf("remote: bazel ended %v after the worker was killed, exit %d\n", time.Since(killed).Round(time.Second), code)
		if code == exitOK {
			t.Errorf("bazel exited 0 after the worker running its test was killed:\n%s", tail(out.String()))
		}
		if !strings.Contains(out.String(), "disappeared") && !strings.Contains(out.String(), "//slow:slow_vm_test") {
			t.Errorf("bazel's output does not report the failed test:\n%s", tail(out.String()))
		}
		fmt.Printf("remote: bazel after the kill:\n%s\n", tail(out.String()))
		deadline := time.Now().Add(qemuGoneTimeout)
		for left := qemuUnder(build); len(left) > 0; left = qemuUnder(build) {
			if time.Now().After(deadline) {
				t.Fatalf("QEMU %v still runs %v after its worker was killed", left, qemuGoneTimeout)
			}
			time.Sleep(pollInterval)
		}
	})
}

// spawn is what this test reads of a SpawnExec in Bazel's JSON execution log.
type spawn struct {
	Mnemonic       string `json:"mnemonic"`
	Runner         string `json:"runner"`
	RemoteCacheHit bool   `json:"remoteCacheHit"`
	TargetLabel    string `json:"targetLabel"`
	Metrics        struct {
		TotalTime string `json:"totalTime"`
	} `json:"metrics"`
	ListedOutputs []string `json:"listedOutputs"`
}

// cacheHit tells whether the spawn's result came from the remote cache.
func (s spawn) cacheHit() bool { return s.RemoteCacheHit || s.Runner == "remote cache hit" }

func (s spawn) label() string {
	if s.TargetLabel != "" {
		return s.TargetLabel
	}
	if len(s.ListedOutputs) > 0 {
		return s.ListedOutputs[0]
	}
	return "?"
}

func readSpawns(t *testing.T, path string) []spawn {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var spawns []spawn
	dec := json.NewDecoder(f)
	for {
		var s spawn
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		spawns = append(spawns, s)
	}
	if len(spawns) == 0 {
		t.Fatalf("%s lists no spawns at all", path)
	}
	return spawns
}

func wantStatus(t *testing.T, out string, want map[string]string) {
	t.Helper()
	for target, status := range want {
		if !regexp.MustCompile(regexp.QuoteMeta(target) + `\s+(\(cached\)\s+)?` + status + `\b`).MatchString(out) {
			t.Errorf("%s is not reported %s:\n%s", target, status, tail(out))
		}
	}
}

// checkLog reads target's test.log and checks that every want is in it.
func checkLog(t *testing.T, b *bazel, target string, want ...string) string {
	t.Helper()
	info, code := b.run("info", "--config=remote_local", "bazel-testlogs")
	if code != exitOK {
		t.Fatalf("bazel info: exit %d\n%s", code, info)
	}
	lines := strings.Split(strings.TrimSpace(info), "\n")
	log, err := os.ReadFile(filepath.Join(strings.TrimSpace(lines[len(lines)-1]), target, "test.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !bytes.Contains(log, []byte(w)) {
			t.Errorf("%s's test.log lacks %q:\n%s", target, w, tail(string(log)))
		}
	}
	return string(log)
}

// qemuUnder lists the QEMU processes whose command line names a path in dir
// (a worker's build directory holds the kernel and initrd they boot).
func qemuUnder(dir string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "qemu-system-") || !strings.Contains(string(b), dir+"/") {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitQEMU waits for a QEMU under dir, or for Bazel to end first.
func waitQEMU(dir string, bazelDone <-chan struct{}) ([]int, error) {
	deadline := time.Now().Add(qemuStartTimeout)
	for time.Now().Before(deadline) {
		if pids := qemuUnder(dir); len(pids) > 0 {
			return pids, nil
		}
		select {
		case <-bazelDone:
			return nil, fmt.Errorf("bazel ended before a QEMU ran under %s", dir)
		case <-time.After(pollInterval):
		}
	}
	return nil, fmt.Errorf("no QEMU ran under %s within %v", dir, qemuStartTimeout)
}

// repoRoot finds the checkout under test through a runfile (a symlink to
// the source tree: the test runs without a sandbox).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_SRCDIR")
	if dir == "" {
		t.Fatal("TEST_SRCDIR is not set: run this test with tools/bazel test //tests/remote:remote_test")
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dir, os.Getenv("TEST_WORKSPACE"), "MODULE.bazel"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(real)
}

// mkdirTemp makes a directory in /tmp, removed (with everything Bazel left
// read-only in it) when the test ends, after the cluster has stopped.
func mkdirTemp(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return dir
}

// copyTree copies a directory, pointing a MODULE.bazel's
// local_path_override at repo.
func copyTree(t *testing.T, from, to, repo string) {
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

func tail(s string) string {
	const n = 6000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
