package ring_test

import (
	"testing"

	"example.com/m/ring"
)

func TestSizeOnHost(t *testing.T) {
	if ring.Size != 8 {
		t.Fatal(ring.Size)
	}
}
