package lifecycle

import (
	"os"
	"os/signal"
)

// SignalBuffer is the capacity of the channel NotifySignals returns.
const SignalBuffer = 2

// NotifySignals relays the process's termination signals (TermSignals, or
// sigs when given) to the returned channel, for Options.Signals; stop ends
// the relay (the signals get their default action back).
func NotifySignals(sigs ...os.Signal) (c <-chan os.Signal, stop func()) {
	if len(sigs) == 0 {
		sigs = TermSignals
	}
	ch := make(chan os.Signal, SignalBuffer)
	signal.Notify(ch, sigs...)
	return ch, func() { signal.Stop(ch) }
}
