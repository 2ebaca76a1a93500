package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Test bounds: generous, only to turn a hang into a failure.
const (
	// testDeadline is a stage deadline no healthy stage comes near.
	testDeadline = time.Minute
	// testWait bounds a wait for something that happens at once.
	testWait = 10 * time.Second
)

// recorder collects events from several goroutines.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, a...))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func mustNew(t *testing.T, parent context.Context, o Options) *Shutdown {
	t.Helper()
	sd, err := New(parent, o)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func waitDone(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(testWait):
		t.Fatalf("%s: not within %v", what, testWait)
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Stage{Name: "a", Deadline: time.Second}
	for _, tc := range []struct {
		name string
		o    Options
		want string // "" = valid
	}{
		{"valid", Options{Stages: []Stage{ok, {Name: "b", Deadline: 1}}}, ""},
		{"no stages", Options{}, "no stages"},
		{"no name", Options{Stages: []Stage{{Deadline: time.Second}}}, "stage 0 has no name"},
		{"duplicate", Options{Stages: []Stage{ok, ok}}, `stage "a" twice`},
		{"zero deadline", Options{Stages: []Stage{{Name: "a"}}}, "deadline 0s, want > 0"},
		{"negative watchdog", Options{Stages: []Stage{ok}, Watchdog: -1}, "watchdog -1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidOptions with %q", err, tc.want)
			}
			if _, err := New(context.Background(), tc.o); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("New = %v", err)
			}
		})
	}
}

// TestDrainOrder: stages drain in order; a subsystem's context ends only
// when its own stage drains (a later stage's task still runs while an
// earlier one stops); each stage's tasks are waited for before the next.
func TestDrainOrder(t *testing.T) {
	checkNoLeaks(t)
	var rec recorder
	names := []string{"workers", "router", "metrics", "mgmt"}
	var stages []Stage
	for _, n := range names {
		stages = append(stages, Stage{Name: n, Deadline: testDeadline, Stop: func(context.Context) error {
			rec.add("stop %s", n)
			return nil
		}})
	}
	sd := mustNew(t, context.Background(), Options{Stages: stages})
	for _, n := range names {
		s := sd.Subsystem(n)
		s.Go("loop", func(ctx context.Context) error {
			<-ctx.Done()
			// Every later subsystem is still live.
			for _, later := range names[slices.Index(names, n)+1:] {
				if err := sd.Subsystem(later).Context().Err(); err != nil {
					rec.add("%s saw %s ended", n, later)
				}
			}
			if !errors.Is(context.Cause(ctx), ErrDraining) {
				rec.add("%s: cause %v", n, context.Cause(ctx))
			}
			time.Sleep(time.Millisecond) // the stage waits for it
			rec.add("end %s", n)
			return ctx.Err()
		})
	}
	rep := sd.Drain()
	var want []string
	for _, n := range names {
		want = append(want, "stop "+n, "end "+n)
	}
	got := rec.get()
	// Within a stage, Stop and the task's end may come in either order.
	for i := 0; i+1 < len(got); i += 2 {
		slices.Sort(got[i : i+2])
		slices.Sort(want[i : i+2])
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if err := rep.Err(); err != nil || rep.Watchdog || rep.Fatal != nil || !errors.Is(rep.Cause, ErrStopped) {
		t.Errorf("report %v: err %v", rep, err)
	}
	if sd.ExitCode() != 0 {
		t.Errorf("exit code %d", sd.ExitCode())
	}
	if again := sd.Drain(); again.String() != rep.String() {
		t.Errorf("second Drain %v, want %v", again, rep)
	}
}

// TestStageAbandoned: a stage whose Stop or task overruns its deadline is
// abandoned and reported (naming what still runs), and the next stage
// still drains.
func TestStageAbandoned(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stopBlocks  bool
		taskBlocks  bool
		stopPending bool
		pending     []string
	}{
		{"stop overruns", true, false, true, nil},
		{"task overruns", false, true, false, []string{"stuck"}},
		{"both", true, true, true, []string{"stuck"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			clock := newFakeClock()
			release := make(chan struct{})
			defer close(release)
			var rec recorder
			stopSaw := make(chan error, 1)
			slowStage := Stage{Name: "slow", Deadline: time.Second}
			if tc.stopBlocks {
				slowStage.Stop = func(ctx context.Context) error {
					<-ctx.Done() // ends at the deadline...
					stopSaw <- context.Cause(ctx)
					<-release // ...but ignores it
					return nil
				}
			}
			sd := mustNew(t, context.Background(), Options{Clock: clock, Watchdog: time.Hour, Stages: []Stage{
				slowStage,
				{Name: "next", Deadline: time.Second, Stop: func(context.Context) error {
					rec.add("next stopped")
					return nil
				}},
			}})
			if tc.taskBlocks {
				sd.Subsystem("slow").Go("stuck", func(context.Context) error { <-release; return nil })
			}
			sd.Subsystem("slow").Go("quick", func(ctx context.Context) error { <-ctx.Done(); return nil })
			done := make(chan Report, 1)
			go func() { done <- sd.Drain() }()
			clock.waitTimers(t, 2) // the watchdog and the stage's deadline
			// Only what blocks is left when the deadline passes.
			for !slices.Equal(sd.Subsystem("slow").pending(), tc.pending) {
				time.Sleep(time.Millisecond)
			}
			clock.Advance(time.Second)
			var rep Report
			select {
			case rep = <-done:
			case <-time.After(testWait):
				t.Fatal("Drain did not return after the deadline")
			}
			slow := rep.Stages[0]
			if !slow.Abandoned || !errors.Is(slow.Err, ErrAbandoned) || slow.StopPending != tc.stopPending || !slices.Equal(slow.Pending, tc.pending) {
				t.Errorf("slow stage %+v", slow)
			}
			if slow.Took != time.Second {
				t.Errorf("slow stage took %v by the fake clock, want 1s", slow.Took)
			}
			if next := rep.Stages[1]; next.Abandoned || next.Skipped || next.Err != nil {
				t.Errorf("next stage %+v", next)
			}
			if !errors.Is(rep.Err(), ErrAbandoned) || rep.Watchdog {
				t.Errorf("report %v", rep)
			}
			if !slices.Contains(rec.get(), "next stopped") {
				t.Errorf("next stage not drained: %q", rec.get())
			}
			if tc.stopBlocks {
				select {
				case cause := <-stopSaw:
					if !errors.Is(cause, ErrAbandoned) {
						t.Errorf("Stop's context ended with %v", cause)
					}
				case <-time.After(testWait):
					t.Errorf("Stop's context did not end with the abandonment")
				}
			}
		})
	}
}

// TestWatchdogFiresOnce: the watchdog is armed when the root ends, fires
// once, cuts the drain short (the running stage abandoned, the rest
// skipped) and never fires after a drain that finished.
func TestWatchdogFiresOnce(t *testing.T) {
	checkNoLeaks(t)
	clock := newFakeClock()
	release := make(chan struct{})
	defer close(release)
	var fired recorder
	sd := mustNew(t, context.Background(), Options{Clock: clock, Watchdog: 5 * time.Second,
		OnWatchdog: func(cause error) { fired.add("%v", cause) },
		Stages: []Stage{
			{Name: "stuck", Deadline: time.Hour, Stop: func(context.Context) error { <-release; return nil }},
			{Name: "later", Deadline: time.Hour},
		}})
	sd.Cancel(errors.New("test over"))
	clock.waitTimers(t, 1) // armed by the root's end, before any Drain
	done := make(chan Report, 1)
	go func() { done <- sd.Drain() }()
	clock.waitTimers(t, 2)
	clock.Advance(5 * time.Second)
	var rep Report
	select {
	case rep = <-done:
	case <-time.After(testWait):
		t.Fatal("Drain did not return when the watchdog fired")
	}
	if !rep.Watchdog || !errors.Is(rep.Err(), ErrWatchdog) {
		t.Errorf("report %v", rep)
	}
	if st := rep.Stages[0]; !st.Abandoned || !st.StopPending || !errors.Is(st.Err, ErrWatchdog) {
		t.Errorf("stuck stage %+v", st)
	}
	if st := rep.Stages[1]; !st.Skipped {
		t.Errorf("later stage %+v", st)
	}
	clock.Advance(time.Hour)
	sd.Drain()
	if got := fired.get(); !slices.Equal(got, []string{"test over"}) {
		t.Errorf("watchdog fired %q, want once with the root's cause", got)
	}
}

// TestWatchdogQuietAfterDrain: a drain that ends in time stops the
// watchdog.
func TestWatchdogQuietAfterDrain(t *testing.T) {
	checkNoLeaks(t)
	clock := newFakeClock()
	var fired recorder
	sd := mustNew(t, context.Background(), Options{Clock: clock, Stages: []Stage{{Name: "a", Deadline: time.Second}},
		OnWatchdog: func(cause error) { fired.add("%v", cause) }})
	rep := sd.Drain()
	clock.Advance(time.Hour)
	if rep.Watchdog || len(fired.get()) != 0 {
		t.Errorf("watchdog fired after a clean drain: %v %q", rep, fired.get())
	}
}

// TestFatalCancelsRoot: a fatal report from anywhere ends the root with
// it as the cause and sets the exit code; a task that ends the wrong way
// is one.
func TestFatalCancelsRoot(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		report func(sd *Shutdown)
		is     []error
		text   string
	}{
		{"subsystem", func(sd *Shutdown) { sd.Subsystem("a").ReportFatal(boom) }, []error{ErrFatal, boom}, "a: boom"},
		{"shutdown", func(sd *Shutdown) { sd.ReportFatal(boom) }, []error{ErrFatal, boom}, "boom"},
		{"fatal-on-exit task returns", func(sd *Shutdown) {
			sd.Subsystem("a").GoFatalOnExit("loop", func(context.Context) error { return nil })
		}, []error{ErrFatal, ErrUnexpectedExit}, "a/loop: task exited unexpectedly"},
		{"fatal-on-exit task fails", func(sd *Shutdown) {
			sd.Subsystem("a").GoFatalOnExit("loop", func(context.Context) error { return boom })
		}, []error{ErrFatal, ErrUnexpectedExit, boom}, "a/loop: task exited unexpectedly: boom"},
		{"task panics", func(sd *Shutdown) {
			sd.Subsystem("a").Go("loop", func(context.Context) error { panic("kaboom") })
		}, []error{ErrFatal, ErrPanic}, "a/loop: panic: kaboom"},
		{"task panics with an error", func(sd *Shutdown) {
			sd.Subsystem("a").Go("loop", func(context.Context) error { panic(boom) })
		}, []error{ErrFatal, ErrPanic, boom}, "a/loop: panic: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			var logs recorder
			sd := mustNew(t, context.Background(), Options{Stages: []Stage{{Name: "a", Deadline: testDeadline}}, Logf: logs.add})
			tc.report(sd)
			waitDone(t, sd.Done(), "root")
			cause := sd.Cause()
			for _, e := range tc.is {
				if !errors.Is(cause, e) {
					t.Errorf("cause %v is not %v", cause, e)
				}
			}
			if cause.Error() != tc.text {
				t.Errorf("cause %q, want %q", cause, tc.text)
			}
			rep := sd.Drain()
			if sd.ExitCode() != ExitFatal || rep.Fatal == nil || !errors.Is(rep.Fatal, ErrFatal) {
				t.Errorf("exit code %d, report %v", sd.ExitCode(), rep)
			}
			if l := logs.get(); len(l) == 0 || !strings.Contains(l[0], "lifecycle: fatal: "+tc.text) {
				t.Errorf("logs %q", l)
			}
		})
	}
}

// panicSite is a named function whose panic must show in the stack.
func panicSite(context.Context) error {
	var m map[string]int
	m["x"]++
	return nil
}

// TestPanicBecomesFatalReport: a panic in a tracked task, or in a Stop, is
// a fatal report carrying the panicking goroutine's stack; the process
// goes on and the drain completes.
func TestPanicBecomesFatalReport(t *testing.T) {
	checkNoLeaks(t)
	sd := mustNew(t, context.Background(), Options{Stages: []Stage{
		{Name: "a", Deadline: testDeadline, Stop: func(context.Context) error { panic("in stop") }},
		{Name: "b", Deadline: testDeadline},
	}})
	sd.Subsystem("b").Go("worker", panicSite)
	waitDone(t, sd.Done(), "root")
	rep := sd.Drain()
	var fe *FatalError
	if !errors.As(sd.Cause(), &fe) {
		t.Fatalf("cause %v is not a *FatalError", sd.Cause())
	}
	var pe *PanicError
	if !errors.As(fe, &pe) || fe.Subsystem != "b" || fe.Task != "worker" {
		t.Errorf("fatal %+v", fe)
	}
	if !strings.Contains(string(fe.Stack), "lifecycle.panicSite") {
		t.Errorf("stack lacks the panic site:\n%s", fe.Stack)
	}
	if st := rep.Stages[0]; !errors.Is(st.Err, ErrPanic) || st.Abandoned {
		t.Errorf("stage a %+v", st)
	}
	if n := len(strings.Split(rep.Fatal.Error(), "\n")); n != 2 {
		t.Errorf("%d fatal reports, want 2 (the task, the Stop): %v", n, rep.Fatal)
	}
}

// TestSignalCancelsRoot: a signal from the injected source begins the
// shutdown; it is not fatal.
func TestSignalCancelsRoot(t *testing.T) {
	checkNoLeaks(t)
	sigs := make(chan os.Signal, 1)
	sd := mustNew(t, context.Background(), Options{Stages: []Stage{{Name: "a", Deadline: testDeadline}}, Signals: sigs})
	sub := sd.Subsystem("a")
	sub.GoFatalOnExit("serve", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	sigs <- syscall.SIGTERM
	waitDone(t, sd.Done(), "root")
	if !errors.Is(sd.Cause(), ErrSignal) || !strings.Contains(sd.Cause().Error(), "terminated") {
		t.Errorf("cause %v", sd.Cause())
	}
	if sub.Context().Err() != nil || sub.Root().Err() == nil {
		t.Errorf("before the drain: subsystem %v, root %v", sub.Context().Err(), sub.Root().Err())
	}
	rep := sd.Drain()
	if rep.Err() != nil || sd.ExitCode() != 0 {
		t.Errorf("report %v, exit %d", rep, sd.ExitCode())
	}
}

// TestParentEndsRoot: the parent context ending begins the shutdown.
func TestParentEndsRoot(t *testing.T) {
	checkNoLeaks(t)
	parent, cancel := context.WithCancelCause(context.Background())
	sd := mustNew(t, parent, Options{Stages: []Stage{{Name: "a", Deadline: testDeadline}}, Signals: make(chan os.Signal)})
	cancel(errors.New("caller gone"))
	waitDone(t, sd.Done(), "root")
	if rep := sd.Drain(); rep.Cause.Error() != "caller gone" {
		t.Errorf("cause %v", rep.Cause)
	}
}

// TestTaskErrors: a plain task's error is reported, not fatal; a
// cancellation after the drain began is no error; a task started after
// the drain runs nothing and says so.
func TestTaskErrors(t *testing.T) {
	checkNoLeaks(t)
	boom := errors.New("boom")
	sd := mustNew(t, context.Background(), Options{Stages: []Stage{{Name: "a", Deadline: testDeadline}}})
	a := sd.Subsystem("a")
	a.Go("fails", func(context.Context) error { return boom })
	a.Go("cancelled", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	rep := sd.Drain()
	ran := false
	a.Go("late", func(context.Context) error { ran = true; return nil })
	if ran {
		t.Errorf("a task ran after the drain")
	}
	if st := rep.Stages[0]; len(st.TaskErrs) != 1 || !errors.Is(st.TaskErrs[0], boom) {
		t.Errorf("task errors %v", st.TaskErrs)
	}
	if sd.ExitCode() != 0 {
		t.Errorf("exit code %d", sd.ExitCode())
	}
	a.mu.Lock()
	late := a.errs[len(a.errs)-1]
	a.mu.Unlock()
	if !errors.Is(late, ErrDrained) {
		t.Errorf("late task: %v", late)
	}
}

// TestRealClock: the same with the real clock, within generous bounds.
func TestRealClock(t *testing.T) {
	checkNoLeaks(t)
	sd := mustNew(t, context.Background(), Options{Stages: []Stage{
		{Name: "slow", Deadline: 20 * time.Millisecond, Stop: func(ctx context.Context) error { <-ctx.Done(); return nil }},
		{Name: "fast", Deadline: testDeadline},
	}})
	start := time.Now()
	rep := sd.Drain()
	if took := time.Since(start); took > testWait {
		t.Errorf("drain took %v", took)
	}
	if !rep.Stages[0].Abandoned || rep.Stages[1].Abandoned {
		t.Errorf("report %v", rep)
	}
}

// TestSubsystemUnknown: asking for a stage that does not exist is a
// programming error.
func TestSubsystemUnknown(t *testing.T) {
	sd := mustNew(t, context.Background(), Options{Stages: []Stage{{Name: "a", Deadline: testDeadline}}})
	defer sd.Drain()
	defer func() {
		if recover() == nil {
			t.Errorf("no panic")
		}
	}()
	sd.Subsystem("b")
}
