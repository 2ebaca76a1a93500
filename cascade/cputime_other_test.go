//go:build !unix

package cascade_test

import "time"

// processCPU is unavailable here; cpu-ns/op then reads 0.
func processCPU() time.Duration { return 0 }
