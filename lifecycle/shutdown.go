package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Stage is one subsystem of a Shutdown: its name, how long draining it may
// take, and what stopping it does.
type Stage struct {
	// Name names the subsystem (Shutdown.Subsystem) in reports; unique.
	Name string
	// Deadline bounds the stage's drain: its Stop and its tasks. Past it
	// the stage is abandoned and the next one starts. Must be > 0.
	Deadline time.Duration
	// Stop, if not nil, runs when the stage drains, after the subsystem's
	// context was cancelled, while its tasks wind down; ctx ends at the
	// deadline (cause ErrAbandoned) or when the watchdog fires.
	Stop func(ctx context.Context) error
}

// Options configure a Shutdown.
type Options struct {
	// Stages are the subsystems, in the order they drain.
	Stages []Stage
	// Watchdog bounds the whole shutdown, from the root context's end to
	// Drain's return; 0 means the sum of the stage deadlines plus
	// WatchdogSlack.
	Watchdog time.Duration
	// OnWatchdog, if not nil, is called once, from the watchdog's own
	// goroutine, when it fires, with the root context's cause.
	OnWatchdog func(cause error)
	// Signals, if not nil, begins the shutdown on any value received
	// (NotifySignals gives the process's SIGINT and SIGTERM).
	Signals <-chan os.Signal
	// Clock is the time source; nil means RealClock.
	Clock Clock
	// Logf, if not nil, receives one line per event: a signal, a fatal
	// report (with a panic's stack), an abandoned stage, the watchdog.
	Logf func(format string, a ...any)
}

// WatchdogSlack is added to the sum of the stage deadlines for the default
// Options.Watchdog.
const WatchdogSlack = time.Second

// Validate checks the options: at least one stage, stage names non-empty
// and unique, deadlines and the watchdog not negative (deadlines > 0).
func (o Options) Validate() error {
	if len(o.Stages) == 0 {
		return fmt.Errorf("%w: no stages", ErrInvalidOptions)
	}
	seen := map[string]bool{}
	for i, st := range o.Stages {
		switch {
		case st.Name == "":
			return fmt.Errorf("%w: stage %d has no name", ErrInvalidOptions, i)
		case seen[st.Name]:
			return fmt.Errorf("%w: stage %q twice", ErrInvalidOptions, st.Name)
		case st.Deadline <= 0:
			return fmt.Errorf("%w: stage %q: deadline %v, want > 0", ErrInvalidOptions, st.Name, st.Deadline)
		}
		seen[st.Name] = true
	}
	if o.Watchdog < 0 {
		return fmt.Errorf("%w: watchdog %v, want >= 0", ErrInvalidOptions, o.Watchdog)
	}
	return nil
}

// watchdog is o.Watchdog, or its default.
func (o Options) watchdog() time.Duration {
	if o.Watchdog > 0 {
		return o.Watchdog
	}
	d := WatchdogSlack
	for _, st := range o.Stages {
		d += st.Deadline
	}
	return d
}

// ExitFatal is ExitCode after a fatal report.
const ExitFatal = 1

// Shutdown is a root context, the subsystems in drain order and the shared
// fatal flag. Every Shutdown must be drained (Drain) once it is no longer
// needed: that ends the goroutines it started.
type Shutdown struct {
	o      Options
	clock  Clock
	root   context.Context
	cancel context.CancelCauseFunc
	subs   []*Subsystem
	byName map[string]*Subsystem

	mu     sync.Mutex
	fatals []error

	drainOnce sync.Once
	drained   chan struct{} // closed when the drain is over
	report    Report

	fireOnce sync.Once
	fired    chan struct{} // closed when the watchdog fired
	stopArm  func() bool   // stops arming the watchdog
}

// New returns a Shutdown whose root context is a child of parent, with one
// Subsystem per stage. It starts relaying Options.Signals.
func New(parent context.Context, o Options) (*Shutdown, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	sd := &Shutdown{o: o, clock: o.Clock, byName: map[string]*Subsystem{}, drained: make(chan struct{}), fired: make(chan struct{})}
	if sd.clock == nil {
		sd.clock = RealClock{}
	}
	sd.root, sd.cancel = context.WithCancelCause(parent)
	base := context.WithoutCancel(parent)
	for _, st := range o.Stages {
		s := newSubsystem(sd, base, st)
		sd.subs = append(sd.subs, s)
		sd.byName[st.Name] = s
	}
	sd.stopArm = context.AfterFunc(sd.root, sd.arm)
	if o.Signals != nil {
		go sd.relaySignals()
	}
	return sd, nil
}

func (sd *Shutdown) logf(format string, a ...any) {
	if sd.o.Logf != nil {
		sd.o.Logf(format, a...)
	}
}

// relaySignals begins the shutdown on the first signal; it ends with the
// root context.
func (sd *Shutdown) relaySignals() {
	select {
	case sig := <-sd.o.Signals:
		sd.logf("lifecycle: %v: shutting down", sig)
		sd.cancel(fmt.Errorf("%w: %v", ErrSignal, sig))
	case <-sd.root.Done():
	}
}

// arm starts the watchdog once the root context ended.
func (sd *Shutdown) arm() {
	d := sd.o.watchdog()
	timer, stop := sd.clock.NewTimer(d)
	go func() {
		select {
		case <-timer:
			sd.fire(d)
		case <-sd.drained:
			stop()
		}
	}()
}

// fire runs the watchdog's action, once.
func (sd *Shutdown) fire(d time.Duration) {
	sd.fireOnce.Do(func() {
		select {
		case <-sd.drained:
			return // the drain won the race
		default:
		}
		sd.logf("lifecycle: watchdog: the shutdown did not end within %v", d)
		close(sd.fired)
		if sd.o.OnWatchdog != nil {
			sd.o.OnWatchdog(context.Cause(sd.root))
		}
	})
}

// Context is the root context: it ends when the shutdown begins.
func (sd *Shutdown) Context() context.Context { return sd.root }

// Done is closed when the shutdown begins (Context().Done()).
func (sd *Shutdown) Done() <-chan struct{} { return sd.root.Done() }

// Cause is why the shutdown began (nil while it has not).
func (sd *Shutdown) Cause() error { return context.Cause(sd.root) }

// Cancel begins the shutdown with cause (nil: ErrStopped). It does not
// drain; a later cause does not replace the first.
func (sd *Shutdown) Cancel(cause error) {
	if cause == nil {
		cause = ErrStopped
	}
	sd.cancel(cause)
}

// Subsystem returns the subsystem of the named stage; it panics for a
// name that is not a stage (a programming error).
func (sd *Shutdown) Subsystem(name string) *Subsystem {
	s, ok := sd.byName[name]
	if !ok {
		panic(fmt.Sprintf("lifecycle: no stage %q", name))
	}
	return s
}

// ReportFatal records err as fatal and begins the shutdown with it as the
// cause (unless it already began). err that is not a *FatalError is
// wrapped in one without a subsystem.
func (sd *Shutdown) ReportFatal(err error) {
	var fe *FatalError
	if !errors.As(err, &fe) {
		fe = &FatalError{Err: err}
	}
	sd.mu.Lock()
	sd.fatals = append(sd.fatals, fe)
	sd.mu.Unlock()
	if fe.Stack != nil {
		sd.logf("lifecycle: fatal: %v\n%s", fe, fe.Stack)
	} else {
		sd.logf("lifecycle: fatal: %v", fe)
	}
	sd.cancel(fe)
}

// Fatal returns the fatal reports so far, joined (nil: none).
func (sd *Shutdown) Fatal() error {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	return errors.Join(sd.fatals...)
}

// ExitCode is the process exit code the fatal flag gives: ExitFatal after
// a fatal report, else 0.
func (sd *Shutdown) ExitCode() int {
	if sd.Fatal() != nil {
		return ExitFatal
	}
	return 0
}

// Drain shuts down: it begins the shutdown (ErrStopped, unless it began),
// then drains the stages in order, each within its deadline, and returns
// what happened. It returns early when the watchdog fires. Calls after the
// first wait for it and return the same report.
func (sd *Shutdown) Drain() Report {
	sd.Cancel(nil)
	sd.drainOnce.Do(func() { go sd.drain() })
	<-sd.drained
	return sd.report
}

// drain is the drainer: it runs no user code itself (each stage's work
// runs in its own goroutines), so it always notices the watchdog.
func (sd *Shutdown) drain() {
	start := sd.clock.Now()
	rep := Report{Cause: context.Cause(sd.root)}
	for _, s := range sd.subs {
		select {
		case <-sd.fired:
			rep.Stages = append(rep.Stages, StageReport{Name: s.st.Name, Skipped: true, Err: ErrWatchdog})
			continue
		default:
		}
		rep.Stages = append(rep.Stages, s.drain())
	}
	select {
	case <-sd.fired:
		rep.Watchdog = true
	default:
	}
	rep.Took = sd.clock.Now().Sub(start)
	rep.Fatal = sd.Fatal()
	for _, st := range rep.Stages {
		if st.Abandoned && !st.Skipped {
			sd.logf("lifecycle: %s", st)
		}
	}
	sd.report = rep
	sd.stopArm() // a root that never ended (impossible after Cancel) arms nothing
	close(sd.drained)
}

// Report is what Drain did.
type Report struct {
	// Cause is why the shutdown began.
	Cause error
	// Stages are the stages in drain order.
	Stages []StageReport
	// Watchdog says the watchdog cut the drain short.
	Watchdog bool
	// Fatal is the fatal reports, joined (nil: none).
	Fatal error
	// Took is the drain's duration.
	Took time.Duration
}

// Err returns nil for a clean drain, else the problems joined: each
// abandoned stage (ErrAbandoned), each stage's Stop or task error, the
// watchdog (ErrWatchdog). Fatal reports are in Fatal, not here.
func (r Report) Err() error {
	var errs []error
	for _, st := range r.Stages {
		if st.Skipped {
			continue
		}
		if st.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.Name, st.Err))
		}
		for _, e := range st.TaskErrs {
			errs = append(errs, fmt.Errorf("%s: %w", st.Name, e))
		}
	}
	if r.Watchdog {
		errs = append(errs, ErrWatchdog)
	}
	return errors.Join(errs...)
}

// String describes the drain in one line.
func (r Report) String() string {
	parts := make([]string, len(r.Stages))
	for i, st := range r.Stages {
		parts[i] = st.String()
	}
	s := fmt.Sprintf("shutdown (%v) in %v: %s", r.Cause, r.Took, strings.Join(parts, ", "))
	if r.Watchdog {
		s += "; watchdog fired"
	}
	return s
}

// StageReport is what draining one stage did.
type StageReport struct {
	// Name is the stage's name.
	Name string
	// Took is how long the stage drained (until abandoned, if it was).
	Took time.Duration
	// Err is Stop's error; ErrAbandoned (wrapped) when the stage overran,
	// ErrWatchdog when the watchdog cut or skipped it.
	Err error
	// TaskErrs are the errors the stage's tasks returned (not fatal ones).
	TaskErrs []error
	// Abandoned says the stage overran its deadline (or the watchdog
	// fired during it); Pending names the tasks still running then, and
	// StopPending says Stop had not returned.
	Abandoned   bool
	Pending     []string
	StopPending bool
	// Skipped says the watchdog fired before the stage started.
	Skipped bool
}

func (st StageReport) String() string {
	switch {
	case st.Skipped:
		return st.Name + " skipped"
	case st.Abandoned:
		s := fmt.Sprintf("%s abandoned after %v (%v)", st.Name, st.Took, st.Err)
		if st.StopPending {
			s += ", stop still running"
		}
		if len(st.Pending) > 0 {
			s += ", tasks still running: " + strings.Join(st.Pending, " ")
		}
		return s
	case st.Err != nil:
		return fmt.Sprintf("%s in %v: %v", st.Name, st.Took, st.Err)
	}
	return fmt.Sprintf("%s in %v", st.Name, st.Took)
}
