package guest

import "testing"

func TestQuick(t *testing.T) {}

// TestHangs blocks until the test binary's own -test.timeout (derived from
// TEST_TIMEOUT) panics.
func TestHangs(t *testing.T) {
	t.Run("forever", func(t *testing.T) { select {} })
}
