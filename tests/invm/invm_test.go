// Package invm holds the host-side tests of the invm runner: they drive
// invm on a payload test binary (testdata/payload) and a protocol-breaking
// fake init (testdata/badinit), boot real guests and assert the outcome
// (exit code, output, console tail, nothing left behind).
//
// Under `go test` they build invm, the payload and badinit with the go
// tool (invm builds the guest init too). They need a guest kernel (the
// kbuild cache, or $INVM_KERNEL) and fail — never skip — when there is
// none. The module root is found from the working directory or
// $INVM_MODULE_ROOT (for runs outside the source tree).
//
// Under Bazel (//tests/invm:invm_test) everything is prebuilt and comes
// from the runfiles, named by $INVMTEST_INVM, $INVMTEST_PAYLOAD,
// $INVMTEST_BADINIT, $INVMTEST_INIT and $INVM_KERNEL (see BUILD.bazel):
// nothing is built at test time and no go tool is needed.
package invm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner"
)

// env is what TestMain prepared.
var env struct {
	root, invm, payload, badinit, kernel, cache string
	// args come first on every invm command line: the kernel and where the
	// guest init comes from (built from root, or prebuilt under Bazel).
	args []string
	err  error
}

// vmSlots bounds the guests booting at once (TCG on a small machine).
var vmSlots = make(chan struct{}, 3)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv("INVMTEST_INVM") != "" {
		// Under Bazel: TEST_TMPDIR is too deep for the unix sockets of a
		// state directory (108 bytes): the temporary directories of the
		// tests are reached through a short link in /tmp instead.
		short, cleanup, err := shortTempDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cleanup()
		os.Setenv("TMPDIR", short)
	}
	dir, err := os.MkdirTemp("", "invm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if os.Getenv("INVMTEST_INVM") != "" {
		env.err = setupBazel(dir)
	} else {
		env.err = setup(dir)
	}
	return m.Run()
}

// shortTempDir returns a short path (a link /tmp/invm-test-tmp-*, see
// runner.ShortPath) to a new directory in os.TempDir(), and a function that
// removes both.
func shortTempDir() (string, func(), error) {
	real, err := os.MkdirTemp("", "tmp-")
	if err != nil {
		return "", nil, err
	}
	link, cleanup, err := runner.ShortPath(real, "/tmp", "invm-test-tmp-")
	if err != nil {
		os.RemoveAll(real)
		return "", nil, err
	}
	return link, func() { cleanup(); os.RemoveAll(real) }, nil
}

// setupBazel takes the prebuilt binaries and the kernel from the runfiles.
func setupBazel(dir string) error {
	get := func(name string) (string, error) {
		v := os.Getenv(name)
		if v == "" {
			return "", fmt.Errorf("%s is not set (see tests/invm/BUILD.bazel)", name)
		}
		if !filepath.IsAbs(v) {
			// A $(rootpath): relative to the workspace's runfiles.
			v = filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"), v)
		}
		if _, err := os.Stat(v); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	var init string
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"INVMTEST_INVM", &env.invm},
		{"INVMTEST_PAYLOAD", &env.payload},
		{"INVMTEST_BADINIT", &env.badinit},
		{"INVMTEST_INIT", &init},
		{"INVM_KERNEL", &env.kernel},
	} {
		p, err := get(f.name)
		if err != nil {
			return err
		}
		*f.dst = p
	}
	// Host facts (the accelerator canary's verdict, QEMU's capabilities)
	// and the base layer: the launchers' cache when Bazel names one (not
	// part of what a run may leave behind), else a private one.
	env.cache = os.Getenv("RULES_GO_VM_CACHE")
	if env.cache == "" {
		env.cache = filepath.Join(dir, "cache")
	}
	env.args = []string{"-kernel", env.kernel, "-init", init, "-cache-dir", env.cache}
	return nil
}

// invmArgs returns env.args followed by args, in a new slice.
func invmArgs(args ...string) []string {
	return append(append([]string(nil), env.args...), args...)
}

func goBuild(root string, goarch string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// setup builds invm, the payload and badinit from the source tree.
func setup(dir string) error {
	root := os.Getenv("INVM_MODULE_ROOT")
	if root == "" {
		wd, _ := os.Getwd()
		r, err := runner.FindModuleRoot(wd)
		if err != nil {
			return err
		}
		root = r
	}
	env.root = root
	env.cache = runner.DefaultCacheDir()
	env.kernel = os.Getenv("INVM_KERNEL")
	if env.kernel == "" {
		k, err := runner.FindKernel(arch.X86_64, runner.KernelDirs(env.cache)...)
		if err != nil {
			return fmt.Errorf("these tests boot real guests and need an x86_64 guest kernel: %w", err)
		}
		env.kernel = k
	}
	env.args = []string{"-kernel", env.kernel, "-module-root", env.root}
	env.invm = filepath.Join(dir, "invm")
	env.payload = filepath.Join(dir, "payload.test")
	env.badinit = filepath.Join(dir, "badinit")
	errs := make(chan error, 3)
	go func() {
		cmd := exec.Command("go", "build", "-o", env.invm, "./runner/cmd/invm")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("building invm: %v\n%s", err, out)
		}
		errs <- err
	}()
	go func() {
		errs <- goBuild(root, "amd64", "test", "-c", "-o", env.payload, "./tests/invm/testdata/payload")
	}()
	go func() { errs <- goBuild(root, "amd64", "build", "-o", env.badinit, "./tests/invm/testdata/badinit") }()
	for range 3 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func needEnv(t *testing.T) {
	t.Helper()
	if env.err != nil {
		t.Fatalf("setup: %v", env.err)
	}
}

// outcome is one invm run.
type outcome struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// runInvm runs invm with args; onStdout (if set) sees stdout lines live.
// Without a state directory, invm's temporary files go under tmpDir.
func runInvm(t *testing.T, state string, onStdout func(line string), args ...string) outcome {
	return runInvmTmp(t, state, t.TempDir(), onStdout, args...)
}

func runInvmTmp(t *testing.T, state, tmpDir string, onStdout func(line string), args ...string) outcome {
	t.Helper()
	vmSlots <- struct{}{}
	defer func() { <-vmSlots }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := invmArgs()
	if state != "" {
		full = append(full, "-state-dir", state)
	}
	cmd := exec.CommandContext(ctx, env.invm, append(full, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmpDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var stdout bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := bufio.NewScanner(pr)
		for s.Scan() {
			stdout.WriteString(s.Text() + "\n")
			if onStdout != nil {
				onStdout(s.Text())
			}
		}
		io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	o := outcome{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if err != nil && o.code < 0 {
		t.Fatalf("invm: %v\nstderr:\n%s", err, o.stderr)
	}
	return o
}

// assertClean checks that nothing of the run is left: no files in the state
// directory but the initrd and console log kept for the reproducer, no
// process mentioning it.
func assertClean(t *testing.T, state string) {
	t.Helper()
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		if e.Name() != "console.log" && e.Name() != "initrd.cpio" {
			t.Errorf("left in the state directory: %s", e.Name())
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(state)) {
			t.Errorf("process left behind: %s: %s", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

func TestScenarios(t *testing.T) {
	needEnv(t)
	// badinit speaks vsock only and never makes a template: its runs boot
	// cold (the default start would first try to make one).
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string // substrings of stdout+stderr
	}{
		{"pass", []string{env.payload, "-test.run=^TestPass$", "-test.v"}, 0,
			[]string{"PAYLOAD-STDOUT pass", "PAYLOAD-STDERR pass", "--- PASS: TestPass"}},
		{"failing test", []string{env.payload, "-test.run=^TestFail$"}, 1,
			[]string{"PAYLOAD failing on purpose", "FAIL"}},
		{"guest kernel panic", []string{"-memory", "128M", env.payload, "-test.run=^TestKernelPanic$"}, runner.ExitGuestPanic,
			[]string{"guest kernel panic", "Kernel panic - not syncing", "guest console", "reproduce with"}},
		{"pvpanic over QMP", []string{"-memory", "128M", "-nics", "e1000", env.payload, "-test.run=^TestKernelPanic$"}, runner.ExitGuestPanic,
			[]string{"guest kernel panic (QMP GUEST_PANICKED)", "Kernel panic - not syncing"}},
		{"init killed", []string{env.payload, "-test.run=^TestKillInit$"}, runner.ExitGuestPanic,
			[]string{"guest kernel panic", "Attempted to kill init"}},
		{"leaked child", []string{env.payload, "-test.run=^TestLeakChild$"}, runner.ExitVerdictFail,
			[]string{"leaked", "TestSleepForever"}},
		{"test hangs: go test timeout", []string{env.payload, "-test.run=^TestSleepForever$", "-test.timeout=3s"}, 2,
			[]string{"panic: test timed out after 3s"}},
		{"test hangs: host timeout", []string{"-timeout", "15s", "-test-timeout", "1h", env.payload, "-test.run=^TestSleepForever$"}, runner.ExitTimeout,
			[]string{"timed out", "reproduce with"}},
		{"garbled verdict", []string{"-start", "cold", "-init", env.badinit, "-append", "BADINIT_MODE=garbled", env.payload}, runner.ExitBadSession,
			[]string{"no valid verdict", "verdict"}},
		{"corrupted verdict frame", []string{"-start", "cold", "-init", env.badinit, "-append", "BADINIT_MODE=crc", env.payload}, runner.ExitBadSession,
			[]string{"no valid verdict"}},
		{"duplicate verdict", []string{"-start", "cold", "-init", env.badinit, "-append", "BADINIT_MODE=duplicate", env.payload}, runner.ExitBadSession,
			[]string{"no valid verdict", "duplicate"}},
		{"no verdict", []string{"-start", "cold", "-init", env.badinit, "-append", "BADINIT_MODE=none", env.payload}, runner.ExitBadSession,
			[]string{"no valid verdict"}},
		{"vfio bind fails", []string{"-nics", "e1000", "-vfio-nics", "0",
			"-cmdline", "vfio.enable_unsafe_noiommu_mode=0", env.payload, "-test.run=^TestPass$"}, runner.ExitVerdictFail,
			[]string{"vfio_nics: binding NIC 0000:00:10.0 to vfio-pci before the test failed", "no IOMMU group and VFIO no-IOMMU mode is off"}},
		{"vfio no NIC", []string{"-nics", "e1000", "-vfio-nics", "1", env.payload}, runner.ExitUsage,
			[]string{"vfio_nics: NIC 1 does not exist: nics has 1 NICs"}},
		{"old protocol version", []string{"-start", "cold", "-init", env.badinit, "-append", "BADINIT_MODE=oldversion", env.payload}, runner.ExitBadSession,
			[]string{"no valid verdict", "unsupported version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "state")
			o := runInvm(t, state, nil, tc.args...)
			all := o.stdout + o.stderr
			if o.code != tc.wantCode {
				t.Errorf("exit code %d, want %d", o.code, tc.wantCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("invm took %v\nstdout:\n%s\nstderr:\n%s", o.elapsed, o.stdout, o.stderr)
			}
			assertClean(t, state)
		})
	}
}

// TestNothingLeftBehind runs without a state directory: invm's private
// temporary directory must be gone afterwards, on a pass and on a failure.
func TestNothingLeftBehind(t *testing.T) {
	needEnv(t)
	t.Parallel()
	for _, run := range []string{"^TestPass$", "^TestFail$"} {
		tmp := t.TempDir()
		o := runInvmTmp(t, "", tmp, nil, env.payload, "-test.run="+run)
		if (o.code == 0) != (run == "^TestPass$") {
			t.Errorf("%s: exit %d\nstderr:\n%s", run, o.code, o.stderr)
		}
		left, _ := os.ReadDir(tmp)
		for _, e := range left {
			t.Errorf("%s: left in TMPDIR: %s", run, e.Name())
		}
		assertClean(t, tmp)
	}
}

// TestDaemonKilled kills the vsock daemon (a cold boot over
// vhost-user-vsock has one) while the test runs: an infrastructure
// failure, never a pass, and fast (QEMU is killed).
func TestDaemonKilled(t *testing.T) {
	needEnv(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	var once sync.Once
	killed := make(chan int, 1)
	o := runInvm(t, state, func(line string) {
		if !strings.Contains(line, "PAYLOAD-READY-FOR-KILL") {
			return
		}
		once.Do(func() {
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				b, _ := os.ReadFile(p)
				if bytes.Contains(b, []byte("vhost-device-vsock")) && bytes.Contains(b, []byte(state)) {
					var pid int
					fmt.Sscanf(p, "/proc/%d/cmdline", &pid)
					syscall.Kill(pid, syscall.SIGKILL)
					killed <- pid
					return
				}
			}
			killed <- 0
		})
	}, "-start", "cold", "-transport", "vhost-user-vsock", env.payload, "-test.run=^TestWaitForKill$")
	select {
	case pid := <-killed:
		if pid == 0 {
			t.Fatal("found no vhost-device-vsock process for the run")
		}
	default:
		t.Fatalf("the payload never got ready (exit %d)\nstderr:\n%s", o.code, o.stderr)
	}
	if o.code != runner.ExitDaemonDied {
		t.Errorf("exit code %d, want %d (daemon died)\nstderr:\n%s", o.code, runner.ExitDaemonDied, o.stderr)
	}
	if !strings.Contains(o.stderr, "vsock daemon died") {
		t.Errorf("stderr lacks the reason:\n%s", o.stderr)
	}
	if strings.Contains(o.stdout, "PAYLOAD tick 599") {
		t.Error("the run went on to the end after the daemon died")
	}
	assertClean(t, state)
}
