// Command vmtest is the launcher of a `go_vm_test` target: Bazel runs it (on
// the exec platform) as the test's executable. It reads the VM spec the rule
// wrote into the runfiles (package vmspec), boots the guest with the
// prebuilt kernel and initramfs layers, streams the test's output and exits
// with the test's exit code (see package runner's Exit* codes for failures
// that are not the test's).
//
//	vmtest -runfiles DIR -spec DIR/_main/pkg/x.vm.json -- [test args...]
//
// It answers Bazel's test contract:
//
//   - TEST_TMPDIR: all runner state (a short symlink in /tmp reaches it,
//     for unix socket paths; removed on every return path);
//   - TEST_UNDECLARED_OUTPUTS_DIR: console.log (guest console),
//     qemu-command.txt (reproducer), runner.log (diagnostics: accelerator,
//     timings, result) and test.json (test2json events);
//   - XML_OUTPUT_FILE: JUnit XML (package junit) from the test's output,
//     which it frames with -test.v=test2json (package testjson); abnormal
//     ends still give XML that fails; built as the output streams in, in
//     bounded memory whatever the guest prints (the end of each test's
//     output, junit's limits; test.json and the log keep everything);
//   - TEST_TIMEOUT: as for a go_test, the test has all of it; Bazel's SIGTERM
//     at TEST_TIMEOUT (TIMEOUT) makes the guest test dump its goroutine
//     stacks into the log (timeoutBudget);
//   - TESTBRIDGE_TEST_ONLY (--test_filter, as -test.run / -test.skip) and
//     TESTBRIDGE_TEST_RUNNER_FAIL_FAST (-test.failfast);
//   - TEST_TOTAL_SHARDS / TEST_SHARD_INDEX: forwarded into the guest, where
//     rules_go's test main runs its share; TEST_SHARD_STATUS_FILE is touched;
//   - TEST_INFRASTRUCTURE_FAILURE_FILE: written when the failure is not the
//     test's (runner.IsInfrastructure);
//   - COVERAGE_DIR (`bazel coverage`): the guest test gets COVERAGE_DIR (a
//     guest directory), COVERAGE_OUTPUT_FILE and COVERAGE=1, and the LCOV
//     files rules_go's test main writes there land in the host's
//     COVERAGE_DIR, for Bazel's LCOV merger (applyCoverage).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// guestRunfiles is where the test layer puts the runfiles tree in the guest.
const guestRunfiles = "/invm/runfiles/"

// launcherMemoryLimit is the launcher's soft memory limit (the Go
// runtime's, debug.SetMemoryLimit): near it the garbage collector runs
// more often, so the launcher's peak stays bounded beside the VM it runs,
// whatever the guest prints (TestFloodMemory). GOMEMLIMIT overrides it.
const launcherMemoryLimit = 32 << 20

// limitMemory applies launcherMemoryLimit unless GOMEMLIMIT is set.
func limitMemory(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(launcherMemoryLimit)
	}
}

func main() {
	limitMemory(os.Getenv)
	ppid := os.Getppid()
	sigs, stop := lifecycle.NotifySignals()
	endWithParent(ppid)
	// Bazel's SIGTERM begins the shutdown; the run then has what is left of
	// Bazel's grace before its SIGKILL (timeoutBudget).
	code := runner.Launch(sigs, launchGrace, os.Stderr, func(ctx context.Context) int {
		return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	bz := bazelEnv(getenv)
	// Bazel's shard protocol: say this runner shards (the guest test's own
	// main picks its share, see shardEnv), whatever happens next.
	if err := bz.touchShardStatus(); err != nil {
		fmt.Fprintln(stderr, "vmtest:", err)
	}
	diag, closeDiag := bz.diagnostics(stderr)
	defer closeDiag()
	var rep *report
	if bz.xml != "" {
		// The guest test frames its output for test2json (withTest2JSON);
		// the user still sees plain text.
		rep = newReport(bz, stdout, stderr)
		defer rep.close()
	}
	o, err := options(args, getenv)
	if err != nil {
		fmt.Fprintln(diag, "vmtest:", err)
		return bz.finish(diag, runner.Result{}, err, rep)
	}
	o.Stdout, o.Stderr, o.Log = stdout, stderr, diag
	if rep != nil {
		o.Args = withTest2JSON(o.Args)
		o.Stdout, o.Stderr = rep.stdout, rep.stderr
	}
	if o.StateDir != "" {
		// Unix socket paths are limited to 108 bytes and Bazel's TEST_TMPDIR
		// is deep: reach the state directory through a short link in /tmp,
		// removed on every return path (a SIGKILL aside).
		short, cleanup, err := runner.ShortPath(o.StateDir, linkDir, "vmtest-")
		if err != nil {
			fmt.Fprintln(diag, "vmtest:", err)
			return bz.finish(diag, runner.Result{}, fmt.Errorf("%w: %w", runner.ErrInternal, err), rep)
		}
		defer cleanup()
		o.StateDir = short
	}
	res, err := runner.Run(ctx, o)
	if bz.outputs != "" && res.CommandLine != "" {
		_ = os.WriteFile(filepath.Join(bz.outputs, CommandFile), []byte(res.CommandLine+"\n"), 0o644)
	}
	return bz.finish(diag, res, err, rep)
}

// endWithParent makes the death of this process's parent (Bazel's
// test-setup.sh) a SIGTERM to it: a remote worker's runner kills only the
// action's first process when its worker goes away, and the run (QEMU, the
// vsock daemon, the state directory) must end with it. A parent already
// gone (ppid changed) gets the same answer at once.
func endWithParent(ppid int) {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "vmtest: warning: cannot follow the parent's death:", err)
		return
	}
	if os.Getppid() != ppid {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}

// linkDir holds the short links to state directories.
const linkDir = "/tmp"

// options turns the flags, the spec and Bazel's test environment into
// runner options.
func options(args []string, getenv func(string) string) (runner.Options, error) {
	fs := flag.NewFlagSet("vmtest", flag.ContinueOnError)
	runfiles := fs.String("runfiles", "", "the test's runfiles directory")
	specPath := fs.String("spec", "", "the VM spec (JSON) written by go_vm_test")
	debug := fs.Bool("debug", false, "the <name>.debug target: console on the terminal, then a shell in the guest after the test")
	if err := fs.Parse(args); err != nil {
		return runner.Options{}, fmt.Errorf("%w: %v", runner.ErrInvalidOptions, err)
	}
	if *runfiles == "" || *specPath == "" {
		return runner.Options{}, fmt.Errorf("%w: -runfiles and -spec are required", runner.ErrInvalidOptions)
	}
	spec, shape, err := vmspec.Read(*specPath)
	if err != nil {
		return runner.Options{}, fmt.Errorf("%w: %w", runner.ErrInvalidOptions, err)
	}
	rf := func(p string) string { return filepath.Join(*runfiles, p) }
	o := runner.Options{
		TestBinary:    rf(strings.TrimPrefix(spec.Test, guestRunfiles)),
		GuestTestPath: spec.Test,
		WorkDir:       spec.WorkDir,
		Arch:          arch.Arch(spec.Arch),
		Kernel:        rf(spec.Kernel),
		BaseLayerFile: rf(spec.Layers[0]),
		QEMU:          getenv("INVM_QEMU"),
		Verbose:       getenv("INVM_VERBOSE") != "",
	}
	if !strings.HasPrefix(spec.Test, guestRunfiles) {
		return o, fmt.Errorf("%w: spec test %q is not under %s", runner.ErrInvalidOptions, spec.Test, guestRunfiles)
	}
	for _, l := range spec.Layers[1:] {
		o.ExtraLayers = append(o.ExtraLayers, rf(l))
	}
	if spec.Template != "" {
		o.Template = rf(spec.Template)
	}
	o.NoTemplate = spec.NoTemplate
	// The VM shape, resolved by package vmspec. Bazel's timeout was raised
	// for TCG (tcg_timeout_scale): under KVM the runner narrows
	// -test.timeout back to the nominal one. The MACs derive from the
	// target's label (stable per test).
	o.SetShape(shape)
	o.NICSeed = getenv("TEST_TARGET")
	names := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		o.Env = append(o.Env, k+"="+spec.Env[k])
	}
	o.Env = append(o.Env, shardEnv(getenv)...)
	if err := applyCoverage(&o, getenv("COVERAGE_DIR")); err != nil {
		return o, err
	}
	o.Args = append(append(o.Args, spec.Args...), bazelTestArgs(getenv)...)
	o.Args = append(o.Args, fs.Args()...)
	applyTestTimeout(&o, getenv("TEST_TIMEOUT"))
	if tmp := getenv("TEST_TMPDIR"); tmp != "" {
		o.StateDir = filepath.Join(tmp, "vmtest")
		o.CacheDir = filepath.Join(tmp, "vmtest-cache")
	}
	if c := getenv("RULES_GO_VM_CACHE"); c != "" {
		// Host facts worth keeping across tests (the KVM canary's verdict,
		// QEMU's capabilities), keyed by host, QEMU and kernel.
		o.CacheDir = c
	}
	if out := getenv("TEST_UNDECLARED_OUTPUTS_DIR"); out != "" {
		o.ConsoleLog = filepath.Join(out, ConsoleFile)
		o.OutputsDir = out
	}
	if *debug {
		// `bazel run //pkg:name.debug`: watch the boot, run the test, then
		// stay in the same VM with a shell (busybox) until it exits.
		o.Verbose, o.Shell = true, true
		o.ShellBusybox = getenv("INVM_SHELL_BUSYBOX")
		o.Timeout = max(o.Timeout, DebugTimeout)
	}
	return o, nil
}

// applyTestTimeout sets o's bounds from Bazel's TEST_TIMEOUT (whole
// seconds; "" or junk leaves them): as for a go_test, the test has all of
// it, Bazel's SIGTERM ends it (TIMEOUT) and the guest test dumps its stacks.
func applyTestTimeout(o *runner.Options, testTimeout string) {
	t, err := strconv.Atoi(testTimeout)
	if err != nil || t <= 0 {
		return
	}
	total := time.Duration(t) * testTimeoutUnit
	b := timeoutBudget(total)
	o.Timeout, o.TestTimeout, o.StacksGrace = b.Host, b.Guest, b.Stacks
	o.ExternalDeadline = true
	if o.TCGTimeoutScale > 1 {
		// The category was raised for TCG: under KVM the test gets the
		// nominal timeout back, as its own -test.timeout.
		o.KVMTestTimeout = total / time.Duration(o.TCGTimeoutScale)
	}
}

// GuestCoverageOutputFile is the COVERAGE_OUTPUT_FILE the guest test gets:
// rules_go's test main writes its Go profile next to it (".cover") before
// converting it to LCOV in COVERAGE_DIR; it stays in the guest.
const GuestCoverageOutputFile = "/tmp/invm-coverage.dat"

// applyCoverage answers `bazel coverage` (collect_coverage.sh sets
// COVERAGE_DIR; "" is a plain run and changes nothing): the guest test gets
// the coverage variables a go_test gets, with COVERAGE_DIR a guest
// directory whose files the runner puts into the host's COVERAGE_DIR,
// where Bazel's LCOV merger finds them.
func applyCoverage(o *runner.Options, dir string) error {
	if dir == "" {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("%w: COVERAGE_DIR %q: %v", runner.ErrInvalidOptions, dir, err)
	}
	o.CoverageDir = abs
	o.Env = append(o.Env, "COVERAGE=1", "COVERAGE_DIR="+runner.GuestCoverageDir, "COVERAGE_OUTPUT_FILE="+GuestCoverageOutputFile)
	return nil
}

// testTimeoutUnit is the unit of Bazel's TEST_TIMEOUT (whole seconds).
const testTimeoutUnit = time.Second

// DebugTimeout bounds a -debug session (boot, test and the interactive shell).
const DebugTimeout = 8 * time.Hour

// bazelTestArgs maps Bazel's test filter and fail-fast settings to go test flags.
func bazelTestArgs(getenv func(string) string) []string {
	var args []string
	if only := getenv("TESTBRIDGE_TEST_ONLY"); only != "" {
		var run, skip []string
		for _, f := range strings.Split(only, ",") {
			if strings.HasPrefix(f, "-") {
				skip = append(skip, f[1:])
			} else if f != "" {
				run = append(run, f)
			}
		}
		if len(run) > 0 {
			args = append(args, "-test.run="+strings.Join(run, "|"))
		}
		if len(skip) > 0 {
			args = append(args, "-test.skip="+strings.Join(skip, "|"))
		}
	}
	if getenv("TESTBRIDGE_TEST_RUNNER_FAIL_FAST") == "1" {
		args = append(args, "-test.failfast")
	}
	return args
}
