package guest

import (
	"testing"
	"time"
)

func TestQuick(t *testing.T) {}

// TestHangs sleeps past any timeout: Bazel's (TEST_TIMEOUT, then SIGTERM)
// or an explicit -test.timeout ends it. (A bare `select {}` would not do:
// with no timer left, the runtime reports a deadlock at once.)
func TestHangs(t *testing.T) {
	t.Run("forever", func(t *testing.T) { time.Sleep(24 * time.Hour) })
}
