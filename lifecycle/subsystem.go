package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"time"
)

// Subsystem is one long-lived component of a Shutdown: its own context
// (ended when its stage drains), the tasks it tracks, and the Shutdown's
// shared fatal flag.
type Subsystem struct {
	sd     *Shutdown
	st     Stage
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	tasks   map[int]string // running tasks by id
	next    int
	idle    chan struct{} // closed when tasks is empty and the stage drains
	closed  bool          // draining: idle closes at zero
	drained bool          // the stage's drain is over: no new tasks
	errs    []error
}

func newSubsystem(sd *Shutdown, base context.Context, st Stage) *Subsystem {
	s := &Subsystem{sd: sd, st: st, tasks: map[int]string{}, idle: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancelCause(base)
	return s
}

// Name is the stage's name.
func (s *Subsystem) Name() string { return s.st.Name }

// Context ends when the subsystem's stage drains (its cause wraps
// ErrDraining and the root's cause). It is not a child of the root
// context: see Root.
func (s *Subsystem) Context() context.Context { return s.ctx }

// Root is the Shutdown's root context: it ends when the shutdown begins.
func (s *Subsystem) Root() context.Context { return s.sd.root }

// ReportFatal records err as fatal for this subsystem and begins the
// shutdown.
func (s *Subsystem) ReportFatal(err error) {
	s.sd.ReportFatal(&FatalError{Subsystem: s.st.Name, Err: err})
}

// Go runs f in a new goroutine tracked by the subsystem: its drain waits
// for f (up to the stage's deadline). f gets the subsystem's context. An
// error f returns is reported in the stage's report (not fatal; a
// context.Canceled after the drain began is not reported); a panic is a
// fatal report with the stack. Once the stage's drain is over, Go runs
// nothing and reports ErrDrained.
func (s *Subsystem) Go(name string, f func(ctx context.Context) error) {
	s.spawn(name, f, false)
}

// GoFatalOnExit is Go for a task that must run until its subsystem drains:
// returning before that (nil or not) is a fatal report wrapping
// ErrUnexpectedExit.
func (s *Subsystem) GoFatalOnExit(name string, f func(ctx context.Context) error) {
	s.spawn(name, f, true)
}

func (s *Subsystem) spawn(name string, f func(context.Context) error, fatalOnExit bool) {
	id, ok := s.add(name)
	if !ok {
		s.addErr(fmt.Errorf("task %s: %w", name, ErrDrained))
		return
	}
	go func() {
		defer s.done(id)
		defer func() {
			if r := recover(); r != nil {
				s.sd.ReportFatal(&FatalError{Subsystem: s.st.Name, Task: name, Err: &PanicError{Value: r}, Stack: debug.Stack()})
			}
		}()
		err := f(s.ctx)
		early := s.ctx.Err() == nil
		switch {
		case fatalOnExit && early && err == nil:
			s.sd.ReportFatal(&FatalError{Subsystem: s.st.Name, Task: name, Err: ErrUnexpectedExit})
		case fatalOnExit && early:
			s.sd.ReportFatal(&FatalError{Subsystem: s.st.Name, Task: name, Err: fmt.Errorf("%w: %w", ErrUnexpectedExit, err)})
		case err != nil && !(errors.Is(err, context.Canceled) && !early):
			s.addErr(fmt.Errorf("task %s: %w", name, err))
		}
	}()
}

func (s *Subsystem) add(name string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drained {
		return 0, false
	}
	s.next++
	s.tasks[s.next] = name
	return s.next, true
}

func (s *Subsystem) done(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tasks, id)
	if s.closed && len(s.tasks) == 0 {
		closeOnce(s.idle)
	}
}

func (s *Subsystem) addErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// closeOnce closes c unless it is closed (callers hold the lock).
func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// isIdle reports whether the stage's tasks are all done.
func (s *Subsystem) isIdle() bool {
	select {
	case <-s.idle:
		return true
	default:
		return false
	}
}

// pending names the tasks still running, sorted.
func (s *Subsystem) pending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, n := range s.tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// drain drains the stage: cancel the context, run Stop while the tasks
// wind down, wait for both until the deadline or the watchdog.
func (s *Subsystem) drain() StageReport {
	sd := s.sd
	start := sd.clock.Now()
	rep := StageReport{Name: s.st.Name}
	s.cancel(drainingError{cause: context.Cause(sd.root)})
	s.mu.Lock()
	s.closed = true
	if len(s.tasks) == 0 {
		closeOnce(s.idle)
	}
	s.mu.Unlock()

	timer, stopTimer := sd.clock.NewTimer(s.st.Deadline)
	defer stopTimer()
	// Stop's context keeps the subsystem's values but not its (already
	// cancelled) end: it ends at the deadline or the watchdog.
	stopCtx, cancelStop := context.WithCancelCause(context.WithoutCancel(s.ctx))
	defer cancelStop(nil)

	stopped := make(chan error, 1)
	if s.st.Stop == nil {
		stopped <- nil
	} else {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					fe := &FatalError{Subsystem: s.st.Name, Task: "stop", Err: &PanicError{Value: r}, Stack: debug.Stack()}
					sd.ReportFatal(fe)
					stopped <- fe
				}
			}()
			stopped <- s.st.Stop(stopCtx)
		}()
	}
	stopDone, idle := false, s.idle
	for !stopDone || idle != nil {
		select {
		case err := <-stopped:
			stopDone, rep.Err = true, err
		case <-idle:
			idle = nil
		case <-timer:
			// What ended together with the deadline counts as in time.
			select {
			case err := <-stopped:
				stopDone, rep.Err = true, err
			default:
			}
			if idle != nil && s.isIdle() {
				idle = nil
			}
			if stopDone && idle == nil {
				continue
			}
			rep.Err = fmt.Errorf("%w (%v)", ErrAbandoned, s.st.Deadline)
			cancelStop(rep.Err)
			return s.abandon(rep, start, !stopDone)
		case <-sd.fired:
			rep.Err = ErrWatchdog
			cancelStop(rep.Err)
			return s.abandon(rep, start, !stopDone)
		}
	}
	rep.Took = sd.clock.Now().Sub(start)
	s.finish(&rep)
	return rep
}

// abandon reports the stage as abandoned, naming what still runs.
func (s *Subsystem) abandon(rep StageReport, start time.Time, stopPending bool) StageReport {
	rep.Abandoned, rep.StopPending = true, stopPending
	rep.Pending = s.pending()
	rep.Took = s.sd.clock.Now().Sub(start)
	s.finish(&rep)
	return rep
}

// finish closes the subsystem to new tasks and collects the task errors.
func (s *Subsystem) finish(rep *StageReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drained = true
	rep.TaskErrs = append(rep.TaskErrs, s.errs...)
}
