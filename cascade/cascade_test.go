package cascade_test

import (
	"errors"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/cascade"
	"github.com/rules-go-vm/rules_go_vm/cascade/cascadetest"
)

func newLWW(t testing.TB) *cascade.Cascade[string, int] {
	t.Helper()
	c, err := cascade.New[string, int](cascade.Options[int]{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rotate[K comparable, V any](t testing.TB, c *cascade.Cascade[K, V]) {
	t.Helper()
	if err := c.Rotate(c.Generation() + 1); err != nil {
		t.Fatal(err)
	}
}

func compact[K comparable, V any](t testing.TB, c *cascade.Cascade[K, V]) {
	t.Helper()
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
}

// TestLayering puts the same key at different depths and checks that the
// newest definitive entry wins, live and through snapshots.
func TestLayering(t *testing.T) {
	type op struct {
		kind string // put, del, rotate, compact
		v    int
	}
	tests := []struct {
		name     string
		ops      []op
		want     int
		wantOK   bool
		snapWant int
		snapOK   bool
	}{
		{"head only", []op{{"put", 1}}, 1, true, 0, false},
		{"frozen only", []op{{"put", 1}, {"rotate", 0}}, 1, true, 1, true},
		{"tail only", []op{{"put", 1}, {"rotate", 0}, {"compact", 0}}, 1, true, 1, true},
		{"head shadows frozen", []op{{"put", 1}, {"rotate", 0}, {"put", 2}}, 2, true, 1, true},
		{"head shadows tail", []op{{"put", 1}, {"rotate", 0}, {"compact", 0}, {"put", 2}}, 2, true, 1, true},
		{"frozen shadows frozen", []op{{"put", 1}, {"rotate", 0}, {"put", 2}, {"rotate", 0}}, 2, true, 2, true},
		{"frozen shadows tail", []op{{"put", 1}, {"rotate", 0}, {"compact", 0}, {"put", 2}, {"rotate", 0}}, 2, true, 2, true},
		{"head tombstone hides tail", []op{{"put", 1}, {"rotate", 0}, {"compact", 0}, {"del", 0}}, 0, false, 1, true},
		{"frozen tombstone hides tail", []op{{"put", 1}, {"rotate", 0}, {"compact", 0}, {"del", 0}, {"rotate", 0}}, 0, false, 0, false},
		{"tombstone compacted away", []op{{"put", 1}, {"rotate", 0}, {"del", 0}, {"rotate", 0}, {"compact", 0}}, 0, false, 0, false},
		{"put after tombstone", []op{{"put", 1}, {"rotate", 0}, {"del", 0}, {"rotate", 0}, {"put", 3}}, 3, true, 0, false},
		{"overwrite in head", []op{{"put", 1}, {"put", 2}, {"rotate", 0}}, 2, true, 2, true},
		{"empty rotations", []op{{"put", 1}, {"rotate", 0}, {"rotate", 0}, {"rotate", 0}, {"compact", 0}}, 1, true, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newLWW(t)
			c.Put("other", -1)
			for _, o := range tt.ops {
				switch o.kind {
				case "put":
					c.Put("k", o.v)
				case "del":
					c.Delete("k")
				case "rotate":
					rotate(t, c)
				case "compact":
					compact(t, c)
				}
			}
			if v, ok := c.Get("k"); v != tt.want || ok != tt.wantOK {
				t.Errorf("Get = (%d, %v), want (%d, %v)", v, ok, tt.want, tt.wantOK)
			}
			if v, ok := c.Snapshot().Get("k"); v != tt.snapWant || ok != tt.snapOK {
				t.Errorf("Snapshot().Get = (%d, %v), want (%d, %v)", v, ok, tt.snapWant, tt.snapOK)
			}
			if _, ok := c.Get("absent"); ok {
				t.Error("Get(absent) found something")
			}
		})
	}
}

func TestSnapshotIsolation(t *testing.T) {
	c := newLWW(t)
	c.Put("a", 1)
	rotate(t, c)
	s1 := c.Snapshot()
	c.Put("a", 2)
	c.Delete("a")
	c.Put("b", 3)
	rotate(t, c)
	compact(t, c)
	c.Put("a", 9)
	if v, ok := s1.Get("a"); v != 1 || !ok {
		t.Fatalf("old snapshot Get(a) = (%d, %v), want (1, true)", v, ok)
	}
	if _, ok := s1.Get("b"); ok {
		t.Fatal("old snapshot sees a later write")
	}
	s2 := c.Snapshot()
	if _, ok := s2.Get("a"); ok {
		t.Fatal("new snapshot should see the tombstone, not the head write")
	}
	if got := maps.Collect(s2.All()); !maps.Equal(got, map[string]int{"b": 3}) {
		t.Fatalf("All = %v", got)
	}
	if got := maps.Collect(s1.All()); !maps.Equal(got, map[string]int{"a": 1}) {
		t.Fatalf("old All = %v", got)
	}
}

func TestAsOf(t *testing.T) {
	c := newLWW(t)
	c.Put("a", 1) // gen 1
	rotate(t, c)
	c.Put("a", 2) // gen 2
	c.Put("b", 2)
	rotate(t, c)
	c.Delete("a") // gen 3
	rotate(t, c)
	s := c.Snapshot()
	if s.Generation() != 3 {
		t.Fatalf("Generation = %d, want 3", s.Generation())
	}
	tests := []struct {
		g       cascade.Generation
		a       int
		aOK     bool
		bOK     bool
		wantErr error
	}{
		{1, 1, true, false, nil},
		{2, 2, true, true, nil},
		{3, 0, false, true, nil},
		{4, 0, false, false, cascade.ErrFutureGeneration},
		{0, 0, false, false, cascade.ErrZeroGeneration},
	}
	for _, tt := range tests {
		v, err := s.AsOf(tt.g)
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("AsOf(%d) err = %v, want %v", tt.g, err, tt.wantErr)
		}
		if err != nil {
			continue
		}
		a, aOK := v.Get("a")
		_, bOK := v.Get("b")
		if a != tt.a || aOK != tt.aOK || bOK != tt.bOK {
			t.Errorf("AsOf(%d): a=(%d,%v) b=%v, want a=(%d,%v) b=%v", tt.g, a, aOK, bOK, tt.a, tt.aOK, tt.bOK)
		}
	}
	if err := c.CompactThrough(2); err != nil {
		t.Fatal(err)
	}
	s = c.Snapshot()
	if _, err := s.AsOf(1); !errors.Is(err, cascade.ErrCompacted) {
		t.Fatalf("AsOf(1) after compacting through 2: err = %v, want ErrCompacted", err)
	}
	if v, err := s.AsOf(2); err != nil {
		t.Fatal(err)
	} else if a, _ := v.Get("a"); a != 2 {
		t.Fatalf("AsOf(2).Get(a) = %d, want 2", a)
	}
	if got := s.FrozenGenerations(); len(got) != 1 || got[0] != 3 || s.TailGeneration() != 2 {
		t.Fatalf("layers = %v tail %d, want [3] tail 2", got, s.TailGeneration())
	}
}

func TestMisuseErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func(c *cascade.Cascade[string, int]) error
		want error
	}{
		{"rotate to same generation", func(c *cascade.Cascade[string, int]) error { return c.Rotate(c.Generation()) }, cascade.ErrStaleGeneration},
		{"rotate backwards", func(c *cascade.Cascade[string, int]) error {
			if err := c.Rotate(5); err != nil {
				return err
			}
			return c.Rotate(3)
		}, cascade.ErrStaleGeneration},
		{"rotate to zero", func(c *cascade.Cascade[string, int]) error { return c.Rotate(0) }, cascade.ErrStaleGeneration},
		{"compact the head", func(c *cascade.Cascade[string, int]) error { return c.CompactThrough(c.Generation()) }, cascade.ErrBeyondFrozen},
		{"compact past newest frozen", func(c *cascade.Cascade[string, int]) error {
			if err := c.Rotate(2); err != nil {
				return err
			}
			return c.CompactThrough(2)
		}, cascade.ErrBeyondFrozen},
		{"compact through zero", func(c *cascade.Cascade[string, int]) error { return c.CompactThrough(0) }, cascade.ErrZeroGeneration},
		{"compact twice is a no-op", func(c *cascade.Cascade[string, int]) error {
			if err := c.Rotate(2); err != nil {
				return err
			}
			if err := c.CompactThrough(1); err != nil {
				return err
			}
			return c.CompactThrough(1)
		}, nil},
		{"compact with nothing frozen is a no-op", func(c *cascade.Cascade[string, int]) error { return c.Compact() }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newLWW(t)
			c.Put("a", 1)
			err := tt.run(c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// Not corrupted: the write is still there and the cascade works.
			if v, ok := c.Get("a"); v != 1 || !ok {
				t.Fatalf("after misuse Get(a) = (%d, %v)", v, ok)
			}
			rotate(t, c)
			compact(t, c)
			if v, ok := c.Snapshot().Get("a"); v != 1 || !ok {
				t.Fatalf("after misuse, rotate and compact: Get(a) = (%d, %v)", v, ok)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		shards int
		ok     bool
	}{{0, true}, {1, true}, {64, true}, {1 << 16, true}, {3, false}, {-1, false}, {1 << 17, false}}
	for _, tt := range tests {
		o := cascade.Options[int]{Shards: tt.shards}
		err := o.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, cascade.ErrInvalidOptions)) {
			t.Errorf("Shards=%d: Validate = %v, want ok %v", tt.shards, err, tt.ok)
		}
		if _, err := cascade.New[int, int](o); (err == nil) != tt.ok {
			t.Errorf("Shards=%d: New err = %v, want ok %v", tt.shards, err, tt.ok)
		}
	}
	if err := (cascade.SubscribeOptions{Buffer: -1}).Validate(); !errors.Is(err, cascade.ErrInvalidOptions) {
		t.Errorf("SubscribeOptions{-1}.Validate = %v", err)
	}
	c, _ := cascade.New[int, int](cascade.Options[int]{Generation: 7})
	if c.Generation() != 7 {
		t.Errorf("Generation = %d, want 7", c.Generation())
	}
	if _, err := c.Subscribe(cascade.SubscribeOptions{Buffer: -1}); err == nil {
		t.Error("Subscribe accepted a negative buffer")
	}
}

func counter() cascade.Upsert[int] {
	return cascade.UpsertFunc[int](func(o, n cascade.Entry[int]) cascade.Entry[int] {
		if n.Kind != cascade.KindDelta {
			return n
		}
		switch o.Kind {
		case cascade.KindTombstone:
			return cascade.ValueEntry(n.Value)
		case cascade.KindValue:
			return cascade.ValueEntry(o.Value + n.Value)
		}
		return cascade.DeltaEntry(o.Value + n.Value)
	})
}

func TestMergeDeltasAcrossLayers(t *testing.T) {
	c, err := cascade.New[string, int](cascade.Options[int]{Upsert: counter(), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	c.Merge("n", 1) // resolves against "absent"
	rotate(t, c)
	c.Merge("n", 10)
	rotate(t, c)
	c.Merge("n", 100)
	c.Merge("n", 1000)
	if v, _ := c.Get("n"); v != 1111 {
		t.Fatalf("live = %d, want 1111", v)
	}
	if v, _ := c.Snapshot().Get("n"); v != 11 {
		t.Fatalf("snapshot = %d, want 11", v)
	}
	compact(t, c)
	c.Delete("n")
	c.Merge("n", 5)
	if v, _ := c.Get("n"); v != 5 {
		t.Fatalf("after delete+merge = %d, want 5", v)
	}
	rotate(t, c)
	compact(t, c)
	if v, _ := c.Snapshot().Get("n"); v != 5 {
		t.Fatalf("compacted = %d, want 5", v)
	}
}

// TestLastWriteWinsLaws runs the law harness on the stock policy and on the
// counter policy used above.
func TestLastWriteWinsLaws(t *testing.T) {
	cfg := cascadetest.Config[int]{
		Gen:   func(r *rand.Rand) int { return r.IntN(1000) },
		Equal: func(a, b int) bool { return a == b },
	}
	if err := cascadetest.CheckUpsert[int](cascade.LastWriteWins[int]{}, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Commutative = true
	if err := cascadetest.CheckUpsert(counter(), cfg); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeLagNeverBlocks(t *testing.T) {
	c := newLWW(t)
	slow, _ := c.Subscribe(cascade.SubscribeOptions{Buffer: 1})
	fast, _ := c.Subscribe(cascade.SubscribeOptions{Buffer: 64})
	for i := range 10 {
		c.Put("k", i)
		rotate(t, c) // must not block on the slow subscriber
	}
	if slow.Lag() != 9 {
		t.Errorf("slow lag = %d, want 9", slow.Lag())
	}
	if fast.Lag() != 0 {
		t.Errorf("fast lag = %d, want 0", fast.Lag())
	}
	ev := <-slow.Events()
	if ev.Generation != 1 || len(ev.Entries) != 1 || ev.Entries[0].Entry != cascade.ValueEntry(0) {
		t.Errorf("slow first event = %+v", ev)
	}
	fast.Close()
	fast.Close() // idempotent
	var gens []cascade.Generation
	for ev := range fast.Events() { // closed: drains the buffer then ends
		gens = append(gens, ev.Generation)
	}
	if len(gens) != 10 || gens[0] != 1 || gens[9] != 10 {
		t.Errorf("fast generations = %v", gens)
	}
	c.Put("k", 99)
	rotate(t, c) // delivering to remaining subscribers still works after a Close
	if slow.Lag() != 9 {
		t.Errorf("slow lag after drain = %d, want 9", slow.Lag())
	}
	slow.Close()
}

func TestKindString(t *testing.T) {
	for k, want := range map[cascade.Kind]string{cascade.KindValue: "value", cascade.KindTombstone: "tombstone", cascade.KindDelta: "delta", 9: "Kind(9)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}

// TestHitPathAllocs asserts that lookups that hit in any layer allocate
// nothing.
func TestHitPathAllocs(t *testing.T) {
	type key struct {
		a uint32
		b uint16
	}
	c, err := cascade.New[key, int](cascade.Options[int]{})
	if err != nil {
		t.Fatal(err)
	}
	c.Put(key{1, 1}, 1)
	rotate(t, c)
	compact(t, c)
	c.Put(key{2, 2}, 2)
	rotate(t, c)
	c.Put(key{3, 3}, 3)
	snap := c.Snapshot()
	tests := []struct {
		name string
		get  func() (int, bool)
	}{
		{"live head hit", func() (int, bool) { return c.Get(key{3, 3}) }},
		{"live frozen hit", func() (int, bool) { return c.Get(key{2, 2}) }},
		{"live tail hit", func() (int, bool) { return c.Get(key{1, 1}) }},
		{"snapshot frozen hit", func() (int, bool) { return snap.Get(key{2, 2}) }},
		{"snapshot tail hit", func() (int, bool) { return snap.Get(key{1, 1}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.get(); !ok {
				t.Fatal("miss")
			}
			if n := testing.AllocsPerRun(200, func() { tt.get() }); n != 0 {
				t.Fatalf("allocs per lookup = %v, want 0", n)
			}
		})
	}
}

func TestFuseThrough(t *testing.T) {
	c, err := cascade.New[string, int](cascade.Options[int]{Upsert: counter(), Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	c.Put("v", 1)
	c.Put("gone", 1)
	rotate(t, c) // 1
	compact(t, c)
	c.Merge("n", 1)
	c.Put("v", 2)
	rotate(t, c) // 2
	c.Merge("n", 10)
	c.Delete("gone")
	rotate(t, c) // 3
	c.Merge("n", 100)
	c.Put("v", 4)
	rotate(t, c) // 4
	c.Put("x", 5)
	rotate(t, c) // 5
	before := c.Snapshot()
	if err := c.FuseThrough(4); err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot()
	if got := s.FrozenGenerations(); len(got) != 2 || got[0] != 5 || got[1] != 4 {
		t.Fatalf("frozen generations after fuse = %v, want [5 4]", got)
	}
	for _, snap := range []cascade.Snapshot[string, int]{before, s} {
		for k, want := range map[string]int{"n": 111, "v": 4, "x": 5} {
			if v, ok := snap.Get(k); !ok || v != want {
				t.Errorf("Get(%s) = (%d, %v), want %d", k, v, ok, want)
			}
		}
		if _, ok := snap.Get("gone"); ok {
			t.Error("fused tombstone lost: gone is visible")
		}
	}
	// History inside the fused range is gone; its edges are not.
	tests := []struct {
		g       cascade.Generation
		wantErr error
	}{{1, nil}, {2, cascade.ErrCompacted}, {3, cascade.ErrCompacted}, {4, nil}, {5, nil}}
	for _, tt := range tests {
		if _, err := s.AsOf(tt.g); !errors.Is(err, tt.wantErr) {
			t.Errorf("AsOf(%d) err = %v, want %v", tt.g, err, tt.wantErr)
		}
		if _, err := before.AsOf(tt.g); err != nil {
			t.Errorf("old snapshot AsOf(%d) = %v, want it unaffected by the fuse", tt.g, err)
		}
	}
	if v, err := before.AsOf(2); err != nil {
		t.Error(err)
	} else if n, _ := v.Get("n"); n != 1 {
		t.Errorf("old snapshot as of 2: n = %d, want 1", n)
	}
	for _, tt := range []struct {
		w    cascade.Generation
		want error
	}{{0, cascade.ErrZeroGeneration}, {6, cascade.ErrBeyondFrozen}, {4, nil}, {5, nil}} {
		if err := c.FuseThrough(tt.w); !errors.Is(err, tt.want) {
			t.Errorf("FuseThrough(%d) = %v, want %v", tt.w, err, tt.want)
		}
	}
	compact(t, c)
	if v, _ := c.Snapshot().Get("n"); v != 111 {
		t.Fatalf("after fuse and compact n = %d, want 111", v)
	}
}
