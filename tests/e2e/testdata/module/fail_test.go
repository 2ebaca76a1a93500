package e2e

import "testing"

func TestFailsOnPurpose(t *testing.T) {
	t.Fatal("E2E-FAIL: this test fails on purpose")
}
