// Command invmbench measures boot-to-verdict of tests/hello through the
// runner, for our kernel (x86_64 microvm + PVH vmlinux, aarch64 virt) and,
// side by side in the same run, for a baseline: the same init and test on
// Debian's linux-image-cloud-amd64 kernel under q35 (its virtio and vsock
// modules are loaded by a tiny pre-init, see modloader).
//
//	go run ./runner/cmd/invmbench -n 10
//
// Boots are interleaved (ours, baseline, ours, ...) so load changes hit
// both alike. For each setup it prints min/median/max of the VM time (QEMU
// start → QEMU exit: boot, test, verdict, ack, power-off), the median of
// boot-to-verdict (QEMU start → the verdict at the host: the VM time less
// what follows the verdict) and min/median/max of the whole runner call,
// and the ratio of the medians to the baseline, and the TCG
// translation blocks made by the verdict (runner.Options.CountTranslations):
// the guest code run for the first time, the part of a TCG boot's cost that
// host noise does not move. -compare-kernel and -compare-init add rows for
// another kernel or guest init (e.g. a previous commit's); -coverage a row
// with a guest coverage directory, as `bazel coverage` runs have.
// -compare-invm adds rows that run whole invm binaries (e.g. a previous
// commit's and this one's, each with its own guest init) as processes, so
// that runner changes are measured against each other in the same run: the
// "run" columns are then the process's wall time, and every row has the
// host overhead (the run's total less the guest's own clock). -snapshot
// (on by default) adds, per arch, a snapshot-start row (start = "snapshot":
// the template made in the warm-up, restored on every boot) and a cold row
// over the same channel (virtio-serial), and prints the snapshot median's
// ratio to the cold ones and what making the template cost.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "invmbench:", err)
		os.Exit(1)
	}
}

// setup is one configuration being measured.
type setup struct {
	name    string
	opts    runner.Options
	vm, tot []time.Duration
	// toVerdict is boot-to-verdict: QEMU start → the verdict at the host.
	toVerdict []time.Duration
	tbs       []int64 // TCG translation blocks at the verdict
	// snapshot says the setup is a snapshot start; template is the
	// template it restored (read after the warm-up made it).
	snapshot bool
	template runner.Template
	// over is the host overhead: the run's total less the guest's clock.
	over []time.Duration
	// invm, when set, is an invm binary run as a process for each boot
	// (-compare-invm); opts then only gives its kernel, init and test.
	invm string
}

// flags are invmbench's command line.
type flags struct {
	n                                        int
	arches, baseline, root, writeBL, compare string
	inits, qemus, formats, invms             string
	verbose, shapes, coverage, snapshot      bool
}

func parseFlags(args []string) (flags, error) {
	fs := flag.NewFlagSet("invmbench", flag.ContinueOnError)
	var f flags
	fs.IntVar(&f.n, "n", 10, "boots per setup")
	fs.StringVar(&f.arches, "arch", "x86_64,aarch64", "comma-separated guest arches of our kernel")
	fs.StringVar(&f.baseline, "baseline-kernel", "/boot/vmlinuz-*-cloud-amd64", "Debian cloud kernel (glob); \"\" for no baseline")
	fs.StringVar(&f.root, "module-root", "", "rules_go_vm source tree (default: found from the working directory)")
	fs.BoolVar(&f.verbose, "v", false, "print every boot")
	fs.StringVar(&f.writeBL, "write-baseline-layer", "", "only write the baseline's extra initramfs layer to this file (for invm -layer)")
	fs.BoolVar(&f.shapes, "shapes", false, "also boot our x86_64 kernel under q35 and without the QMP monitor (ratios printed)")
	fs.StringVar(&f.compare, "compare-kernel", "", "also boot this x86_64 kernel (e.g. a previous kbuild entry's vmlinux) the same way as ours")
	fs.StringVar(&f.qemus, "compare-qemu", "", "comma-separated QEMU binaries (e.g. a wrapper adding -cpu max): also boot ours with each, x86_64 and aarch64 alike")
	fs.BoolVar(&f.coverage, "coverage", false, "also boot ours with a guest coverage directory (runner.Options.CoverageDir: made, walked and sent back; what `bazel coverage` adds to a run)")
	fs.BoolVar(&f.snapshot, "snapshot", true, "also measure snapshot start (a template restored) and a cold boot over virtio-serial, its channel")
	fs.StringVar(&f.formats, "template-formats", "", "comma-separated template save formats (stream, mapped-ram, ram-file): a snapshot row for each; \"\" is the runner's default")
	fs.StringVar(&f.invms, "compare-invm", "", "comma-separated INVM=INIT pairs (e.g. a previous commit's invm and guest init, and this one's): also boot ours by running each invm as a process with its init, x86_64 and aarch64 alike (arch from the init's ELF)")
	fs.StringVar(&f.inits, "compare-init", "", "comma-separated prebuilt guest inits (e.g. a previous commit's; arch from the ELF): also boot ours with each")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.root == "" {
		wd, _ := os.Getwd()
		r, err := runner.FindModuleRoot(wd)
		if err != nil {
			return f, err
		}
		f.root = r
	}
	return f, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "invmbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	hello := map[string]string{}
	setups, err := ourSetups(f, work, hello)
	if err != nil {
		return err
	}
	if f.baseline != "" {
		s, err := baselineSetup(f, work, hello)
		if err != nil || s == nil {
			return err // or only the layer was asked for
		}
		setups = append(setups, s)
	}
	if err := measure(ctx, setups, f.n, f.verbose, out); err != nil {
		return err
	}
	return report(out, setups, f.n, f.shapes)
}

// ourSetups are the setups of our kernel for each of f.arches, with the
// -compare-init, -compare-kernel and -shapes variants.
func ourSetups(f flags, work string, hello map[string]string) ([]*setup, error) {
	cache := runner.DefaultCacheDir()
	var setups []*setup
	for _, name := range strings.Split(f.arches, ",") {
		a := arch.Arch(strings.TrimSpace(name))
		if a == "" {
			continue
		}
		kernel, err := runner.FindKernel(a, runner.KernelDirs(cache)...)
		if err != nil {
			return nil, err
		}
		bin, err := buildHello(f.root, work, a.GOARCH(), hello)
		if err != nil {
			return nil, err
		}
		ours := runner.Options{TestBinary: bin, Kernel: kernel, ModuleRoot: f.root, TestdataDir: filepath.Join(f.root, "tests/hello/testdata"),
			CountTranslations: true}
		setups = append(setups, &setup{name: fmt.Sprintf("%s ours (%s)", a, qemu.Profiles[a].Machine), opts: ours})
		variants, err := variantSetups(f, a, ours)
		if err != nil {
			return nil, err
		}
		setups = append(setups, variants...)
	}
	return setups, nil
}

// variantSetups are ours with another init (-compare-init), another kernel
// (-compare-kernel) and, for -shapes, under q35 and without the monitor.
func variantSetups(f flags, a arch.Arch, ours runner.Options) ([]*setup, error) {
	var setups []*setup
	for _, init := range strings.Split(f.inits, ",") {
		if init == "" {
			continue
		}
		got, err := runner.ArchOfELF(init)
		if err != nil {
			return nil, fmt.Errorf("-compare-init: %w", err)
		}
		if got == a {
			other := ours
			other.InitBinary = init
			setups = append(setups, &setup{name: fmt.Sprintf("%s -compare-init %s", a, filepath.Base(init)), opts: other})
		}
	}
	for _, pair := range strings.Split(f.invms, ",") {
		if pair == "" {
			continue
		}
		bin, init, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("-compare-invm %q: want INVM=INIT", pair)
		}
		got, err := runner.ArchOfELF(init)
		if err != nil {
			return nil, fmt.Errorf("-compare-invm: %w", err)
		}
		if got == a {
			other := ours
			other.InitBinary = init
			setups = append(setups, &setup{name: fmt.Sprintf("%s -compare-invm %s", a, bin), opts: other, invm: bin})
		}
	}
	for _, q := range strings.Split(f.qemus, ",") {
		if q == "" {
			continue
		}
		other := ours
		other.QEMU = q
		setups = append(setups, &setup{name: fmt.Sprintf("%s -compare-qemu %s", a, filepath.Base(q)), opts: other})
	}
	if f.compare != "" && a == arch.X86_64 {
		other := ours
		other.Kernel = f.compare
		setups = append(setups, &setup{name: "x86_64 -compare-kernel", opts: other})
	}
	if f.coverage {
		cov := ours
		cov.CoverageDir = filepath.Join(os.TempDir(), fmt.Sprintf("invmbench-coverage-%s-%d", a, os.Getpid()))
		setups = append(setups, &setup{name: fmt.Sprintf("%s ours, -coverage", a), opts: cov})
	}
	if f.snapshot {
		serial := ours
		serial.Transport = "virtio-serial"
		setups = append(setups, &setup{name: fmt.Sprintf("%s ours, virtio-serial", a), opts: serial})
		for _, format := range strings.Split(f.formats, ",") {
			snap := ours
			snap.Start, snap.TemplateFormat = runner.StartSnapshot, format
			name := fmt.Sprintf("%s ours, snapshot", a)
			if format != "" {
				name += " " + format
			}
			setups = append(setups, &setup{name: name, opts: snap, snapshot: true})
		}
	}
	if f.shapes && a == arch.X86_64 {
		q35, noQMP := ours, ours
		q35.Machine, noQMP.NoMonitor = "q35", true
		setups = append(setups,
			&setup{name: "x86_64 ours (q35)", opts: q35},
			&setup{name: fmt.Sprintf("x86_64 ours (%s, no QMP)", qemu.Profiles[a].Machine), opts: noQMP})
	}
	return setups, nil
}

// baselineSetup is the Debian cloud kernel under q35 with the module
// loader's layer; nil (after writing the layer) for -write-baseline-layer.
func baselineSetup(f flags, work string, hello map[string]string) (*setup, error) {
	matches, _ := filepath.Glob(f.baseline)
	if len(matches) == 0 {
		return nil, fmt.Errorf("no baseline kernel %s (apt-get install linux-image-cloud-amd64, or -baseline-kernel \"\")", f.baseline)
	}
	kernel := matches[len(matches)-1]
	bin, err := buildHello(f.root, work, "amd64", hello)
	if err != nil {
		return nil, err
	}
	layer, err := baselineLayer(f.root, work, kernel)
	if err != nil {
		return nil, err
	}
	if f.writeBL != "" {
		b, err := os.ReadFile(layer)
		if err != nil {
			return nil, err
		}
		return nil, os.WriteFile(f.writeBL, b, 0o644)
	}
	return &setup{name: "x86_64 baseline (q35, Debian cloud kernel)",
		opts: runner.Options{TestBinary: bin, Kernel: kernel, Machine: "q35", ModuleRoot: f.root, ExtraLayers: []string{layer},
			TestdataDir: filepath.Join(f.root, "tests/hello/testdata"), CountTranslations: true}}, nil
}

// measure boots each setup once to warm up (the cached base layers, the
// accel choice), then n times, interleaved.
func measure(ctx context.Context, setups []*setup, n int, verbose bool, out io.Writer) error {
	for _, s := range setups {
		res, err := once(ctx, s, verbose, out)
		if err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.name, err)
		}
		if s.snapshot {
			if res.Start != runner.StartSnapshot {
				return fmt.Errorf("%s: warm-up: started %s: %s", s.name, res.Start, res.StartReason)
			}
			if s.template, err = runner.ReadTemplate(res.Template); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	for i := 0; i < n; i++ {
		for _, s := range setups {
			res, err := once(ctx, s, verbose, out)
			if err != nil {
				return fmt.Errorf("%s: boot %d: %w", s.name, i, err)
			}
			if s.snapshot && res.Start != runner.StartSnapshot {
				return fmt.Errorf("%s: boot %d: started %s: %s", s.name, i, res.Start, res.StartReason)
			}
			s.vm = append(s.vm, res.VM)
			s.toVerdict = append(s.toVerdict, res.VM-res.AfterVerdict)
			s.tot = append(s.tot, res.Total)
			s.tbs = append(s.tbs, res.Translations)
			if v := res.Verdict; v != nil {
				g := v.Timings
				s.over = append(s.over, res.Total-g.Boot-g.Setup-g.Test-g.Teardown)
			}
		}
	}
	return nil
}

// report prints the table and, for -shapes, the ratios.
func report(out io.Writer, setups []*setup, n int, shapes bool) error {
	host, _ := os.Hostname()
	fmt.Fprintf(out, "invmbench: %d boots per setup, interleaved, host %s, %s\n", n, host, time.Now().Format(time.RFC3339))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "setup\tVM min\tmedian\tmax\tto verdict median\trun min\tmedian\tmax\thost overhead median\tVM median / baseline\tTBs at verdict")
	var base time.Duration
	for _, s := range setups {
		if strings.Contains(s.name, "baseline") {
			base = median(s.vm)
		}
	}
	for _, s := range setups {
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", float64(median(s.vm))/float64(base))
		}
		mn, md, mx := stats(s.vm)
		tmn, tmd, tmx := stats(s.tot)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.name, mn, md, mx, median(s.toVerdict).Round(runner.TimingsPrecision),
			tmn, tmd, tmx, median(s.over), ratio, tbStats(s.tbs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	reportSnapshots(out, setups)
	if shapes {
		byName := map[string]time.Duration{}
		for _, s := range setups {
			byName[s.name] = median(s.vm)
		}
		micro := fmt.Sprintf("x86_64 ours (%s)", qemu.Profiles[arch.X86_64].Machine)
		if m := byName[micro]; m > 0 {
			fmt.Fprintf(out, "VM median ratios: q35 / microvm = %.2f; with QMP / without = %.2f\n",
				float64(byName["x86_64 ours (q35)"])/float64(m), float64(m)/float64(byName[micro[:len(micro)-1]+", no QMP)"]))
		}
	}
	return nil
}

// reportSnapshots prints, per snapshot setup, its VM and run medians over
// the cold ones of its arch (the default transport, and virtio-serial) and
// its template's cost.
func reportSnapshots(out io.Writer, setups []*setup) {
	byName := map[string]*setup{}
	for _, s := range setups {
		byName[s.name] = s
	}
	for _, s := range setups {
		if !s.snapshot {
			continue
		}
		a := s.template.Meta.Arch
		cold := byName[fmt.Sprintf("%s ours (%s)", a, qemu.Profiles[a].Machine)]
		serial := byName[fmt.Sprintf("%s ours, virtio-serial", a)]
		if cold == nil || serial == nil {
			continue
		}
		ratio := func(x, y []time.Duration) float64 { return float64(median(x)) / float64(median(y)) }
		fmt.Fprintf(out, "%s: %s / cold medians: VM %.2f, boot-to-verdict %.2f, run %.2f; over virtio-serial: VM %.2f, boot-to-verdict %.2f, run %.2f; "+
			"template (%s) made in %v, %.1f MB of saved state, %.1f MB on disk (%s)\n",
			a, s.name, ratio(s.vm, cold.vm), ratio(s.toVerdict, cold.toVerdict), ratio(s.tot, cold.tot),
			ratio(s.vm, serial.vm), ratio(s.toVerdict, serial.toVerdict), ratio(s.tot, serial.tot),
			s.template.Meta.Format, s.template.Meta.MakeTime.Round(runner.TimingsPrecision), float64(s.template.Meta.StateBytes)/1e6,
			float64(diskUsage(s.template.Dir))/1e6, s.template.Dir)
	}
}

// diskUsage is the bytes the files in dir take on disk (sparse files
// count only their data).
func diskUsage(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
	}
	return n
}

func once(ctx context.Context, s *setup, verbose bool, out io.Writer) (runner.Result, error) {
	run := runner.Run
	if s.invm != "" {
		run = s.runInvm
	}
	res, err := run(ctx, s.opts)
	if err == nil && !res.Pass {
		err = errors.New("hello failed: " + res.Reason)
	}
	if err != nil {
		return res, fmt.Errorf("%w\nconsole:\n%s", err, res.ConsoleTail)
	}
	if verbose {
		r := func(d time.Duration) time.Duration { return d.Round(runner.TimingsPrecision) }
		fmt.Fprintf(out, "%s: VM %v, run %v (boot to connect %v)\n", s.name, r(res.VM), r(res.Total), r(res.Boot))
	}
	return res, nil
}

// buildHello compiles tests/hello for goarch once.
func buildHello(root, work, goarch string, built map[string]string) (string, error) {
	if p, ok := built[goarch]; ok {
		return p, nil
	}
	p := filepath.Join(work, "hello-"+goarch+".test")
	if err := goCmd(root, goarch, "test", "-c", "-o", p, "./tests/hello"); err != nil {
		return "", err
	}
	built[goarch] = p
	return p, nil
}

func goCmd(root, goarch string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// baselineModules are the modules the baseline kernel needs for the vsock
// channel, by name; their dependencies come from modules.dep.
var baselineModules = []string{"virtio_pci", "vmw_vsock_virtio_transport"}

// baselineLayer writes the extra initramfs layer of the baseline: /init =
// modloader, /guestinit = the real init, /modules/*.ko + order.
func baselineLayer(root, work, kernel string) (string, error) {
	release := runner.KernelRelease(kernel)
	if release == "" {
		return "", fmt.Errorf("cannot read the release of %s", kernel)
	}
	modDir := filepath.Join("/lib/modules", release)
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return "", err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[strings.TrimSuffix(filepath.Base(mod), ".ko")] = mod
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for i := len(deps[m]) - 1; i >= 0; i-- {
			visit(deps[m][i])
		}
		order = append(order, m)
	}
	for _, name := range baselineModules {
		m, ok := byName[name]
		if !ok {
			return "", fmt.Errorf("module %s not in %s/modules.dep", name, modDir)
		}
		visit(m)
	}
	loader := filepath.Join(work, "modloader")
	guestinit := filepath.Join(work, "guestinit")
	if err := goCmd(root, "amd64", "build", "-o", loader, "./runner/cmd/invmbench/modloader"); err != nil {
		return "", err
	}
	if err := goCmd(root, "amd64", "build", "-o", guestinit, runner.InitPackage); err != nil {
		return "", err
	}
	l := initramfs.NewLayer()
	var names []string
	for _, m := range order {
		if err := l.AddFile("modules/"+filepath.Base(m), filepath.Join(modDir, m), 0o644); err != nil {
			return "", err
		}
		names = append(names, filepath.Base(m))
	}
	for _, err := range []error{
		l.AddBytes("modules/order", []byte(strings.Join(names, "\n")+"\n"), 0o644),
		l.AddFile("init", loader, 0o755),
		l.AddFile("guestinit", guestinit, 0o755),
	} {
		if err != nil {
			return "", err
		}
	}
	p := filepath.Join(work, "baseline.cpio")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := l.WriteTo(f); err != nil {
		return "", err
	}
	return p, f.Close()
}

// tbStats formats the median translation block count and its spread
// ("-" when none was counted: KVM, or no monitor).
func tbStats(tbs []int64) string {
	mn, md, mx := order(tbs)
	if mn == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%d-%d)", md, mn, mx)
}

func median(d []time.Duration) time.Duration {
	_, m, _ := stats(d)
	return m
}

func stats(d []time.Duration) (min, med, max time.Duration) {
	mn, md, mx := order(d)
	r := func(x time.Duration) time.Duration { return x.Round(runner.TimingsPrecision) }
	return r(mn), r(md), r(mx)
}

// order returns the minimum, the median (the upper one for an even count)
// and the maximum of xs; zeros when xs is empty.
func order[T cmp.Ordered](xs []T) (min, med, max T) {
	if len(xs) == 0 {
		return
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

// runInvm boots o through the invm binary s.invm as a process: Result's
// VM, verdict timings and translation blocks come from its -v timings line,
// Total is the process's wall time.
func (s *setup) runInvm(ctx context.Context, o runner.Options) (runner.Result, error) {
	args := []string{"-v", "-count-translations", "-kernel", o.Kernel, "-init", o.InitBinary, "-testdata", o.TestdataDir}
	if o.QEMU != "" {
		args = append(args, "-qemu", o.QEMU)
	}
	cmd := exec.CommandContext(ctx, s.invm, append(append(args, "--"), o.TestBinary)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	res := runner.Result{Total: time.Since(start)}
	if err != nil {
		return res, fmt.Errorf("%s: %w\n%s", s.invm, err, stderr.String())
	}
	if err := parseTimings(stderr.String(), &res); err != nil {
		return res, fmt.Errorf("%s: %w\n%s", s.invm, err, stderr.String())
	}
	res.Pass = true
	return res, nil
}

// timingsLine matches the parts of invm's -v timings line (runner.Result.Timings) that invmbench reports.
var timingsLine = regexp.MustCompile(`invm: timings: host boot \S+, VM (\S+), after verdict (\S+), .*guest kernel (\S+), setup (\S+), test (\S+), teardown (\S+);(?: .*; (\d+) translation blocks)?`)

// parseTimings fills res from invm's -v output.
func parseTimings(out string, res *runner.Result) error {
	m := timingsLine.FindStringSubmatch(out)
	if m == nil {
		return errors.New("no timings line with a verdict")
	}
	var d [6]time.Duration
	for i := range d {
		v, err := time.ParseDuration(strings.TrimSuffix(m[i+1], ","))
		if err != nil {
			return fmt.Errorf("timings line: %w", err)
		}
		d[i] = v
	}
	res.VM, res.AfterVerdict = d[0], d[1]
	res.Verdict = &protocol.Verdict{Pass: true}
	res.Verdict.Timings.Boot, res.Verdict.Timings.Setup, res.Verdict.Timings.Test, res.Verdict.Timings.Teardown = d[2], d[3], d[4], d[5]
	if m[7] != "" {
		res.Translations, _ = strconv.ParseInt(m[7], 10, 64)
	}
	return nil
}
