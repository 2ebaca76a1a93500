package cascade_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/cascade"
)

// stressScale returns the number of writes per writer: small by default so
// `go test -race` stays fast, large with CASCADE_STRESS=1.
func stressScale() int {
	if os.Getenv("CASCADE_STRESS") != "" {
		return 200_000
	}
	return 2_000
}

const (
	rotateStride = 250 // writers wait for a rotation every this many writes
	stressKeys   = 13  // data keys per writer
	progressKey  = 0xFFFFFFFF
)

func dataKey(w, j int) uint64 { return uint64(w)<<32 | uint64(j) }

// expected returns what writer w's data key j must hold once its writes up
// to and including sequence p are visible.
func expected(j, p int) (int, bool) {
	i := p - ((p-j)%stressKeys+stressKeys)%stressKeys
	if i < 1 || i%5 == 0 {
		return 0, false
	}
	return i, true
}

// checkPrefix verifies that view holds exactly a prefix of writer w's
// writes: all data keys agree with the writer's progress key, allowing for
// the one data write that precedes each progress write.
func checkPrefix(view func(uint64) (int, bool), w int) (int, error) {
	p, _ := view(dataKey(w, progressKey))
	for j := range stressKeys {
		got, ok := view(dataKey(w, j))
		want, wantOK := expected(j, p)
		if got == want && ok == wantOK {
			continue
		}
		if next := p + 1; next%stressKeys == j {
			if want, wantOK = expected(j, next); got == want && ok == wantOK {
				continue
			}
		}
		return p, fmt.Errorf("writer %d progress %d: key %d = (%d, %v), want (%d, %v)", w, p, j, got, ok, want, wantOK)
	}
	return p, nil
}

// TestConcurrentConsistency runs writers, snapshot checkers, live readers,
// rotators, a compactor and a subscriber at once. Every snapshot (and every
// as-of view of it) must hold a prefix of each writer's writes, must contain
// every write acknowledged at a generation it covers, live reads must be
// monotonic, and at the end nothing acknowledged is lost.
func TestConcurrentConsistency(t *testing.T) {
	const writers = 3
	n := stressScale()
	c, err := cascade.New[uint64, int](cascade.Options[int]{Shards: 8})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(cascade.SubscribeOptions{Buffer: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	var (
		acked   [writers]atomic.Uint64 // generation<<32 | sequence of the last acknowledged progress write
		done    atomic.Bool
		errs    = make(chan error, 64)
		wg, bg  sync.WaitGroup
		checks  atomic.Int64
		rotates atomic.Int64
	)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= n; i++ {
				if j := i % stressKeys; i%5 == 0 {
					c.Delete(dataKey(w, j))
				} else {
					c.Put(dataKey(w, j), i)
				}
				g := c.Put(dataKey(w, progressKey), i)
				acked[w].Store(uint64(g)<<32 | uint64(i))
				if i%8 == 0 {
					runtime.Gosched() // let rotators and compactors interleave
				}
				if i%rotateStride == 0 {
					// Guarantee interleaving without depending on the
					// scheduler: wait for a rotation after this point.
					for seen := rotates.Load(); rotates.Load() == seen; {
						runtime.Gosched()
					}
				}
			}
		}()
	}
	// Snapshot checkers.
	for r := range 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for !done.Load() {
				var before [writers]uint64
				for w := range writers {
					before[w] = acked[w].Load()
				}
				s := c.Snapshot()
				for w := range writers {
					p, err := checkPrefix(s.Get, w)
					if err != nil {
						report(fmt.Errorf("snapshot at %d: %w", s.Generation(), err))
						return
					}
					if g, seq := cascade.Generation(before[w]>>32), int(uint32(before[w])); g <= s.Generation() && p < seq {
						report(fmt.Errorf("lost write: writer %d acked %d at generation %d, snapshot at %d has progress %d", w, seq, g, s.Generation(), p))
						return
					}
				}
				if s.Generation() > s.TailGeneration() {
					g := s.TailGeneration() + 1 + cascade.Generation(rng.Uint64N(uint64(s.Generation()-s.TailGeneration())))
					v, err := s.AsOf(g)
					if errors.Is(err, cascade.ErrCompacted) {
						continue // g was fused away
					}
					if err != nil {
						report(fmt.Errorf("AsOf(%d) of snapshot %d: %w", g, s.Generation(), err))
						return
					}
					for w := range writers {
						if _, err := checkPrefix(v.Get, w); err != nil {
							report(fmt.Errorf("as of %d: %w", g, err))
							return
						}
					}
				}
				checks.Add(1)
				runtime.Gosched()
			}
		}()
	}
	// Live reader: progress never goes backwards.
	bg.Add(1)
	go func() {
		defer bg.Done()
		var last [writers]int
		for !done.Load() {
			for w := range writers {
				p, _ := c.Get(dataKey(w, progressKey))
				if p < last[w] {
					report(fmt.Errorf("live read went backwards: writer %d progress %d after %d", w, p, last[w]))
					return
				}
				last[w] = p
			}
		}
	}()
	// Two rotators racing each other: at most one wins each generation.
	for range 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for !done.Load() {
				err := c.Rotate(c.Generation() + 1)
				if err != nil && !errors.Is(err, cascade.ErrStaleGeneration) {
					report(err)
					return
				}
				if err == nil {
					rotates.Add(1)
				}
				if err := c.Rotate(c.Generation()); !errors.Is(err, cascade.ErrStaleGeneration) {
					report(fmt.Errorf("stale rotate: %v", err))
					return
				}
				runtime.Gosched()
			}
		}()
	}
	// Compactor: full and partial compactions and fusions.
	bg.Add(1)
	go func() {
		defer bg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for !done.Load() {
			s := c.Snapshot()
			var err error
			switch w := s.TailGeneration() + 1 + cascade.Generation(rng.Uint64N(uint64(s.Generation()-s.TailGeneration())+1)); {
			case w > s.Generation():
				err = c.Compact()
			case rng.IntN(2) == 0:
				err = c.CompactThrough(w)
			default:
				err = c.FuseThrough(w)
			}
			if err != nil {
				report(err)
				return
			}
			runtime.Gosched()
		}
	}()
	// Subscriber: replicate drained layers into a map.
	replica := map[uint64]int{}
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for ev := range sub.Events() {
			for _, fe := range ev.Entries {
				if fe.Entry.Kind == cascade.KindTombstone {
					delete(replica, fe.Key)
				} else {
					replica[fe.Key] = fe.Entry.Value
				}
			}
		}
	}()

	wg.Wait()
	done.Store(true)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Nothing acknowledged is lost, live or after sealing and compacting.
	rotate(t, c)
	compact(t, c)
	final := c.Snapshot()
	for w := range writers {
		for name, view := range map[string]func(uint64) (int, bool){"live": c.Get, "final": final.Get} {
			p, err := checkPrefix(view, w)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if p != n {
				t.Errorf("%s: writer %d progress %d, want %d", name, w, p, n)
			}
		}
	}
	sub.Close()
	<-subDone
	if sub.Lag() == 0 {
		want := map[uint64]int{}
		for k, v := range final.All() {
			want[k] = v
		}
		if len(replica) != len(want) {
			t.Errorf("replica has %d keys, want %d", len(replica), len(want))
		}
		for k, v := range want {
			if replica[k] != v {
				t.Errorf("replica[%x] = %d, want %d", k, replica[k], v)
			}
		}
	}
	if rotates.Load() < int64(n/rotateStride) {
		t.Errorf("only %d rotations interleaved with the writers; the test exercised too little", rotates.Load())
	}
	t.Logf("%d snapshot checks, %d rotations, subscriber lag %d", checks.Load(), rotates.Load(), sub.Lag())
}

// TestConcurrentMerges checks that concurrent deltas under a counter policy
// are neither lost nor double-counted across rotations and compactions, and
// that successive snapshots never go backwards.
func TestConcurrentMerges(t *testing.T) {
	const writers = 2
	n := stressScale()
	c, err := cascade.New[string, int](cascade.Options[int]{Upsert: counter(), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	var wg, bg sync.WaitGroup
	var done atomic.Bool
	var total atomic.Int64
	errs := make(chan error, 8)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				c.Merge("hits", 1)
				total.Add(1)
				if i%8 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	bg.Add(2)
	go func() {
		defer bg.Done()
		for !done.Load() {
			if err := c.Rotate(c.Generation() + 1); err != nil {
				errs <- err
				return
			}
			if err := c.Compact(); err != nil {
				errs <- err
				return
			}
			runtime.Gosched()
		}
	}()
	go func() {
		defer bg.Done()
		last := 0
		for !done.Load() {
			before := int(total.Load())
			v, _ := c.Snapshot().Get("hits")
			live, _ := c.Get("hits")
			after := int(total.Load())
			// A merge is visible as soon as Merge returns, just before its
			// writer counts it: each writer may be one ahead of total.
			if v < last || v > after+writers || live < v || live > after+writers {
				errs <- fmt.Errorf("snapshot %d (last %d) live %d, acknowledged between %d and %d", v, last, live, before, after)
				return
			}
			last = v
		}
	}()
	wg.Wait()
	done.Store(true)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rotate(t, c)
	compact(t, c)
	if v, _ := c.Snapshot().Get("hits"); v != writers*n {
		t.Fatalf("hits = %d, want %d", v, writers*n)
	}
}
