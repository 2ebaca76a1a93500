//go:build unix

package cascade_test

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time consumed by this process so
// far. Benchmarks report it per operation (cpu-ns/op) next to wall time: on
// a shared, oversubscribed machine wall time mostly measures how long the
// process waited for a CPU, CPU time measures the work done.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
