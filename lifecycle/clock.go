package lifecycle

import "time"

// Clock is the time source of a Shutdown: stage deadlines, the watchdog
// and the durations in the Report.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer (reporting whether it was still
	// pending).
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// RealClock is the Clock of the time package.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer implements Clock with time.NewTimer.
func (RealClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
