// Package lifecycle gives a process one shutdown path: a Shutdown holds a
// root context and one Subsystem per long-lived component, and shuts them
// down in a fixed order, each within its own deadline, under a watchdog
// that bounds the whole shutdown.
//
//	sd, err := lifecycle.New(ctx, lifecycle.Options{
//		Stages:  []lifecycle.Stage{{Name: "vm", Deadline: vmStop, Stop: stopVM}, {Name: "state", ...}},
//		Signals: sigs, // from NotifySignals; nil: none
//	})
//	sd.Subsystem("vm").GoFatalOnExit("monitor", watch)
//	<-sd.Done()          // a signal, a fatal report, or sd.Cancel(nil)
//	rep := sd.Drain()    // the stages in order; never blocks past the watchdog
//	os.Exit(sd.ExitCode())
//
// The root context (Shutdown.Context) ends when the shutdown begins: a
// signal from Options.Signals (SIGINT, SIGTERM), a fatal report from any
// subsystem or task, Shutdown.Cancel, Drain, or the parent context ending.
// Its cause says which (ErrSignal, a *FatalError, ErrStopped, ...).
//
// Each Subsystem has its own context, a tracker of the tasks started with
// Subsystem.Go and Subsystem.GoFatalOnExit, and shares the Shutdown's fatal
// flag. A subsystem's context is not a child of the root: it ends only when
// Drain reaches its stage, so a later stage keeps working (a stream still
// carries the verdict) while an earlier one stops. Draining a stage cancels
// its context, runs its Stage.Stop and waits for its tasks, at most
// Stage.Deadline; a stage that overruns is abandoned (its goroutines are
// left behind), reported with ErrAbandoned, and the next stage starts.
//
// The watchdog is armed when the root context ends and fires at most once,
// Options.Watchdog later, unless Drain finished before: it calls
// Options.OnWatchdog from its own goroutine, and a Drain in progress
// returns at once with the current stage abandoned and the rest skipped.
//
// A panic in a tracked task (or in a Stop) does not crash the process: it
// becomes a fatal report (*FatalError wrapping a *PanicError, with the
// goroutine's stack). A task started with GoFatalOnExit must run until its
// subsystem drains: returning earlier, with or without an error, is a fatal
// report (ErrUnexpectedExit). Any fatal report cancels the root, and
// ExitCode is ExitFatal from then on.
//
// Timing is taken from Options.Clock, so tests drive deadlines and the
// watchdog with a fake clock.
package lifecycle
