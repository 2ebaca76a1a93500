package guest

import "testing"

func TestOK(t *testing.T) {}

func TestFails(t *testing.T) {
	t.Run("fine", func(t *testing.T) {})
	t.Run("broken", func(t *testing.T) { t.Error("contract: expected failure") })
}
