// Package guest holds the guest tests of //tests/contract: each go_vm_test
// target here takes one file and has one expected outcome, asserted from
// outside by contract_test.go.
package guest

import (
	"fmt"
	"os"
	"path/filepath"
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

// TestCoverageEnv stands in for rules_go's coverage writer under `bazel
// coverage` (this target is not instrumented under `bazel test`): it writes
// the coverage variables it got into its COVERAGE_DIR, which the launcher
// must bring to the host's. Skipped without COVERAGE_DIR.
func TestCoverageEnv(t *testing.T) {
	dir := os.Getenv("COVERAGE_DIR")
	if dir == "" {
		t.Skip("not a coverage run: COVERAGE_DIR is not set")
	}
	got := fmt.Sprintf("COVERAGE=%s COVERAGE_DIR=%s COVERAGE_OUTPUT_FILE=%s\n", os.Getenv("COVERAGE"), dir, os.Getenv("COVERAGE_OUTPUT_FILE"))
	if err := os.WriteFile(filepath.Join(dir, "guest.dat"), []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
}
