// Package guest holds the guest tests of //tests/contract: each go_vm_test
// target here takes one file and has one expected outcome, asserted from
// outside by contract_test.go.
package guest

import (
	"os"
	"testing"
)

// TestInGuest passes only in a rules_go_vm guest (its init is PID 1).
func TestInGuest(t *testing.T) {
	if os.Getenv("INVM_KERNEL_RELEASE") == "" {
		t.Fatal("not in a rules_go_vm guest")
	}
	t.Log("in the guest")
}

func TestSubtests(t *testing.T) {
	t.Run("one", func(t *testing.T) { t.Log("first subtest") })
	t.Run("two", func(t *testing.T) { t.Skip("skipped on purpose") })
	t.Run("three", func(t *testing.T) {
		t.Run("deeper", func(t *testing.T) {})
	})
}

func TestSlowish(t *testing.T) {
	t.Log("also runs unless filtered out")
}
