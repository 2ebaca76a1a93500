package cascade_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/cascade"
)

// Benchmarks: run everything, side by side, with
//
//	go test -run '^$' -bench . -benchmem ./cascade/...
//
// Goroutine counts are explicit sub-benchmarks (g=1, g=2), so no -cpu flag is
// needed.

const benchKeys = 1 << 16

// store is the surface the workloads exercise.
type store interface {
	get(k uint64) (int, bool)
	put(k uint64, v int)
}

type syncMapStore struct{ m sync.Map }

func (s *syncMapStore) get(k uint64) (int, bool) {
	v, ok := s.m.Load(k)
	if !ok {
		return 0, false
	}
	return v.(int), true
}
func (s *syncMapStore) put(k uint64, v int) { s.m.Store(k, v) }

type rwMutexStore struct {
	mu sync.RWMutex
	m  map[uint64]int
}

func (s *rwMutexStore) get(k uint64) (int, bool) {
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}
func (s *rwMutexStore) put(k uint64, v int) {
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

// cascadeStore is a cascade under maintenance: the preload is compacted into
// the tail, the head is rotated every rotateEvery writes and frozen layers are
// compacted once there are maxFrozen of them, inline, by whichever writer
// crosses the threshold. With rotateEvery = 0 there is no maintenance and
// everything stays in the head.
type cascadeStore struct {
	c           *cascade.Cascade[uint64, int]
	writes      atomic.Uint64
	rotateEvery uint64
	maxFrozen   int
}

func (s *cascadeStore) get(k uint64) (int, bool) { return s.c.Get(k) }
func (s *cascadeStore) put(k uint64, v int) {
	s.c.Put(k, v)
	if s.rotateEvery == 0 || s.writes.Add(1)%s.rotateEvery != 0 {
		return
	}
	// Two writers may cross thresholds together; the loser's rotation is
	// stale, which is the API working as intended.
	if err := s.c.Rotate(s.c.Generation() + 1); err != nil && !errors.Is(err, cascade.ErrStaleGeneration) {
		panic(err)
	}
	if len(s.c.Snapshot().FrozenGenerations()) >= s.maxFrozen {
		if err := s.c.Compact(); err != nil {
			panic(err)
		}
	}
}

type impl struct {
	name string
	make func() store
}

var impls = []impl{
	{"cascade", func() store {
		c, _ := cascade.New[uint64, int](cascade.Options[int]{})
		s := &cascadeStore{c: c, rotateEvery: 4096, maxFrozen: 4}
		for k := range uint64(benchKeys) {
			c.Put(k, int(k))
		}
		_ = c.Rotate(c.Generation() + 1)
		_ = c.Compact()
		return s
	}},
	{"cascade-head-only", func() store {
		c, _ := cascade.New[uint64, int](cascade.Options[int]{})
		for k := range uint64(benchKeys) {
			c.Put(k, int(k))
		}
		return &cascadeStore{c: c}
	}},
	{"sync.Map", func() store {
		s := &syncMapStore{}
		for k := range uint64(benchKeys) {
			s.put(k, int(k))
		}
		return s
	}},
	{"rwmutex-map", func() store {
		s := &rwMutexStore{m: make(map[uint64]int, benchKeys)}
		for k := range uint64(benchKeys) {
			s.put(k, int(k))
		}
		return s
	}},
}

// runWorkload splits b.N operations over g goroutines; each operation is a
// read with probability readPct/100, else a write, on a uniformly random key.
// Besides wall time it reports process CPU time per operation (cpu-ns/op),
// which includes any GC and maintenance work the operations caused.
func runWorkload(b *testing.B, s store, g, readPct int) {
	var wg sync.WaitGroup
	per := b.N / g
	cpu0 := processCPU()
	b.ResetTimer()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(w)*0x9e3779b97f4a7c15 + 1
			sink := 0
			for i := range per {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				k := x % benchKeys
				if int(x>>32%100) < readPct {
					v, _ := s.get(k)
					sink += v
				} else {
					s.put(k, i)
				}
			}
			_ = sink
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkWorkload compares the cascade with sync.Map and an RWMutex map at
// 99%, 90% and 50% reads, with 1 and 2 goroutines.
func BenchmarkWorkload(b *testing.B) {
	for _, readPct := range []int{99, 90, 50} {
		for _, g := range []int{1, 2} {
			for _, im := range impls {
				b.Run(fmt.Sprintf("reads=%d/g=%d/%s", readPct, g, im.name), func(b *testing.B) {
					s := im.make()
					b.ReportAllocs()
					runWorkload(b, s, g, readPct)
				})
			}
		}
	}
}

// BenchmarkRotate measures Rotate latency against the number of entries in
// the head being frozen. Each iteration also refills the head, so ns/op is
// dominated by the refill; the rotate-ns/op metric is the Rotate call alone.
func BenchmarkRotate(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 14, 1 << 17} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c, _ := cascade.New[uint64, int](cascade.Options[int]{})
			var spent time.Duration
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for k := range uint64(n) {
					c.Put(k, i)
				}
				start := time.Now()
				if err := c.Rotate(c.Generation() + 1); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
				if err := c.Compact(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "rotate-ns/op")
		})
	}
}

// BenchmarkCompact measures Compact latency against the size of the frozen
// layer being folded and the size of the tail it is folded into (the tail is
// copied: it is immutable). ns/op includes rebuilding the starting state; the
// compact-ns/op metric is the Compact call alone.
func BenchmarkCompact(b *testing.B) {
	for _, tailN := range []int{0, 1 << 16} {
		for _, n := range []int{1 << 10, 1 << 14, 1 << 17} {
			b.Run(fmt.Sprintf("tail=%d/layer=%d", tailN, n), func(b *testing.B) {
				var spent time.Duration
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					c, _ := cascade.New[uint64, int](cascade.Options[int]{})
					for k := range uint64(tailN) {
						c.Put(k<<32, int(k))
					}
					_ = c.Rotate(c.Generation() + 1)
					_ = c.Compact()
					for k := range uint64(n) {
						c.Put(k, i)
					}
					_ = c.Rotate(c.Generation() + 1)
					start := time.Now()
					if err := c.Compact(); err != nil {
						b.Fatal(err)
					}
					spent += time.Since(start)
				}
				b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "compact-ns/op")
			})
		}
	}
}

// BenchmarkSnapshotGet measures lookups through a snapshot with several
// frozen layers above the tail.
func BenchmarkSnapshotGet(b *testing.B) {
	c, _ := cascade.New[uint64, int](cascade.Options[int]{})
	for k := range uint64(benchKeys) {
		c.Put(k, int(k))
	}
	_ = c.Rotate(c.Generation() + 1)
	_ = c.Compact()
	for l := range 4 {
		for k := range uint64(1024) {
			c.Put(k*uint64(l+3), 0)
		}
		_ = c.Rotate(c.Generation() + 1)
	}
	s := c.Snapshot()
	b.ReportAllocs()
	x := uint64(1)
	sink := 0
	for b.Loop() {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v, _ := s.Get(x % benchKeys)
		sink += v
	}
	_ = sink
}

// processCPU returns the user+system CPU time consumed by this process so
// far. Workload benchmarks report it per operation (cpu-ns/op) next to wall
// time: on a shared, oversubscribed machine wall time mostly measures how
// long the process waited for a CPU, CPU time measures the work done.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
