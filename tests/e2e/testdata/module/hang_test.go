package e2e

import (
	"testing"
	"time"
)

// TestHangs never ends by itself: Bazel's timeout ends it.
func TestHangs(t *testing.T) {
	t.Log("E2E-HANG: waiting for Bazel's timeout")
	time.Sleep(24 * time.Hour)
}
