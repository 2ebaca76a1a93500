// Command vmtest is the launcher of a `go_vm_test` target: Bazel runs it (on
// the exec platform) as the test's executable. It reads the VM spec the rule
// wrote into the runfiles (package vmspec), boots the guest with the
// prebuilt kernel and initramfs layers, streams the test's output and exits
// with the test's exit code (see package runner's Exit* codes for failures
// that are not the test's).
//
//	vmtest -runfiles DIR -spec DIR/_main/pkg/x.vm.json -- [test args...]
//
// From Bazel's test environment it takes TEST_TMPDIR (all runner state),
// TEST_UNDECLARED_OUTPUTS_DIR (the guest console log and the reproducer
// command line), TEST_TIMEOUT (the guest's -test.timeout, a little earlier
// than Bazel's so goroutine stacks reach the log) and TESTBRIDGE_TEST_ONLY
// (--test_filter, as -test.run).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmspec"
)

// guestRunfiles is where the test layer puts the runfiles tree in the guest.
const guestRunfiles = "/invm/runfiles/"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := options(args, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "vmtest:", err)
		return runner.ExitCode(runner.Result{}, err)
	}
	o.Stdout, o.Stderr, o.Log = stdout, stderr, stderr
	if o.StateDir != "" {
		// Unix socket paths are limited to 108 bytes and Bazel's TEST_TMPDIR
		// is deep: reach the state directory through a short link in /tmp.
		short, cleanup, err := shortPath(o.StateDir)
		if err != nil {
			fmt.Fprintln(stderr, "vmtest:", err)
			return runner.ExitCode(runner.Result{}, fmt.Errorf("%w: %w", runner.ErrInternal, err))
		}
		defer cleanup()
		o.StateDir = short
	}
	res, err := runner.Run(ctx, o)
	code := runner.ExitCode(res, err)
	if out := getenv("TEST_UNDECLARED_OUTPUTS_DIR"); out != "" && res.CommandLine != "" {
		_ = os.WriteFile(filepath.Join(out, "qemu-command.txt"), []byte(res.CommandLine+"\n"), 0o644)
	}
	if err != nil || code == runner.ExitVerdictFail || (res.Verdict != nil && res.Verdict.Signal != "") {
		// Not a plain test failure (whose output says why): explain.
		runner.WriteReport(stderr, res, err)
	}
	if res.Accel != "" {
		fmt.Fprintf(stderr, "vmtest: %s guest, accel %s (%s), boot %v, total %v\n",
			res.Arch, res.Accel, res.AccelReason, res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	}
	return code
}

// shortPath makes dir and returns a short path to it (a symlink in the
// system's /tmp) and a function that removes the link.
func shortPath(dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	if len(dir) < 60 {
		return dir, func() {}, nil
	}
	link, err := os.MkdirTemp("/tmp", "vmtest-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Remove(link); err != nil {
		return "", nil, err
	}
	if err := os.Symlink(dir, link); err != nil {
		return "", nil, err
	}
	return link, func() { os.Remove(link) }, nil
}

// options turns the flags, the spec and Bazel's test environment into
// runner options.
func options(args []string, getenv func(string) string) (runner.Options, error) {
	fs := flag.NewFlagSet("vmtest", flag.ContinueOnError)
	runfiles := fs.String("runfiles", "", "the test's runfiles directory")
	specPath := fs.String("spec", "", "the VM spec (JSON) written by go_vm_test")
	if err := fs.Parse(args); err != nil {
		return runner.Options{}, fmt.Errorf("%w: %v", runner.ErrInvalidOptions, err)
	}
	if *runfiles == "" || *specPath == "" {
		return runner.Options{}, fmt.Errorf("%w: -runfiles and -spec are required", runner.ErrInvalidOptions)
	}
	spec, err := vmspec.Read(*specPath)
	if err != nil {
		return runner.Options{}, fmt.Errorf("%w: %w", runner.ErrInvalidOptions, err)
	}
	rf := func(p string) string { return filepath.Join(*runfiles, p) }
	o := runner.Options{
		TestBinary:    rf(strings.TrimPrefix(spec.Test, guestRunfiles)),
		GuestTestPath: spec.Test,
		WorkDir:       spec.WorkDir,
		Arch:          qemu.Arch(spec.Arch),
		Kernel:        rf(spec.Kernel),
		BaseLayerFile: rf(spec.Layers[0]),
		MemoryMiB:     spec.MemoryMiB,
		CPUs:          spec.CPUs,
		ExtraCmdline:  spec.Cmdline,
		QEMU:          getenv("INVM_QEMU"),
		Verbose:       getenv("INVM_VERBOSE") != "",
	}
	if !strings.HasPrefix(spec.Test, guestRunfiles) {
		return o, fmt.Errorf("%w: spec test %q is not under %s", runner.ErrInvalidOptions, spec.Test, guestRunfiles)
	}
	for _, l := range spec.Layers[1:] {
		o.ExtraLayers = append(o.ExtraLayers, rf(l))
	}
	if spec.Accel != "auto" {
		o.Accel = spec.Accel
	}
	if len(spec.NICs) > 0 || spec.GuestHugepages != nil || spec.IOMMU || spec.HostPages != "4k" {
		return o, fmt.Errorf("%w: nics, guest_hugepages, iommu and host_pages other than 4k are validated but not yet "+
			"supported by the runner (see CHANGELOG.md)", runner.ErrInvalidOptions)
	}
	names := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		o.Env = append(o.Env, k+"="+spec.Env[k])
	}
	o.Args = append(append(o.Args, spec.Args...), bazelTestArgs(getenv)...)
	o.Args = append(o.Args, fs.Args()...)
	if t, err := strconv.Atoi(getenv("TEST_TIMEOUT")); err == nil && t > 0 {
		// Bazel sends SIGTERM at TEST_TIMEOUT: stop the guest test a little
		// earlier so its own timeout panic (with goroutine stacks) is logged.
		total := time.Duration(t) * time.Second
		margin := min(total/10, 15*time.Second)
		o.Timeout = total - margin/2
		o.TestTimeout = total - margin
		if o.TestTimeout > 20*time.Second {
			o.TestTimeout -= 10 * time.Second // boot allowance
		}
		o.Args = append(o.Args, "-test.timeout="+(o.TestTimeout-2*time.Second).String())
	}
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
		o.ConsoleLog = filepath.Join(out, "console.log")
		o.OutputsDir = out
	}
	o.Transport = spec.Transport
	return o, nil
}

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
