package guest

import (
	"syscall"
	"testing"
	"time"
)

func TestBeforeCrash(t *testing.T) {}

// TestCrashesKernel kills the guest's init (SIGABRT: the Go runtime of PID
// 1 aborts), so the kernel panics ("Attempted to kill init!") while the
// test runs: no verdict ever comes.
func TestCrashesKernel(t *testing.T) {
	t.Log("contract: about to crash the guest kernel")
	if err := syscall.Kill(1, syscall.SIGABRT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute)
	t.Fatal("the guest kernel survived")
}
