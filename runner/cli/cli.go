// Package cli is the host side of the `invm` command (runner/cmd/invm):
// it runs a Go test binary inside a Linux guest under QEMU and exits with
// the test's exit code. It is meant for `go test -exec`:
//
//	go install ./runner/cmd/invm
//	go test -exec invm ./tests/hello/...
//	GOARCH=arm64 go test -exec invm ./tests/hello/...   # aarch64 guest
//
// go test runs `invm /tmp/go-build.../x.test -test.v=true -test.timeout=...`
// in the package directory. Usage:
//
//	invm [flags] [--] test-binary [test args...]
//
// The guest architecture comes from the binary's ELF header. The guest
// kernel is -kernel, else the newest kbuild cache entry for the arch
// (~/.cache/rules_go_vm/kernels, then /var/lib/rules_go_vm/cache/kernels). The package's ./testdata is copied next to
// the test binary in the guest, which runs in that directory. The test's
// output streams live; the guest console goes to -console-log (or a
// temporary file) and its tail is printed when the run fails for a reason
// other than the test's own exit code.
//
// Every flag has an environment variable default (INVM_ + the flag name in
// upper case with - as _, e.g. INVM_KERNEL, INVM_MEMORY, INVM_VERBOSE), so
// `go test -exec invm` can be tuned without quoting.
//
// Coverage (`go test -exec invm -cover -coverprofile=c.out`): the test
// binary's -test.gocoverdir and -test.coverprofile (and $GOCOVERDIR) name
// host paths; invm points them at a guest directory and copies what the
// test wrote there back to those paths after the run, whatever its outcome.
//
// Exit codes: the test's own exit code when the guest returned a valid
// verdict (0 = pass, 128+N = killed by signal N, 74 = FAIL without an exit
// code, e.g. a leaked process); otherwise 64 usage, 65 no kernel, 66 no
// usable QEMU, 67 no vsock daemon, 68 boot never reached init, 69 guest
// kernel panic, 70 guest never connected, 71 timeout, 72 vsock daemon died,
// 73 missing or garbled verdict, 75 other runner error, 76 a passing
// verdict but no orderly power-off after it (see package runner's Exit*
// constants).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// exitError carries an exit code out of run.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// cliFlags are the flags that are not runner.Options fields or VM spec
// fields (those are set in place).
type cliFlags struct {
	arch, testdata, envList, layers, command *string
	timeout, testTO                          *time.Duration
	verbose, noDirs, shell, pkgFiles         *bool
}

// defineFlags defines every flag of invm on fs: the VM spec's into shape,
// the runner's into o, the rest into the returned cliFlags.
func defineFlags(fs *flag.FlagSet, o *runner.Options, shape *vmspec.Shape) cliFlags {
	f := cliFlags{
		arch:     fs.String("arch", "", "guest arch x86_64|aarch64 (default: from the binary's ELF)"),
		timeout:  fs.Duration("timeout", 0, "host-side bound of the whole run (default: test timeout + 65s)"),
		testTO:   fs.Duration("test-timeout", 0, "guest-side bound of the test (default: -test.timeout + 5s, else 10m)"),
		verbose:  fs.Bool("verbose", false, "show the resolved VM spec, the guest console and init diagnostics live"),
		testdata: fs.String("testdata", "", "host directory copied to testdata/ next to the test (default ./testdata if present; \"none\" for none)"),
		envList:  fs.String("env", "", "comma-separated NAME=value entries added to the test's environment"),
		layers:   fs.String("layer", "", "comma-separated extra initramfs archives, between the base and the test layer"),
		noDirs:   fs.Bool("no-directives", false, "ignore the //invm: directives of the test package in the working directory"),
		pkgFiles: fs.Bool("package-files", true, "copy the working directory's files (go test's: the package's; not its subdirectories, each <= 1 MiB, 8 MiB in all) next to the test, as go test's working directory has them"),
	}
	fs.BoolVar(f.verbose, "v", false, "alias of -verbose")
	addShapeFlags(fs, shape)
	fs.StringVar(&o.Kernel, "kernel", "", "guest kernel image (default: newest kbuild cache entry for the arch)")
	fs.StringVar(&o.QEMU, "qemu", "", "QEMU binary (default qemu-system-<arch> on PATH)")
	fs.StringVar(&o.Machine, "machine", "", "QEMU machine type override (default microvm on x86_64, virt on aarch64)")
	fs.StringVar(&o.Daemon, "vsock-daemon", "", "vhost-device-vsock binary (default: PATH, then /var/lib/rules_go_vm)")
	fs.StringVar(&o.InitBinary, "init", "", "prebuilt static guest init (default: build guestinit/cmd/init, cached)")
	fs.StringVar(&o.ModuleRoot, "module-root", "", "rules_go_vm source tree to build the init from (default: found from the working directory)")
	fs.StringVar(&o.StateDir, "state-dir", "", "private run directory (default: a temporary directory, removed)")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "cache directory (default ~/.cache/rules_go_vm)")
	fs.StringVar(&o.ConsoleLog, "console-log", "", "write the guest console here (default: temporary)")
	fs.StringVar(&o.Template, "template", "", "snapshot start (-start snapshot|auto): restore this template directory (runner.MakeTemplate) instead of the cache directory's; one that does not fit is refused, the reason logged, and the guest boots cold")
	fs.StringVar(&o.TemplateFormat, "template-format", "", "how templates are saved: stream, mapped-ram or ram-file (default: "+runner.DefaultTemplateFormat+", measured fastest to restore: see README)")
	fs.BoolVar(&o.CountTranslations, "count-translations", false, "under TCG, add the number of translation blocks QEMU made by the verdict (guest code run for the first time) to the -verbose timings line")
	fs.StringVar(&o.OutputsDir, "outputs-dir", "", "host directory receiving the files the test wrote to $TEST_UNDECLARED_OUTPUTS_DIR in the guest (default: dropped)")
	f.shell = fs.Bool("shell", false, "after the test, open an interactive shell in the same guest (busybox sh from -shell-busybox) before it powers off")
	f.command = fs.String("command", "", "after the test, run this command (space-separated argv, a guest path) in the same guest before it powers off")
	fs.StringVar(&o.ShellBusybox, "shell-busybox", "", "static busybox for -shell, put at /bin/busybox in the guest (default: the base layer's, see -busybox)")
	fs.StringVar(&o.CC, "cc", "", "C compiler for the guest arch that resolves a dynamically linked (cgo) test binary's loader and libraries (default: $CC, else gcc for the host's arch, else <triplet>-gcc)")
	fs.StringVar(&o.Busybox, "busybox", "", "static busybox of the guest arch in the base layer, its applets (sh, sleep, cat, ip, ...) on the test's PATH; "+
		"\"none\" for none (default: "+runner.SharedBinDir+"/busybox-<arch> from tools/setup, else /bin/busybox if static and of the guest arch)")
	return f
}

// parse parses args with env defaults into runner options. The VM shape
// comes from package vmspec, in this order (later wins): its defaults, the
// //invm: directives of the test package (the working directory, as under
// `go test`), $INVM_* variables, flags. A bad value anywhere is an error
// naming where it came from.
func parse(args []string, getenv func(string) string, stderr io.Writer) (runner.Options, error) {
	fs := flag.NewFlagSet("invm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: invm [flags] [--] test-binary [test args...]\n\nflags (defaults from $INVM_<FLAG>; VM flags override the test package's //invm: directives):\n")
		fs.PrintDefaults()
	}
	var (
		o     runner.Options
		shape vmspec.Shape
	)
	f := defineFlags(fs, &o, &shape)

	// The VM spec: directives, then $INVM_*, then the command line.
	skipDirs := *f.noDirs || noDirectives(args) || getenv(vmspec.EnvName("no-directives")) != ""
	sources, err := shapeSources(fs, args, getenv, &shape, skipDirs)
	if err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitError{0}
		}
		return o, fmt.Errorf("%w: %v", runner.ErrInvalidOptions, err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return o, fmt.Errorf("%w: no test binary", runner.ErrInvalidOptions)
	}
	if *f.arch != "" {
		shape.Arch = *f.arch
	}
	shape = shape.Defaults()
	if err := shape.Validate(); err != nil {
		return o, fmt.Errorf("%w: %w", runner.ErrInvalidOptions, err)
	}
	o.SetShape(shape)
	o.TestBinary, o.Args = fs.Arg(0), fs.Args()[1:]
	o.Verbose = *f.verbose
	if o.Verbose {
		fmt.Fprintf(stderr, "invm: VM spec: %s (%s)\n", shape, strings.Join(sources, ", "))
	}
	if err := f.apply(&o, stderr); err != nil {
		return o, err
	}
	return o, nil
}

// apply sets the options that come from the cliFlags, once the test binary
// and its arguments are known.
func (f cliFlags) apply(o *runner.Options, stderr io.Writer) error {
	o.Shell = *f.shell
	if *f.command != "" {
		o.Command = strings.Fields(*f.command)
	}
	o.TestTimeout, o.Timeout = *f.testTO, *f.timeout
	if o.TestTimeout == 0 {
		if d, ok := testTimeoutArg(o.Args); ok && d > 0 {
			// The test binary's own timeout panic (with stacks) comes first.
			o.TestTimeout = d + testTimeoutGrace
		}
	}
	if *f.layers != "" {
		o.ExtraLayers = strings.Split(*f.layers, ",")
	}
	o.NICSeed = filepath.Base(o.TestBinary)
	if *f.envList != "" {
		o.Env = strings.Split(*f.envList, ",")
	}
	switch *f.testdata {
	case "none":
	case "":
		if fi, err := os.Stat("testdata"); err == nil && fi.IsDir() {
			o.TestdataDir, _ = filepath.Abs("testdata")
		}
	default:
		o.TestdataDir = *f.testdata
	}
	if *f.pkgFiles {
		files, skipped, err := runner.PackageDirFiles(".", o.TestBinary)
		if err != nil {
			return fmt.Errorf("-package-files: %w (or pass -package-files=false)", err)
		}
		o.PackageFiles = files
		if len(skipped) > 0 && *f.verbose {
			fmt.Fprintf(stderr, "invm: package files left on the host: %s\n", strings.Join(skipped, ", "))
		}
	}
	return nil
}

// testTimeoutGrace is how much longer than the test's own -test.timeout
// the guest bound is: the test's timeout panic (with stacks) comes first.
const testTimeoutGrace = 5 * time.Second

// addShapeFlags defines one flag per VM spec field (and its aliases),
// setting shape through package vmspec.
func addShapeFlags(fs *flag.FlagSet, shape *vmspec.Shape) {
	for _, f := range vmspec.Fields {
		def := ""
		if f.Default != "" {
			def = " (default " + f.Default + ")"
		}
		v := shapeFlag{shape: shape, field: f}
		fs.Var(v, f.Flag(), f.Doc+def)
		for _, a := range f.Aliases {
			fs.Var(v, strings.ReplaceAll(a, "_", "-"), "alias of -"+f.Flag())
		}
	}
}

// shapeFlag is a flag.Value setting one VM spec field.
type shapeFlag struct {
	shape *vmspec.Shape
	field vmspec.Field
}

func (f shapeFlag) String() string {
	if f.shape == nil {
		return ""
	}
	return f.shape.Get(f.field.Name)
}

func (f shapeFlag) Set(v string) error { return f.shape.Set(f.field.Name, v) }

// IsBoolFlag lets a boolean field be given without a value (-iommu).
func (f shapeFlag) IsBoolFlag() bool { return f.field.Kind == vmspec.KindBool }

// shapeSources applies the test package's //invm: directives (unless
// skip), then the $INVM_* variable of every flag, and returns where the
// spec came from (for -verbose). Every bad value is an error.
func shapeSources(fs *flag.FlagSet, args []string, getenv func(string) string, shape *vmspec.Shape, skip bool) ([]string, error) {
	sources := []string{"defaults"}
	if !skip {
		ds, err := vmspec.PackageDirectives(".")
		if err == nil {
			var set map[string]vmspec.Resolved
			set, err = vmspec.Merge(shape, ds, func(name string) bool { return name == "kernel" || name == "arch" })
			if len(set) > 0 {
				sources = append(sources, fmt.Sprintf("%d //invm: directive(s) in ./*_test.go", len(set)))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w (or run with -no-directives)", runner.ErrInvalidOptions, err)
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := vmspec.EnvName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("$%s=%q: %w", name, v, err))
			return
		}
		sources = append(sources, "$"+name)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", runner.ErrInvalidOptions, err)
	}
	return append(sources, "flags"), nil
}

// noDirectives reports whether args ask to skip the directives (read
// before the flags are parsed, since the directives come first).
func noDirectives(args []string) bool {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false
		}
		if a == "-no-directives" || a == "--no-directives" || a == "-no-directives=true" {
			return true
		}
	}
	return false
}

// testTimeoutArg finds -test.timeout in the test's arguments.
func testTimeoutArg(args []string) (time.Duration, bool) {
	for i, a := range args {
		a = strings.TrimPrefix(a, "-")
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if name != "test.timeout" {
			continue
		}
		if !hasVal && i+1 < len(args) {
			val = args[i+1]
		}
		d, err := time.ParseDuration(val)
		return d, err == nil
	}
	return 0, false
}

// Run is the whole `invm` command: it parses args (flags, then the test
// binary and its arguments) with $INVM_* defaults from getenv, boots the
// guest, streams the test's output to stdout and stderr, and returns the
// exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		fmt.Fprintf(stderr, "invm: %v\n", err)
		return runner.ExitCode(runner.Result{}, err)
	}
	cov, err := planCoverage(&o, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "invm: %v\n", err)
		return runner.ExitCode(runner.Result{}, err)
	}
	o.Stdout, o.Stderr = stdout, stderr
	if o.Verbose {
		o.Log = stderr
	}
	res, err := runner.Run(ctx, o)
	if cov != nil {
		if cerr := cov.copyBack(); cerr != nil {
			fmt.Fprintf(stderr, "invm: coverage: %v\n", cerr)
			if err == nil && res.Pass {
				err = fmt.Errorf("%w: coverage: %w", runner.ErrInternal, cerr)
			}
		}
	}
	if o.Verbose {
		fmt.Fprintf(stderr, "invm: timings: %s\n", res.Timings())
	}
	code := runner.ExitCode(res, err)
	if err != nil || code == runner.ExitVerdictFail || (res.Verdict != nil && res.Verdict.Signal != "") {
		runner.WriteReport(stderr, res, err)
	}
	return code
}
