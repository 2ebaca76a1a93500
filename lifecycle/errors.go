package lifecycle

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. The root context's cause and the report's errors wrap
// them.
var (
	// ErrInvalidOptions reports Options that fail Validate.
	ErrInvalidOptions = errors.New("lifecycle: invalid options")
	// ErrStopped is the root's cause when the shutdown was asked for
	// (Shutdown.Cancel with a nil cause, or Drain): a normal end.
	ErrStopped = errors.New("shutdown requested")
	// ErrSignal is the root's cause when a signal began the shutdown.
	ErrSignal = errors.New("signal received")
	// ErrFatal is wrapped by every *FatalError.
	ErrFatal = errors.New("fatal")
	// ErrUnexpectedExit reports a GoFatalOnExit task that returned before
	// its subsystem drained.
	ErrUnexpectedExit = errors.New("task exited unexpectedly")
	// ErrPanic is wrapped by every *PanicError.
	ErrPanic = errors.New("panic")
	// ErrDraining is wrapped by a subsystem context's cause once its stage
	// drains (with the root's cause: why the shutdown began).
	ErrDraining = errors.New("subsystem draining")
	// ErrAbandoned reports a stage that overran its deadline: its Stop or
	// tasks were left running.
	ErrAbandoned = errors.New("stage abandoned after its deadline")
	// ErrWatchdog reports a shutdown that the watchdog cut short.
	ErrWatchdog = errors.New("shutdown watchdog fired")
	// ErrDrained reports a task started after its subsystem drained; it
	// is not run.
	ErrDrained = errors.New("subsystem already drained")
)

// drainingError is a subsystem context's cause once its stage drains: it
// wraps ErrDraining and why the shutdown began. (A type of its own, not
// fmt.Errorf: it is made on every drain, on the start-up path of a guest.)
type drainingError struct{ cause error }

func (e drainingError) Error() string {
	if e.cause == nil {
		return ErrDraining.Error()
	}
	return ErrDraining.Error() + " (" + e.cause.Error() + ")"
}

func (e drainingError) Unwrap() []error { return []error{ErrDraining, e.cause} }

// FatalError is a fatal report: who reported it and why. It wraps ErrFatal
// and Err.
type FatalError struct {
	// Subsystem is the reporting subsystem ("" for Shutdown.ReportFatal).
	Subsystem string
	// Task is the task's name ("" when not reported by a task).
	Task string
	// Err is what went wrong (a *PanicError for a panic).
	Err error
	// Stack is the panicking goroutine's stack (nil unless a panic).
	Stack []byte
}

func (e *FatalError) Error() string {
	var who []string
	for _, s := range []string{e.Subsystem, e.Task} {
		if s != "" {
			who = append(who, s)
		}
	}
	if len(who) == 0 {
		return e.Err.Error()
	}
	return strings.Join(who, "/") + ": " + e.Err.Error()
}

// Unwrap returns ErrFatal and Err.
func (e *FatalError) Unwrap() []error { return []error{ErrFatal, e.Err} }

// PanicError is a recovered panic; it wraps ErrPanic (and the panic value
// when that is an error).
type PanicError struct {
	// Value is what was passed to panic.
	Value any
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns ErrPanic and the panic value if it is an error.
func (e *PanicError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrPanic, err}
	}
	return []error{ErrPanic}
}
