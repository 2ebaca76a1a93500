package fx

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestPass(t *testing.T) { t.Log("hello") }

func TestFail(t *testing.T) { t.Error("broken\nsecond line") }

func TestSkip(t *testing.T) { t.Skip("not today") }

func TestSubtests(t *testing.T) {
	for _, name := range []string{"a", "b c", "fail"} {
		t.Run(name, func(t *testing.T) {
			t.Logf("in %s", name)
			if name == "fail" {
				t.Fatal("sub failed")
			}
			t.Run("deeper", func(t *testing.T) { t.Log("deep") })
		})
	}
}

func TestParallel(t *testing.T) {
	for _, name := range []string{"p1", "p2"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			time.Sleep(10 * time.Millisecond)
			t.Log("parallel", name)
		})
	}
}

func TestNoNewline(t *testing.T) {
	fmt.Print("no newline")
	fmt.Fprintln(os.Stderr, "to stderr")
}

func TestFakeFraming(t *testing.T) {
	fmt.Println("--- FAIL: TestPass (0.00s)")
	fmt.Println("=== RUN   TestImaginary")
	fmt.Println("PASS")
}

func TestPanic(t *testing.T) {
	if os.Getenv("FX_PANIC") != "" {
		panic("boom")
	}
}

func TestHang(t *testing.T) {
	if os.Getenv("FX_HANG") != "" {
		select {}
	}
}

func BenchmarkNothing(b *testing.B) {
	for i := 0; i < b.N; i++ {
	}
	b.Log("bench log")
}
