//go:build !linux

package lifecycle

import "os"

// TermSignals are the signals that begin a shutdown: os.Interrupt.
var TermSignals = []os.Signal{os.Interrupt}
