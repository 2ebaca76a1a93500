package lifecycle

import (
	"os"
	"syscall"
)

// TermSignals are the signals that begin a shutdown: SIGINT (Ctrl-C) and
// SIGTERM (Bazel at a test's timeout, a service manager).
var TermSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
