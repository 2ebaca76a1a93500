package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// Result is the outcome of a run.
type Result struct {
	// Pass is true only for a well-formed session with a passing verdict.
	Pass bool
	// Verdict is the guest's verdict, nil when none was received.
	Verdict *protocol.Verdict
	// Reason explains a failure in one line.
	Reason string
	// Arch, Kernel, QEMU and Accel say what ran; AccelReason why that
	// accelerator.
	Arch                qemu.Arch
	Kernel, QEMU, Accel string
	AccelReason         string
	// CommandLine reproduces the run: the vsock daemon's command, then
	// QEMU's (the state directory's initrd is gone after the run unless
	// Options.StateDir was given).
	CommandLine string
	// ConsoleTail is the end of the guest console.
	ConsoleTail string
	// QEMUStderr is QEMU's own error output.
	QEMUStderr string
	// Boot is QEMU start → guest connected; VM is QEMU start → QEMU exit
	// (boot, test, verdict, power-off); Total is the whole run.
	Boot, VM, Total time.Duration
	// Transport is the transport used and TransportReason why.
	Transport, TransportReason string
	// VerdictAt is when the verdict reached the host (zero if none).
	VerdictAt time.Time
	// AfterVerdict is verdict → QEMU exit: the Ack, the guest's unmounts
	// and power-off (zero without a verdict or a QEMU exit).
	AfterVerdict time.Duration
	// Translations is the number of TCG translation blocks when the verdict
	// arrived (Options.CountTranslations; 0 when not counted).
	Translations int64
}

// Timings describes how long each phase of the run took, in one line:
// the host's view (boot = QEMU start → guest connected, VM = QEMU start →
// exit, after verdict = verdict → QEMU exit, total = the whole Run) and the
// guest's own (kernel boot, init setup, test, teardown).
func (r Result) Timings() string {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	host := fmt.Sprintf("host boot %v, VM %v, after verdict %v, total %v", ms(r.Boot), ms(r.VM), ms(r.AfterVerdict), ms(r.Total))
	v := r.Verdict
	if v == nil {
		return host + "; no verdict"
	}
	g := v.Timings
	line := fmt.Sprintf("%s; guest kernel %v, setup %v, test %v, teardown %v; host overhead (total - guest clock) %v, outside the test (total - guest test) %v",
		host, ms(g.Boot), ms(g.Setup), ms(g.Test), ms(g.Teardown), ms(r.Total-g.Boot-g.Setup-g.Test-g.Teardown), ms(r.Total-g.Test))
	if r.Translations > 0 {
		line += fmt.Sprintf("; %d translation blocks at the verdict", r.Translations)
	}
	return line
}

// ConsoleTailLines is how many console lines Result.ConsoleTail keeps.
const ConsoleTailLines = 40

// Run boots a guest, runs the test and returns its verdict. The error is
// non-nil for failures that are not the test's (see the sentinel errors);
// a failing test is a nil error with Result.Pass false.
func Run(ctx context.Context, o Options) (res Result, err error) {
	o = o.WithDefaults()
	start := o.Now()
	defer func() { res.Total = o.Now().Sub(start) }()
	if err := o.Validate(); err != nil {
		return res, err
	}
	if o.Arch == "" {
		a, err := ArchOfELF(o.TestBinary)
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		o.Arch = a
		if err := o.validateShape(); err != nil { // the machine check needs the arch
			return res, err
		}
	}
	res.Arch = o.Arch
	if err := CheckStatic(o.TestBinary); err != nil {
		return res, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	profile, err := qemu.ProfileFor(o.Arch)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	// Kernel, QEMU, daemon.
	if o.Kernel == "" {
		if o.Kernel, err = FindKernel(o.Arch, KernelDirs(o.CacheDir)...); err != nil {
			return res, err
		}
	}
	res.Kernel = o.Kernel
	if o.QEMU == "" {
		if o.QEMU, err = exec.LookPath(profile.Binary); err != nil {
			return res, fmt.Errorf("%w: %s not on PATH (apt-get install qemu-system-x86 qemu-system-arm)", ErrNoQEMU, profile.Binary)
		}
	}
	res.QEMU = o.QEMU
	caps, err := qemu.ProbeCached(ctx, o.QEMU, filepath.Join(o.CacheDir, "qemu"))
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	shape := o.shape()
	shape.VhostUserSocket = "-" // checked for its device
	if err := caps.CheckSpec(shape); err != nil {
		return res, fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	backend, err := vmm.For(o.Backend)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if o.HostPages == qemu.HostPages2M || o.HostPages == qemu.HostPages1G {
		if shape.HugetlbfsDir, err = o.HostHugepages.Find(o.HostPages, o.MemoryMiB); err != nil {
			return res, fmt.Errorf("%w: host_pages: %w", ErrInvalidOptions, err)
		}
	}
	fmt.Fprintf(o.Log, "invm: %s, kernel %s\n", caps.Version, o.Kernel)
	transport, err := chooseTransport(o)
	if err != nil {
		return res, err
	}
	o.Daemon = transport.Daemon

	// State directory: removed (or emptied of our files) on every path.
	state := o.StateDir
	if state == "" {
		// Runners killed by SIGKILL cannot clean up: the next one does.
		if removed, _ := CleanStale(os.TempDir(), o.Now()); len(removed) > 0 {
			fmt.Fprintf(o.Log, "invm: removed %d stale state directories of killed runners\n", len(removed))
		}
		var release func()
		if state, release, err = newStateDir(""); err != nil {
			return res, fmt.Errorf("%w: %w", ErrInternal, err)
		}
		defer release()
	} else if err := os.MkdirAll(state, 0o700); err != nil {
		return res, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	// With a given StateDir the initrd and console log stay (for the
	// reproducer); the daemon's sockets and log go in every case.
	keep := o.StateDir != ""
	var cleanups []string
	defer func() {
		for _, f := range cleanups {
			os.Remove(f)
		}
	}()

	// Initramfs: cached base + per-run test layer.
	goarch := GOARCHes[o.Arch]
	if o.InitBinary == "" && o.ModuleRoot == "" && o.BaseLayerFile == "" {
		wd, _ := os.Getwd()
		if o.ModuleRoot, err = FindModuleRoot(wd); err != nil {
			return res, err
		}
	}
	base := o.BaseLayerFile
	if base == "" {
		if base, err = BaseLayer(o.CacheDir, goarch, o.InitBinary, o.ModuleRoot); err != nil {
			return res, err
		}
	}
	// Channel: the host side of the transport, before the config (the
	// guest dials its port) and before boot.
	ch, err := openChannel(o, profile, o.Machine, state, transport)
	if err != nil {
		return res, err
	}
	defer ch.close()
	res.Transport, res.TransportReason = string(ch.choice.Transport), ch.choice.Reason
	fmt.Fprintf(o.Log, "invm: transport %s (%s)\n", ch.choice.Transport, ch.choice.Reason)
	// Accelerator.
	choice := AccelChoice{Accel: o.Accel, Reason: "forced by options"}
	probe := AccelProbe{Arch: o.Arch, QEMU: o.QEMU, Kernel: o.Kernel,
		CacheDir: filepath.Join(o.CacheDir, "accel"), KVMDevice: o.KVMDevice, HostArch: HostArch()}
	switch o.Accel {
	case "":
		choice = ChooseAccel(ctx, probe)
	case qemu.AccelKVM:
		// A test that asks for KVM gets a working KVM or an infrastructure
		// failure naming this machine and the probe's result: never a TCG
		// run, never a QEMU that fails to start.
		c := ChooseAccel(ctx, probe)
		if c.Accel != qemu.AccelKVM {
			return res, fmt.Errorf("%w: accel = %q, but KVM does not work on %s: %s", ErrNoKVM, qemu.AccelKVM, MachineName(), c.Reason)
		}
		choice.Reason = "forced by options; " + c.Reason
	}
	res.Accel, res.AccelReason = choice.Accel, choice.Reason
	fmt.Fprintf(o.Log, "invm: accelerator %s (%s)\n", choice.Accel, choice.Reason)

	testArgs := o.Args
	if choice.Accel == qemu.AccelKVM && o.TCGTimeoutScale > 1 {
		// The test's timeout was sized for TCG: under KVM it gets the
		// nominal one back.
		testArgs = scaleTestTimeout(testArgs, o.TCGTimeoutScale)
	}
	// Under an external deadline, time spent here so far (a KVM canary
	// boot takes up to 10 s) comes off the guest's bounds, which count from
	// the test's start: they must still fire before the host's, which
	// counts from ours.
	guestTimeout := o.TestTimeout
	if o.ExternalDeadline {
		spent := o.Now().Sub(start)
		testArgs = shortenTestTimeout(testArgs, spent)
		guestTimeout = max(o.TestTimeout-spent, MinTestTimeout)
	}
	cfg := protocol.GuestConfig{
		Path:     guestTestPath(o),
		Args:     testArgs,
		Env:      append(append([]string(nil), o.Env...), hostHints(o.Kernel)...),
		Dir:      o.WorkDir,
		Timeout:  protocol.Duration(guestTimeout),
		Channel:  ch.guest,
		Hostname: o.Hostname,
		Verbose:  o.Verbose,
	}
	cfg.Env = append(cfg.Env, shapeEnv(shape)...)
	if o.GuestHugepages.Count > 0 {
		cfg.HugePageSizes = []string{o.GuestHugepages.Size}
	}
	layerBinary := o.TestBinary
	if o.GuestTestPath != "" {
		layerBinary = "" // already in an extra layer
	}
	debug := len(o.Command) > 0 || o.Shell
	if debug {
		// The guest serves debug commands and waits for the Ack (sent when
		// the command ended) as long as the run may last.
		cfg.DebugPort, cfg.AckTimeout = protocol.DefaultDebugPort, protocol.Duration(o.Timeout)
	}
	test, err := TestLayer(layerBinary, o.TestdataDir, cfg)
	if err != nil {
		return res, err
	}
	if o.Shell {
		bb, err := FindBusybox(o.ShellBusybox)
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		if a, err := ArchOfELF(bb); err != nil || a != o.Arch {
			return res, fmt.Errorf("%w: shell busybox %s is for %s, the guest is %s: pass a static %s busybox "+
				"(-shell-busybox / $INVM_SHELL_BUSYBOX; e.g. from `apt-get download busybox-static:%s`)",
				ErrInvalidOptions, bb, a, o.Arch, o.Arch, GOARCHes[o.Arch])
		}
		if err := test.AddFile(strings.TrimPrefix(GuestBusybox, "/"), bb, 0o755); err != nil {
			return res, fmt.Errorf("%w: %w", ErrInternal, err)
		}
		if len(o.Command) == 0 {
			o.Command = []string{GuestBusybox, "sh", "-i"}
		}
	}
	initrd := filepath.Join(state, "initrd.cpio")
	if !keep {
		cleanups = append(cleanups, initrd)
	}
	if err := WriteInitrd(initrd, base, o.ExtraLayers, test); err != nil {
		return res, err
	}

	// The vsock daemon (vhost-user-vsock), after the listener.
	if err := ch.startDaemon(ctx, state); err != nil {
		return res, err
	}

	// QEMU.
	spec := shape
	spec.Accel, spec.Kernel, spec.Initrd = choice.Accel, o.Kernel, initrd
	spec.VhostUserSocket, spec.QMPSocket = ch.vhostUserSocket, filepath.Join(state, "qmp.sock")
	spec.ExtraArgs = append(spec.ExtraArgs, ch.qemuArgs...)
	spec.Quiet, spec.ExtraCmdline = !o.Verbose, o.ExtraCmdline
	cleanups = append(cleanups, spec.QMPSocket)
	if o.NoMonitor {
		spec.QMPSocket = ""
	}
	if profile.TSCEarly && choice.Accel == qemu.AccelTCG {
		if spec.TSCkHz, err = qemu.HostTSCkHz(o.CPUInfo); err != nil {
			fmt.Fprintf(o.Log, "invm: warning: no tsc_early_khz (%v): microvm may hang under TCG\n", err)
		}
	}
	args, err := backend.Args(spec)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	res.CommandLine = ch.daemonCmd + qemu.CommandLine(o.QEMU, args)
	logPath := o.ConsoleLog
	if logPath == "" {
		logPath = filepath.Join(state, "console.log")
		if !keep {
			cleanups = append(cleanups, logPath)
		}
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, fmt.Errorf("%w: console log: %w", ErrInternal, err)
	}
	defer logFile.Close()
	con := &console{file: newHeadTail(logFile, ConsoleHead, ConsoleTail)}
	defer con.Close()
	if o.Verbose {
		con.live = o.Log
	}
	var qerr lockedBuffer
	cmd := exec.Command(o.QEMU, args...)
	cmd.Stdout, cmd.Stderr = con, io.MultiWriter(&qerr, con)
	cmd.ExtraFiles = ch.extraFiles
	bootStart := o.Now()
	vm, err := proc.Start(cmd)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	var watch *vmWatch
	if spec.QMPSocket != "" {
		watch = watchVM(ctx, backend, spec.QMPSocket, vm.Done(), o.Log)
	}
	defer vm.Kill()
	defer watch.quit(vm)
	defer func() {
		res.ConsoleTail = con.Tail(ConsoleTailLines)
		res.QEMUStderr = strings.TrimSpace(qerr.String())
	}()

	s := &session{o: o, vm: vm, daemon: ch.daemon, con: con, watch: watch, state: state, dial: ch.dial, transport: string(ch.choice.Transport), accel: choice.Accel}
	res2, err := s.run(ctx, ch.ln)
	res.Translations = s.translations
	res.Pass, res.Verdict, res.Reason = res2.Pass, res2.Verdict, res2.Reason
	if !s.connected.IsZero() {
		res.Boot = s.connected.Sub(bootStart)
	}
	if vm.Exited() {
		res.VM = vm.ExitTime().Sub(bootStart)
	}
	if !s.verdictAt.IsZero() {
		res.VerdictAt = s.verdictAt
		if vm.Exited() {
			res.AfterVerdict = vm.ExitTime().Sub(s.verdictAt)
		}
	}
	return res, err
}

// scaleTestTimeout divides the value of a -test.timeout argument by scale.
func scaleTestTimeout(args []string, scale int) []string {
	return mapTestTimeout(args, func(d time.Duration) time.Duration { return d / time.Duration(scale) })
}

// MinTestTimeout is the least a guest test's timeouts are shortened to.
const MinTestTimeout = time.Second

// shortenTestTimeout takes the host time already spent (e.g. a KVM canary
// boot) off a -test.timeout in args: the host's own deadline runs from the
// runner's start, the test's from the test's start, and the test's must come
// first so its goroutine stacks reach the log.
func shortenTestTimeout(args []string, spent time.Duration) []string {
	return mapTestTimeout(args, func(d time.Duration) time.Duration { return max(d-spent, MinTestTimeout) })
}

// mapTestTimeout applies f to the value of each -test.timeout argument.
func mapTestTimeout(args []string, f func(time.Duration) time.Duration) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		for _, prefix := range []string{"-test.timeout=", "--test.timeout="} {
			v, ok := strings.CutPrefix(a, prefix)
			if !ok {
				continue
			}
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				out[i] = prefix + f(d).String()
			}
		}
	}
	return out
}

// guestTestPath is where the test binary is in the guest.
func guestTestPath(o Options) string {
	if o.GuestTestPath != "" {
		return o.GuestTestPath
	}
	return GuestDir + "/" + filepath.Base(o.TestBinary)
}

// session drives one booted VM to its verdict.
type session struct {
	o         Options
	vm        *proc.Process
	daemon    *vsock.Daemon // nil unless vhost-user-vsock
	con       *console
	watch     *vmWatch
	state     string
	ctx       context.Context // the run's bounds (for the debug command)
	dial      func(ctx context.Context, port uint32) (net.Conn, error)
	transport string
	connected time.Time
	verdictAt time.Time
	// accel is the accelerator in use; translations is the TCG translation
	// block count at the verdict (Options.CountTranslations).
	accel        string
	translations int64
}

// daemonDone fires when the vsock daemon exited; never without a daemon.
func (s *session) daemonDone() <-chan struct{} {
	if s.daemon == nil {
		return nil
	}
	return s.daemon.Done()
}

// classify turns a failure into the error of the highest-precedence cause:
// the daemon died while QEMU ran, the host timeout, a guest panic.
func (s *session) classify(ctx context.Context, daemonDied bool, fallback error) error {
	switch {
	case daemonDied:
		return fmt.Errorf("%w (vhost-device-vsock exited while the VM ran: %v): %s", ErrDaemonDied, s.daemon.ExitErr(), strings.TrimSpace(s.daemon.Log()))
	case errors.Is(ctx.Err(), context.Canceled):
		// Stopped from outside (SIGTERM in the launcher), not the host timeout.
		return fmt.Errorf("%w: the run was stopped (%v): %v", ErrTimeout, context.Cause(ctx), fallback)
	case ctx.Err() != nil:
		return fmt.Errorf("%w after %v: %v", ErrTimeout, s.o.Timeout, fallback)
	case s.watch.panicked(s.vm.Exited()):
		return fmt.Errorf("%w (QMP GUEST_PANICKED): %v", ErrGuestPanic, fallback)
	case s.con.Contains(PanicMarker):
		return fmt.Errorf("%w: %v", ErrGuestPanic, fallback)
	}
	return fallback
}

// Named waits of a session.
const (
	// vmExitGrace is how long the collector may go on after QEMU exited:
	// the guest's EOF normally arrives within ~15 ms.
	vmExitGrace = 500 * time.Millisecond
	// daemonExitSettle is how long a broken session waits for the vsock
	// daemon's exit to show: a killed daemon looks like a clean EOF, which
	// may arrive before its exit is reaped.
	daemonExitSettle = 300 * time.Millisecond
)

// collected is what the session's collector returns.
type collected struct {
	res protocol.Result
	err error
}

// run drives the session in three phases: boot until the guest init's
// first Hello (bounded by ChannelTimeout), collect the streams until the
// verdict, then wait for the guest's orderly power-off (bounded by
// PoweroffTimeout). When ctx ends (host timeout, or SIGTERM in the
// launcher) after the guest spoke, the host first asks the guest for the
// test's goroutine stacks and collects for StacksGrace more before it
// stops.
func (s *session) run(ctx context.Context, ln net.Listener) (protocol.Result, error) {
	s.ctx = ctx
	// The collector runs on its own context: ctx ending asks for stacks
	// first, the collector stops after the grace.
	cctx, ccancel := context.WithCancel(context.Background())
	defer ccancel()
	hello := make(chan struct{})
	stacks := make(chan struct{})
	done := make(chan collected, 1)
	go func() {
		r, err := protocol.CollectStreams(cctx, ln, s.collectOptions(ctx, hello, stacks))
		done <- collected{r, err}
	}()
	// Close the listener on return so the accepting goroutine ends; the
	// collector closes what it accepted.
	defer ln.Close()
	stop := func() collected {
		ccancel()
		ln.Close()
		return <-done
	}
	early, err := s.boot(ctx, hello, done)
	if err != nil {
		stop()
		return protocol.Result{}, err
	}
	s.connected = s.o.Now()
	c, daemonDied := collected{}, false
	if early != nil {
		c = *early // the guest spoke, but the session ended at once (a bad hello)
	} else {
		c, daemonDied = s.collect(ctx, done, stop, stacks, ccancel)
	}
	if err := s.sessionError(ctx, c, daemonDied); err != nil {
		return c.res, err
	}
	return c.res, s.powerOff(ctx, c.res)
}

// collectOptions wires the protocol session to the run: live output,
// diagnostics, files, the stacks request, and the hello and verdict hooks.
func (s *session) collectOptions(ctx context.Context, hello, stacks chan struct{}) protocol.CollectOptions {
	opts := protocol.CollectOptions{
		Stdout: s.o.Stdout, Stderr: s.o.Stderr, Diag: diagWriter(s.o), Stacks: stacks,
		OnHello: func(protocol.Hello) { close(hello) },
		OnVerdict: func(protocol.Verdict) {
			s.verdictAt = s.o.Now()
			if s.o.CountTranslations && s.accel == qemu.AccelTCG {
				s.translations = s.watch.translations(ctx)
			}
		},
	}
	if len(s.o.Command) > 0 {
		opts.BeforeAck = s.runDebug
	}
	if s.o.OutputsDir != "" {
		opts.Files = protocol.DirSink{Dir: s.o.OutputsDir}
	}
	return opts
}

// boot waits for the guest init's first Hello; the error says why it never
// came (QEMU exited, the daemon died, ChannelTimeout, ctx). A collector
// that ends first (a guest that spoke, but not a valid Hello) ends the
// boot too: its result is returned for the session's error.
func (s *session) boot(ctx context.Context, hello <-chan struct{}, done <-chan collected) (*collected, error) {
	chTimer := time.NewTimer(s.o.ChannelTimeout)
	defer chTimer.Stop()
	select {
	case <-hello:
		return nil, nil
	case c := <-done:
		if c.res.Hello.Version == 0 {
			// No hello at all: QEMU's end (a failed boot) may be what
			// closed the stream; let its exit show.
			select {
			case <-s.vm.Done():
			case <-time.After(vmExitGrace):
			}
		}
		return &c, nil
	case <-s.vm.Done():
		err := fmt.Errorf("%w: QEMU exited (%s) before the guest connected", ErrBootFailed, exitStatus(s.vm.Err()))
		return nil, s.classify(ctx, false, err)
	case <-s.daemonDone():
		s.vm.Kill()
		return nil, s.classify(ctx, true, nil)
	case <-chTimer.C:
		s.vm.Kill()
		return nil, s.classify(ctx, false, fmt.Errorf("%w within %v", ErrNoChannel, s.o.ChannelTimeout))
	case <-ctx.Done():
		s.vm.Kill()
		return nil, s.classify(ctx, false, fmt.Errorf("%w: boot", ErrNoChannel))
	}
}

// collect waits for the collector. It ends on its own after the verdict
// (EOF when the guest powers off, or the linger); a daemon exit cancels
// it; ctx ending asks for stacks, then cancels it after StacksGrace; a
// QEMU exit ends it after vmExitGrace.
func (s *session) collect(ctx context.Context, done <-chan collected, stop func() collected, stacks chan struct{}, cancel func()) (collected, bool) {
	vmDone, ctxDone := s.vm.Done(), ctx.Done()
	var grace, stacksGrace <-chan time.Time
	for {
		select {
		case c := <-done:
			return c, false
		case <-s.daemonDone():
			daemonDied := !s.vm.Exited()
			if daemonDied {
				s.vm.Kill()
			}
			return stop(), daemonDied
		case <-vmDone:
			vmDone = nil
			grace = time.After(vmExitGrace)
		case <-grace:
			cancel()
		case <-ctxDone:
			ctxDone = nil
			fmt.Fprintf(s.o.Log, "invm: stopping (%v): asking the guest for the test's goroutine stacks, %v grace\n", context.Cause(ctx), s.o.StacksGrace)
			close(stacks)
			stacksGrace = time.After(s.o.StacksGrace)
		case <-stacksGrace:
			cancel()
		}
	}
}

// sessionError classifies a collector that ended without a good session.
func (s *session) sessionError(ctx context.Context, c collected, daemonDied bool) error {
	if c.err != nil && !daemonDied {
		select {
		case <-s.daemonDone():
			daemonDied = !s.vm.Exited()
		case <-time.After(daemonExitSettle):
		}
	}
	switch {
	case daemonDied:
		s.vm.Kill()
		return s.classify(ctx, true, nil)
	case c.err != nil && c.res.Hello.Version == 0 && s.vm.Exited():
		// Streams opened but QEMU exited before the guest spoke.
		return s.classify(ctx, false, fmt.Errorf("%w: QEMU exited (%s) before the guest connected", ErrBootFailed, exitStatus(s.vm.Err())))
	case c.err != nil:
		s.vm.Kill()
		return s.classify(ctx, false, fmt.Errorf("%w: %v", ErrBadSession, c.err))
	}
	return nil
}

// powerOff waits, after the Ack, for the guest to power off (QEMU exits).
// A passing verdict stands only after an orderly power-off: QEMU exited by
// itself within PoweroffTimeout, with status 0, and no kernel panic was
// seen; otherwise the run fails with ErrAfterVerdict. After a failing
// verdict the same troubles are only logged: the test's failure says more.
func (s *session) powerOff(ctx context.Context, res protocol.Result) error {
	var trouble string
	select {
	case <-s.vm.Done():
		switch {
		case s.watch.panicked(true) || s.con.Contains(PanicMarker):
			trouble = "the guest kernel panicked after the verdict"
		case s.vm.Err() != nil:
			trouble = fmt.Sprintf("QEMU exited (%s) after the verdict", exitStatus(s.vm.Err()))
		}
	case <-s.daemonDone():
		if !s.vm.Exited() {
			s.vm.Kill()
			return s.classify(ctx, true, nil)
		}
	case <-time.After(s.o.PoweroffTimeout):
		trouble = fmt.Sprintf("the guest did not power off within %v after the verdict; killed", s.o.PoweroffTimeout)
		s.vm.Kill()
	case <-ctx.Done():
		s.vm.Kill()
	}
	if ctx.Err() != nil {
		// Stopped from outside: the verdict (if any, with the stacks) is
		// kept, the run still is a host-side stop.
		return s.classify(ctx, false, fmt.Errorf("stopped: %s", res.Reason))
	}
	if trouble == "" {
		return nil
	}
	if res.Pass {
		return fmt.Errorf("%w: %s (console tail in the report)", ErrAfterVerdict, trouble)
	}
	fmt.Fprintf(s.o.Log, "invm: warning: %s\n", trouble)
	return nil
}

// exitStatus describes a process exit error.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// diagWriter returns where init diagnostics go: the log when verbose.
func diagWriter(o Options) io.Writer {
	if o.Verbose {
		return prefixWriter{w: o.Log, prefix: "invm: guest: "}
	}
	return nil
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	_, err := io.WriteString(p.w, p.prefix+string(b))
	return len(b), err
}

// hostHints returns the environment entries the runner adds for the test
// (EnvKernelRelease and the host's identity).
func hostHints(kernel string) []string {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	host, _ := os.Hostname()
	var env []string
	for _, kv := range [][2]string{
		{EnvKernelRelease, KernelRelease(kernel)},
		{EnvHostKernelRelease, read("/proc/sys/kernel/osrelease")},
		{EnvHostHostname, host},
		{EnvHostBootID, read("/proc/sys/kernel/random/boot_id")},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}

// lockedBuffer is a concurrency-safe bytes buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) < tailSize {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
