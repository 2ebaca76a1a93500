package guest

import "testing"

func TestBeforePanic(t *testing.T) {}

func TestPanics(t *testing.T) {
	panic("contract: expected panic")
}

func TestNeverRuns(t *testing.T) {}
