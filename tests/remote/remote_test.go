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
//     builds) ran remotely (--execution_log_json_file), each executed by a
//     worker of this cluster (ExecutedActionMetadata.worker, from the
//     Execute responses in --remote_grpc_log);
//   - the module's guest_kernel (the default kernel plus netem) is built
//     by a KernelBuild executed on a worker, incrementally on the default
//     kernel's build tree (a declared input, with the kernel and its
//     source), through rules_go_vm's kernel build toolchain, and the
//     go_vm_test that boots it (netns_vm_test) PASSES remotely;
//   - an accel = "kvm" test (in the same invocation) is executed by the KVM
//     pool's worker, per that metadata, and, where KVM does not work (every
//     worker here), ends as an infrastructure failure naming the worker and
//     the KVM probe's result;
//   - a second run from a clean output base takes the test result from the
//     remote cache;
//   - killing the worker that runs a test makes Bazel report the failure and
//     leaves no QEMU behind.
//
// The clean-output-base run overlaps the worker-kill case: it runs while
// the scheduler waits for the killed worker to come back (a fixed minute in
// Buildbarn); it needs no worker, only the remote cache.
//
// It needs Bazel >= 7 (as //tests/e2e) and the Buildbarn binaries that
// tools/setup builds from ../shared/buildbarn ($RULES_GO_VM_BUILDBARN, else
// /var/lib/rules_go_vm/cache/buildbarn/bin). Missing any is a failure, never
// a skip.
package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/tests/internal/nestedbazel"
)

// defaultBuildbarn is where tools/setup (tools/buildbarn) puts the binaries.
const defaultBuildbarn = "/var/lib/rules_go_vm/cache/buildbarn/bin"

// kernelEnv chooses the nested build's x86_64 guest kernel: "prebuilt"
// (the default: rules_go_vm's default kernel from this test's runfiles, a
// declared input of the nested build through testdata/overlay/toolchain)
// or "build" (rules_go_vm's default toolchain: KernelBuild runs on a worker
// from its declared inputs, minutes of the test's time;
// //tests/remote:remote_kernel_test).
const kernelEnv = "RULES_GO_VM_REMOTE_KERNEL"

// prebuiltKernel is the runfile of //rules/toolchains:kernel_x86_64.
const prebuiltKernel = "rules/toolchains/kernel_x86_64/vmlinux"

// The environment variables naming the runfiles (rlocation paths) of the
// default x86_64 kernel's build tree and source tarball, which the
// "prebuilt" mode hands the nested build with the kernel.
const (
	treeEnv   = "RULES_GO_VM_REMOTE_TREE"
	sourceEnv = "RULES_GO_VM_REMOTE_SOURCE"
)

// runfile resolves the runfile named by the rlocation path in $env.
func runfile(env string) (string, error) {
	rloc := os.Getenv(env)
	if rloc == "" {
		return "", fmt.Errorf("$%s is not set: tests/remote/BUILD.bazel sets it to a data dependency's rlocation path", env)
	}
	p, err := filepath.EvalSymlinks(filepath.Join(os.Getenv("TEST_SRCDIR"), rloc))
	if err != nil {
		return "", fmt.Errorf("$%s: %w", env, err)
	}
	return p, nil
}

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

// nestedJobs is the nested Bazel's --jobs: remote actions in flight, more
// than this machine's cores so that uploads, queueing and downloads overlap
// with execution (the default is the number of cores).
const nestedJobs = 8

// bazel is a nested Bazel whose failures to run at all end the test.
type bazel struct{ *nestedbazel.Bazel }

func (b bazel) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, code, err := b.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out, code
}

// testlog reads target's test.log and checks that every want is in it.
func (b bazel) testlog(t *testing.T, target string, want ...string) string {
	t.Helper()
	dir, err := b.Info("bazel-testlogs", "--config=remote_local")
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(dir, target, "test.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !bytes.Contains(log, []byte(w)) {
			t.Errorf("%s's test.log lacks %q:\n%s", target, w, nestedbazel.Tail(string(log)))
		}
	}
	return string(log)
}

func TestRemoteCluster(t *testing.T) {
	repo, err := nestedbazel.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binary, rc, err := nestedbazel.Find()
	if err != nil {
		t.Fatal(err)
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
	outputs := os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR")
	if outputs == "" {
		outputs = t.TempDir()
	}
	logs := filepath.Join(outputs, "cluster")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Short paths: the runners listen on unix sockets in here (108 bytes),
	// and Bazel's own paths below its output root get long.
	tmp := mkdirTemp(t, "rgv-remote-")
	c := startCluster(t, bin, filepath.Join(tmp, "cluster"), logs)

	workdir := filepath.Join(tmp, "module")
	for _, dir := range []string{"tests/e2e/testdata/module", "tests/remote/testdata/overlay"} {
		if err := nestedbazel.CopyTree(filepath.Join(repo, dir), workdir, repo); err != nil {
			t.Fatal(err)
		}
	}
	var kernelFlags []string
	var wantKernelBuilds int
	wantSpawns := []string{"GuestBaseLayer", "GuestTestLayer", "TestRunner", "KernelBuild"}
	switch kernel := os.Getenv(kernelEnv); kernel {
	case "", "prebuilt":
		img, err := os.ReadFile(filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"), prebuiltKernel))
		if err != nil {
			t.Fatalf("the prebuilt kernel: %v (a data dependency of this test)", err)
		}
		if err := os.WriteFile(filepath.Join(workdir, "toolchain/vmlinux"), img, 0o644); err != nil {
			t.Fatal(err)
		}
		// The tree (77 MB) and the tarball (150 MB) as symlinks: Bazel
		// hashes and uploads what they point at.
		for env, name := range map[string]string{treeEnv: "tree.tar.gz", sourceEnv: "linux-source.tar.xz"} {
			p, err := runfile(env)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p, filepath.Join(workdir, "toolchain", name)); err != nil {
				t.Fatal(err)
			}
		}
		kernelFlags = []string{"--extra_toolchains=//toolchain:x86_64"}
		// Only the guest_kernel's, incremental on the tree.
		wantKernelBuilds = 1
	case "build":
		// The default kernel's full build, then the guest_kernel's on its
		// tree.
		wantKernelBuilds = 2
	default:
		t.Fatalf("$%s=%q: want \"prebuilt\" or \"build\"", kernelEnv, kernel)
	}
	// The user's .bazelrc: this repository's (--config=remote_local).
	rcBytes, err := os.ReadFile(filepath.Join(repo, ".bazelrc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(workdir, ".bazelrc"), rcBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	newBazel := func(name string) bazel {
		b := bazel{&nestedbazel.Bazel{Binary: binary, Bazelrc: rc, Root: filepath.Join(tmp, name), Dir: workdir, Prefix: "remote", Log: os.Stdout}}
		t.Cleanup(func() {
			if err := b.Shutdown(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		return b
	}
	// The summary lists every test (the .bazelrc's terse one only failures).
	// The execution and gRPC logs land in the undeclared outputs.
	remote := func(name string) []string {
		return append([]string{
			"test", "--symlink_prefix=/", "--config=remote_local", "--remote_executor=" + c.endpoint,
			"--test_summary=short", fmt.Sprintf("--jobs=%d", nestedJobs),
			"--execution_log_json_file=" + filepath.Join(outputs, name+".exec.json"),
			"--remote_grpc_log=" + filepath.Join(outputs, name+".grpc.log"),
		}, kernelFlags...)
	}
	first := newBazel("out1")

	t.Run("pass, fail, netns and kvm: every spawn remote, on the worker its platform asks for", func(t *testing.T) {
		out, code := first.run(t, append(remote("first"), "//:pass_vm_test", "//:fail_vm_test", "//:netns_vm_test", "//kvm:kvm_vm_test")...)
		if code != nestedbazel.ExitTestsFailed {
			t.Fatalf("bazel test exited %d, want %d (tests failed):\n%s", code, nestedbazel.ExitTestsFailed, nestedbazel.Tail(out))
		}
		if err := nestedbazel.CheckStatus(out, map[string]string{
			"//:pass_vm_test": "PASSED", "//:fail_vm_test": "FAILED", "//:netns_vm_test": "PASSED", "//kvm:kvm_vm_test": "FAILED",
		}); err != nil {
			t.Errorf("%v\n%s", err, nestedbazel.Tail(out))
		}
		if !strings.Contains(out, "E2E-FAIL: this test fails on purpose") {
			t.Errorf("the failing test's own message is not in the output:\n%s", nestedbazel.Tail(out))
		}
		if strings.Contains(out, "REMOTE-KVM: ran in a guest") {
			t.Errorf("the accel = \"kvm\" test ran in a guest (TCG?):\n%s", nestedbazel.Tail(out))
		}
		spawns, err := nestedbazel.ReadSpawns(filepath.Join(outputs, "first.exec.json"))
		if err != nil {
			t.Fatal(err)
		}
		execs, err := nestedbazel.ReadExecutions(filepath.Join(outputs, "first.grpc.log"))
		if err != nil {
			t.Fatal(err)
		}
		workers := map[string][]worker{} // by action digest
		for _, e := range execs {
			w, err := parseWorker(e.Worker)
			if err != nil {
				t.Errorf("action %s: %v", e.ActionHash, err)
				continue
			}
			workers[e.ActionHash] = append(workers[e.ActionHash], w)
		}
		counts := nestedbazel.Count(spawns)
		fmt.Printf("remote: spawns by mnemonic: %v; %d remote executions in the gRPC log\n", counts, len(execs))
		ranOn := map[string]string{} // test target → the pool its TestRunner ran on
		for _, s := range spawns {
			if s.Runner != "remote" && !s.CacheHit() {
				t.Errorf("%s spawn %s ran on %q, not remotely", s.Mnemonic, s.Label(), s.Runner)
				continue
			}
			if s.CacheHit() {
				continue
			}
			ws := workers[s.Digest.Hash]
			if len(ws) == 0 {
				t.Errorf("%s spawn %s (action %q) has no execution with a worker in the gRPC log", s.Mnemonic, s.Label(), s.Digest.Hash)
				continue
			}
			for _, w := range ws {
				if w.Worker != workerID(w.Pool) {
					t.Errorf("%s spawn %s ran on worker %+v, not one of this cluster's", s.Mnemonic, s.Label(), w)
				}
			}
			if s.Mnemonic == "KernelBuild" {
				fmt.Printf("remote: KernelBuild of %s on %s, worker %s: total %s\n", s.Label(), s.Runner, ws[len(ws)-1].Worker, s.Metrics.TotalTime)
			}
			if s.Mnemonic == "TestRunner" {
				ranOn[s.TargetLabel] = ws[len(ws)-1].Pool
				fmt.Printf("remote: %s test spawn on %s, worker %s: total %s\n", s.Label(), s.Runner, ws[len(ws)-1].Worker, s.Metrics.TotalTime)
			}
		}
		for _, m := range wantSpawns {
			if counts[m] == 0 {
				t.Errorf("no %s spawn in the execution log: it did not run remotely", m)
			}
		}
		if counts["KernelBuild"] != wantKernelBuilds {
			t.Errorf("%d KernelBuild spawns, want %d (with the prebuilt kernel: only //:netns_kernel's, on its tree)", counts["KernelBuild"], wantKernelBuilds)
		}
		// The guest_kernel's KernelBuild was executed (not a cache hit: the
		// cluster is new) by a worker (checked above for every spawn).
		netnsKernel := false
		for _, s := range spawns {
			netnsKernel = netnsKernel || s.Mnemonic == "KernelBuild" && s.TargetLabel == "//:netns_kernel" && s.Runner == "remote" && !s.CacheHit()
		}
		if !netnsKernel {
			t.Errorf("no remotely executed KernelBuild of //:netns_kernel in the execution log")
		}
		// Its kernel booted: the test's own line from the guest.
		first.testlog(t, "netns_vm_test", "E2E-NETNS: machine=amd64", "ping both ways ok")
		// accel = "kvm": only on the KVM pool (the execution metadata says
		// which worker ran it), where it fails as an infrastructure failure
		// naming that worker and the probe.
		if pool := ranOn["//kvm:kvm_vm_test"]; pool != "kvm" {
			t.Errorf("//kvm:kvm_vm_test was executed on the %q pool (per the execution metadata), want the kvm pool", pool)
		}
		log := first.testlog(t, "kvm/kvm_vm_test", workerID("kvm"), "KVM", c.buildDir("kvm"))
		fmt.Printf("remote: accel = \"kvm\" test log:\n%s\n", nestedbazel.Tail(log))
		if strings.Contains(log, c.buildDir("linux")) {
			t.Errorf("the accel = \"kvm\" test ran in the plain pool's build directory")
		}
		// accel = "auto": on either pool (the plain one, the first platform
		// that fits); its kernel is in that worker's build directory.
		pool := ranOn["//:pass_vm_test"]
		if pool == "" {
			t.Errorf("no execution of //:pass_vm_test's test spawn in the gRPC log")
		} else {
			first.testlog(t, "pass_vm_test", "E2E-GUEST goarch=amd64", c.buildDir(pool)+"/")
		}
		fmt.Printf("remote: //:pass_vm_test (accel = \"auto\") ran on the %s pool\n", pool)
	})

	// A worker dies under a running test: its QEMU ends with it at once;
	// Bazel hears of it when the scheduler gives up on the worker (a fixed
	// minute in Buildbarn), and a clean output base's run (cache lookups
	// only, no worker needed) goes on during that minute.
	var killed time.Time
	build := c.buildDir("linux")
	slow := startBazel(t, first, append(remote("slow"), "//slow:slow_vm_test")...)
	t.Run("killing the worker leaves no QEMU", func(t *testing.T) {
		pids, err := waitQEMU(build, slow.done)
		if err != nil {
			t.Fatalf("%v\n%s", err, nestedbazel.Tail(slow.out.String()))
		}
		fmt.Printf("remote: slow test's QEMU (pid %v) up on the linux worker %v after its bazel started; killing that worker\n",
			pids, time.Since(slow.start).Round(time.Second))
		c.workers["linux"].kill()
		killed = time.Now()
		deadline := killed.Add(qemuGoneTimeout)
		for left := qemuUnder(build); len(left) > 0; left = qemuUnder(build) {
			if time.Now().After(deadline) {
				t.Fatalf("QEMU %v still runs %v after its worker was killed", left, qemuGoneTimeout)
			}
			time.Sleep(pollInterval)
		}
		fmt.Printf("remote: no QEMU under the killed worker's build directory %v after the kill\n", time.Since(killed).Round(time.Millisecond))
	})

	t.Run("clean output base gets the result from the remote cache", func(t *testing.T) {
		second := newBazel("out2")
		out, code := second.run(t, append(remote("second"), "//:pass_vm_test")...)
		if code != nestedbazel.ExitOK {
			t.Fatalf("bazel test from a clean output base exited %d:\n%s", code, nestedbazel.Tail(out))
		}
		if err := nestedbazel.CheckStatus(out, map[string]string{"//:pass_vm_test": "PASSED"}); err != nil {
			t.Errorf("%v\n%s", err, nestedbazel.Tail(out))
		}
		spawns, err := nestedbazel.ReadSpawns(filepath.Join(outputs, "second.exec.json"))
		if err != nil {
			t.Fatal(err)
		}
		hit := false
		for _, s := range spawns {
			if !s.CacheHit() {
				t.Errorf("%s spawn %s was executed (%s), not a remote cache hit", s.Mnemonic, s.Label(), s.Runner)
			}
			hit = hit || s.Mnemonic == "TestRunner"
		}
		if !hit {
			t.Errorf("no TestRunner spawn in the execution log: the result did not come from the remote cache\n%s", nestedbazel.Tail(out))
		}
	})

	t.Run("bazel reports the killed worker's test as failed", func(t *testing.T) {
		if killed.IsZero() {
			t.Fatal("no worker was killed (see the previous subtests)")
		}
		select {
		case <-slow.done:
		case <-time.After(time.Until(killed.Add(reportTimeout))):
			t.Fatalf("bazel did not end %v after the worker was killed:\n%s", reportTimeout, nestedbazel.Tail(slow.out.String()))
		}
		code, err := nestedbazel.ExitCode(slow.err)
		if err != nil {
			t.Fatal(err)
		}
		out := slow.out.String()
		fmt.Printf("remote: bazel ended %v after the worker was killed, exit %d\n", time.Since(killed).Round(time.Second), code)
		if code == nestedbazel.ExitOK {
			t.Errorf("bazel exited 0 after the worker running its test was killed:\n%s", nestedbazel.Tail(out))
		}
		if !strings.Contains(out, "disappeared") && !strings.Contains(out, "//slow:slow_vm_test") {
			t.Errorf("bazel's output does not report the failed test:\n%s", nestedbazel.Tail(out))
		}
		fmt.Printf("remote: bazel after the kill:\n%s\n", nestedbazel.Tail(out))
		if left := qemuUnder(build); len(left) > 0 {
			t.Errorf("QEMU %v runs under the killed worker's build directory again", left)
		}
	})
}

// worker is Buildbarn's ExecutedActionMetadata.worker: the JSON of the
// worker's workerId (cluster_test.go), plus the runner thread.
type worker struct {
	Pool   string `json:"pool"`
	Worker string `json:"worker"`
	Thread string `json:"thread"`
}

func parseWorker(s string) (worker, error) {
	var w worker
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return w, fmt.Errorf("execution metadata names worker %q, not a Buildbarn worker id: %w", s, err)
	}
	if w.Pool == "" || w.Worker == "" {
		return w, fmt.Errorf("execution metadata names worker %q: no pool or worker in it", s)
	}
	return w, nil
}

// background is a Bazel command running while the test goes on; it is
// killed (and waited for) when the test ends, if it has not ended.
type background struct {
	start time.Time
	out   *syncBuffer
	done  chan struct{}
	err   error // Wait's, once done is closed
}

func startBazel(t *testing.T, b bazel, args ...string) *background {
	t.Helper()
	cmd := b.Command(args...)
	bg := &background{out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = bg.out, bg.out
	bg.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		bg.err = cmd.Wait()
		close(bg.done)
	}()
	t.Cleanup(func() {
		select {
		case <-bg.done:
		default:
			_ = cmd.Process.Kill()
			<-bg.done
		}
	})
	return bg
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

// mkdirTemp makes a directory in /tmp, removed (with everything Bazel left
// read-only in it) when the test ends, after the cluster has stopped.
func mkdirTemp(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nestedbazel.RemoveAll(dir); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return dir
}

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
