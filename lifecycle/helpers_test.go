package lifecycle

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when Advance is called.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Unix(1_000_000, 0), timers: map[*fakeTimer]bool{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers[t] = true
	c.cond.Broadcast()
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		pending := c.timers[t]
		delete(c.timers, t)
		c.cond.Broadcast()
		return pending
	}
}

// Advance moves the clock by d and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			delete(c.timers, t)
		}
	}
	c.cond.Broadcast()
}

// waitTimers blocks until n timers are pending (bounded by the test's
// own timeout).
func (c *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) < n {
		c.cond.Wait()
	}
}

// leakGrace bounds the wait for the package's goroutines to end.
const leakGrace = 5 * time.Second

// checkNoLeaks fails t (at its end) if a goroutine of this package is
// still running then, other than the test's own.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(leakGrace)
		for {
			leaked := ourGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutine(s) leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// ourGoroutines returns the stacks of the other goroutines running code of
// this package (not its tests).
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // this goroutine
		}
		for _, line := range strings.Split(g, "\n") {
			if strings.Contains(line, "rules_go_vm/lifecycle.") && !strings.Contains(line, "_test.go") &&
				!strings.Contains(line, "lifecycle.Test") && !strings.Contains(line, "lifecycle.(*fakeClock)") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
