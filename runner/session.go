package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// vmSession drives one booted VM to its verdict.
type vmSession struct {
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

// newVMSession is the session phase's state for the booted vm.
func newVMSession(p *runPlan, pr *prepared, vm *bootedVM) *vmSession {
	return &vmSession{o: p.o, vm: vm.proc, daemon: pr.ch.daemon, con: vm.con, watch: vm.watch, state: pr.state,
		dial: pr.ch.dial, transport: string(pr.ch.choice.Transport), accel: pr.accel.Accel}
}

// daemonDone fires when the vsock daemon exited; never without a daemon.
func (s *vmSession) daemonDone() <-chan struct{} {
	if s.daemon == nil {
		return nil
	}
	return s.daemon.Done()
}

// classify turns a failure into the error of the highest-precedence cause:
// the daemon died while QEMU ran, the host timeout, a guest panic.
func (s *vmSession) classify(ctx context.Context, daemonDied bool, fallback error) error {
	var fatal *lifecycle.FatalError
	switch {
	case daemonDied:
		return fmt.Errorf("%w (vhost-device-vsock exited while the VM ran: %v): %s", ErrDaemonDied, s.daemon.ExitErr(), strings.TrimSpace(s.daemon.Log()))
	case errors.As(context.Cause(ctx), &fatal):
		// A fatal report of the run's own (a panic in a tracked task).
		return fmt.Errorf("%w: %v: %v", ErrInternal, fatal, fallback)
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
	res protocol.SessionResult
	err error
}

// run drives the session in three phases: boot until the guest init's
// first Hello (bounded by ChannelTimeout), collect the streams until the
// verdict, then wait for the guest's orderly power-off (bounded by
// PoweroffTimeout). When ctx ends (host timeout, or SIGTERM in the
// launcher) after the guest spoke, the host first asks the guest for the
// test's goroutine stacks and collects for StacksGrace more before it
// stops.
func (s *vmSession) run(ctx context.Context, ln net.Listener) (protocol.SessionResult, error) {
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
		return protocol.SessionResult{}, err
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
func (s *vmSession) collectOptions(ctx context.Context, hello, stacks chan struct{}) protocol.CollectOptions {
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
	if s.o.OutputsDir != "" || s.o.CoverageDir != "" {
		opts.Files = fileRouter{outputs: s.o.OutputsDir, coverage: s.o.CoverageDir}
	}
	return opts
}

// GuestCoverageDir is the guest directory whose files land in
// Options.CoverageDir (protocol.GuestConfig.CoverageDir).
const GuestCoverageDir = "/invm/coverage"

// fileRouter is the session's protocol.FileSink: coverage files (below
// protocol.CoverageOutputDir) go to the coverage directory, the others to
// the outputs directory; a file whose directory is "" is checked and
// dropped.
type fileRouter struct{ outputs, coverage string }

func (r fileRouter) Create(name string) (io.WriteCloser, error) {
	dir := r.outputs
	if rest, ok := protocol.CoveragePath(name); ok {
		dir, name = r.coverage, rest
	}
	if dir == "" {
		return discard{}, nil
	}
	return protocol.DirSink{Dir: dir}.Create(name)
}

// discard is an io.WriteCloser that drops what it is given.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// boot waits for the guest init's first Hello; the error says why it never
// came (QEMU exited, the daemon died, ChannelTimeout, ctx). A collector
// that ends first (a guest that spoke, but not a valid Hello) ends the
// boot too: its result is returned for the session's error.
func (s *vmSession) boot(ctx context.Context, hello <-chan struct{}, done <-chan collected) (*collected, error) {
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
func (s *vmSession) collect(ctx context.Context, done <-chan collected, stop func() collected, stacks chan struct{}, cancel func()) (collected, bool) {
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
func (s *vmSession) sessionError(ctx context.Context, c collected, daemonDied bool) error {
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
func (s *vmSession) powerOff(ctx context.Context, res protocol.SessionResult) error {
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
