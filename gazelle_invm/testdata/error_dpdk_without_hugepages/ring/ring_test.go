package ring

import "testing"

func TestSizeOnHost(t *testing.T) {
	if Size != 8 {
		t.Fatal(Size)
	}
}
