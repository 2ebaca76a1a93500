package ring

import "testing"

func TestSizeAgain(t *testing.T) {
	if Size != 8 {
		t.Fatal(Size)
	}
}
