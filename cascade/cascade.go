package cascade

import (
	"fmt"
	"hash/maphash"
	"maps"
	"sync"
	"sync/atomic"
)

// DefaultShards is the number of head shards used when Options.Shards is 0.
const DefaultShards = 128

// maxShards bounds Options.Shards.
const maxShards = 1 << 16

// Options configures a Cascade. The zero value is valid: last-write-wins,
// first generation 1, DefaultShards head shards.
type Options[V any] struct {
	// Upsert is the policy applied when entries for one key meet. Nil
	// means LastWriteWins.
	Upsert Upsert[V]
	// Generation is the generation of the first head. Zero means 1.
	Generation Generation
	// Shards is the number of lock shards in each head: a power of two in
	// [1, 65536]. Zero means DefaultShards. More shards mean less writer
	// contention and a cheaper (sharper) head filter, at a fixed cost per
	// Rotate.
	Shards int
}

// Validate reports whether o is usable, wrapping ErrInvalidOptions.
func (o Options[V]) Validate() error {
	if o.Shards < 0 || o.Shards > maxShards || (o.Shards != 0 && o.Shards&(o.Shards-1) != 0) {
		return fmt.Errorf("%w: Shards = %d, want 0 or a power of two <= %d", ErrInvalidOptions, o.Shards, maxShards)
	}
	return nil
}

// state is one published, immutable arrangement of layers. Readers load it
// with a single atomic pointer read and never lock it.
type state[K comparable, V any] struct {
	head    *head[K, V]
	sealing *head[K, V]    // the head being frozen by an in-progress Rotate, or nil
	frozen  []*layer[K, V] // newest first; never mutated after publication
	tail    *tail[K, V]
	sealed  Generation // generation of the newest sealed head, 0 if none
}

// Cascade is an in-memory LSM keyed by K holding values V. It is safe for
// concurrent use by any number of writers, readers, rotators and compactors.
// Construct it with New.
type Cascade[K comparable, V any] struct {
	st     atomic.Pointer[state[K, V]]
	seed   maphash.Seed
	up     Upsert[V]
	shards int

	mu        sync.Mutex // serializes Rotate and every publication
	compactMu sync.Mutex // serializes compactions

	subMu sync.Mutex
	subs  []*Subscription[K, V]
}

// New returns an empty Cascade configured by opts.
func New[K comparable, V any](opts Options[V]) (*Cascade[K, V], error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Upsert == nil {
		opts.Upsert = LastWriteWins[V]{}
	}
	if opts.Generation == 0 {
		opts.Generation = 1
	}
	if opts.Shards == 0 {
		opts.Shards = DefaultShards
	}
	c := &Cascade[K, V]{seed: maphash.MakeSeed(), up: opts.Upsert, shards: opts.Shards}
	c.st.Store(&state[K, V]{head: newHead[K, V](opts.Generation, opts.Shards), tail: &tail[K, V]{}})
	return c, nil
}

func (c *Cascade[K, V]) hash(k K) uint64 { return maphash.Comparable(c.seed, k) }

// Generation returns the generation of the current head: the generation
// that a write made now is acknowledged at.
func (c *Cascade[K, V]) Generation() Generation { return c.st.Load().head.gen }

// Put stores v for k in the head. It returns the generation the write landed
// in: every Snapshot whose Generation is at least that one contains it (or a
// later write of k).
func (c *Cascade[K, V]) Put(k K, v V) Generation { return c.write(k, ValueEntry(v)) }

// Delete writes a tombstone for k. It returns the generation the tombstone
// landed in.
func (c *Cascade[K, V]) Delete(k K) Generation { return c.write(k, TombstoneEntry[V]()) }

// Merge writes a delta for k, to be folded onto the older value with the
// cascade's Upsert policy. It returns the generation the delta landed in.
func (c *Cascade[K, V]) Merge(k K, delta V) Generation { return c.write(k, DeltaEntry(delta)) }

func (c *Cascade[K, V]) write(k K, e Entry[V]) Generation {
	hash := c.hash(k)
	for {
		h := c.st.Load().head
		if h.put(hash, k, e, c.up) {
			return h.gen
		}
		// The head was sealed under us; the new head is already published.
	}
}

// Get returns the live value of k: the head, then any frozen layers newest
// first, then the tail, stopping at the first definitive entry. A hit does
// not allocate or take any lock other than the read lock of one head shard.
func (c *Cascade[K, V]) Get(k K) (V, bool) {
	st := c.st.Load()
	hash := c.hash(k)
	var acc Entry[V]
	have := false
	if e, ok := st.head.get(hash, k); ok {
		if e.Kind != KindDelta {
			return e.Value, e.Kind == KindValue
		}
		acc, have = e, true
	}
	if st.sealing != nil {
		if e, ok := st.sealing.get(hash, k); ok {
			if have {
				acc = c.up.Upsert(e, acc)
			} else {
				acc, have = e, true
			}
			if acc.Kind != KindDelta {
				return acc.Value, acc.Kind == KindValue
			}
		}
	}
	return c.lower(st.frozen, st.tail, hash, k, acc, have)
}

// lower finishes a lookup through the immutable layers. acc, if have, is the
// (delta) result folded so far from newer layers.
func (c *Cascade[K, V]) lower(frozen []*layer[K, V], t *tail[K, V], hash uint64, k K, acc Entry[V], have bool) (V, bool) {
	for _, l := range frozen {
		if e, ok := l.get(hash, k); ok {
			if have {
				acc = c.up.Upsert(e, acc)
			} else {
				acc, have = e, true
			}
			if acc.Kind != KindDelta {
				return acc.Value, acc.Kind == KindValue
			}
		}
	}
	v, ok := t.m[k]
	if !have {
		return v, ok
	}
	base := TombstoneEntry[V]()
	if ok {
		base = ValueEntry(v)
	}
	acc = c.up.Upsert(base, acc)
	// A policy that breaks the resolution law leaves a delta: read it as a value.
	return acc.Value, acc.Kind != KindTombstone
}

// Rotate freezes the current head into an immutable layer stamped with the
// head's generation and installs a fresh head at generation next, which must
// be newer than the current head (else ErrStaleGeneration, and nothing
// changes). Writes acknowledged before Rotate returns are in the frozen
// layer or the new head; none is lost. Subscribers receive the frozen
// entries. Readers are never blocked; writers to the old head wait only for
// the seal sweep.
func (c *Cascade[K, V]) Rotate(next Generation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st.Load()
	if next <= st.head.gen {
		return fmt.Errorf("%w: rotate to %d, head is at %d", ErrStaleGeneration, next, st.head.gen)
	}
	old := st.head
	nh := newHead[K, V](next, c.shards)
	// Publish the new head first, keeping the old one readable, so that
	// writers move on while we seal.
	c.st.Store(&state[K, V]{head: nh, sealing: old, frozen: st.frozen, tail: st.tail, sealed: st.sealed})
	old.seal()
	l := old.freeze()
	frozen := st.frozen
	if l != nil {
		frozen = make([]*layer[K, V], 0, len(st.frozen)+1)
		frozen = append(frozen, l)
		frozen = append(frozen, st.frozen...)
	}
	c.st.Store(&state[K, V]{head: nh, frozen: frozen, tail: st.tail, sealed: old.gen})
	c.drain(old.gen, l)
	return nil
}

// Compact folds every frozen layer into the tail. With nothing frozen since
// the last compaction it does nothing.
func (c *Cascade[K, V]) Compact() error {
	st := c.st.Load()
	if st.sealed == 0 || st.sealed <= st.tail.gen {
		return nil
	}
	return c.CompactThrough(st.sealed)
}

// CompactThrough folds the frozen layers with generation <= watermark into a
// new tail, applying the Upsert policy oldest first. Lookups as of a
// generation older than watermark become ErrCompacted. A watermark newer
// than the newest sealed generation is ErrBeyondFrozen (the head is still
// mutable: Rotate first); a watermark already covered by the tail is a
// no-op. Readers keep using the old layers until the new tail is published.
func (c *Cascade[K, V]) CompactThrough(watermark Generation) error {
	if watermark == 0 {
		return fmt.Errorf("%w: compact through 0", ErrZeroGeneration)
	}
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	st := c.st.Load()
	if watermark > st.sealed {
		return fmt.Errorf("%w: compact through %d, newest frozen generation is %d", ErrBeyondFrozen, watermark, st.sealed)
	}
	if watermark <= st.tail.gen {
		return nil
	}
	fold := st.frozen[oldestThrough(st.frozen, watermark):]
	c.replaceOldest(len(fold), nil, c.fold(st.tail, fold, watermark))
	return nil
}

// oldestThrough returns the index of the first (newest) frozen layer with
// generation <= watermark: the layers from there on are the oldest ones.
func oldestThrough[K comparable, V any](frozen []*layer[K, V], watermark Generation) int {
	i := len(frozen)
	for i > 0 && frozen[i-1].gen <= watermark {
		i--
	}
	return i
}

// replaceOldest publishes a state in which the n oldest frozen layers are
// replaced by l (if non-nil), and the tail by t (if non-nil). The caller
// holds compactMu, so the layers it read are still the current state's
// oldest: only Rotate changes frozen concurrently, and only by prepending.
func (c *Cascade[K, V]) replaceOldest(n int, l *layer[K, V], t *tail[K, V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.st.Load()
	keep := len(cur.frozen) - n
	frozen := make([]*layer[K, V], 0, keep+1)
	frozen = append(frozen, cur.frozen[:keep]...)
	if l != nil {
		frozen = append(frozen, l)
	}
	if len(frozen) == 0 {
		frozen = nil
	}
	if t == nil {
		t = cur.tail
	}
	c.st.Store(&state[K, V]{head: cur.head, sealing: cur.sealing, frozen: frozen, tail: t, sealed: cur.sealed})
}

// FuseThrough merges the frozen layers with generation <= watermark into a
// single frozen layer, applying the Upsert policy, without touching the
// tail. It bounds the number of layers a lookup walks at a cost proportional
// to the fused layers only (Compact also copies the tail). Tombstones and
// unresolved deltas are kept: the fused layer still sits above the tail.
// Lookups as of a generation strictly inside the fused range become
// ErrCompacted. Errors are as for CompactThrough; fusing fewer than two
// layers is a no-op.
func (c *Cascade[K, V]) FuseThrough(watermark Generation) error {
	if watermark == 0 {
		return fmt.Errorf("%w: fuse through 0", ErrZeroGeneration)
	}
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	st := c.st.Load()
	if watermark > st.sealed {
		return fmt.Errorf("%w: fuse through %d, newest frozen generation is %d", ErrBeyondFrozen, watermark, st.sealed)
	}
	fuse := st.frozen[oldestThrough(st.frozen, watermark):]
	if len(fuse) < 2 {
		return nil
	}
	c.replaceOldest(len(fuse), c.fuse(fuse), nil)
	return nil
}

// fuse merges layers (newest first, all with the cascade's shard count)
// shard by shard: a key always lands in the same shard index.
func (c *Cascade[K, V]) fuse(layers []*layer[K, V]) *layer[K, V] {
	newest, oldest := layers[0], layers[len(layers)-1]
	l := &layer[K, V]{from: oldest.from, gen: newest.gen, mask: newest.mask, shards: make([]frozenShard[K, V], len(newest.shards))}
	for i := range l.shards {
		var m map[K]Entry[V]
		var bloom [bloomWords]uint64
		for j := len(layers) - 1; j >= 0; j-- {
			src := &layers[j].shards[i]
			for w := range bloom {
				bloom[w] |= src.bloom[w]
			}
			for k, e := range src.m {
				if m == nil {
					m = make(map[K]Entry[V], len(src.m))
				}
				if old, ok := m[k]; ok && e.Kind == KindDelta {
					e = c.up.Upsert(old, e)
				}
				m[k] = e
			}
		}
		l.shards[i] = frozenShard[K, V]{bloom: bloom, m: m}
		l.n += len(m)
	}
	return l
}

// fold applies layers (newest first) onto a copy of t.
func (c *Cascade[K, V]) fold(t *tail[K, V], layers []*layer[K, V], gen Generation) *tail[K, V] {
	if len(layers) == 0 {
		return &tail[K, V]{gen: gen, m: t.m} // immutable: share it
	}
	m := maps.Clone(t.m)
	if m == nil {
		m = make(map[K]V)
	}
	for j := len(layers) - 1; j >= 0; j-- {
		layers[j].each(func(k K, e Entry[V]) {
			if e.Kind == KindDelta {
				base := TombstoneEntry[V]()
				if v, ok := m[k]; ok {
					base = ValueEntry(v)
				}
				e = c.up.Upsert(base, e)
			}
			if e.Kind == KindTombstone {
				delete(m, k)
			} else {
				m[k] = e.Value
			}
		})
	}
	return &tail[K, V]{gen: gen, m: m}
}

// Snapshot returns a consistent, immutable view of everything sealed so far
// (all frozen layers and the tail). It stays valid, and keeps answering the
// same way, while writers, rotations and compactions continue. Writes still
// in the head are not part of it.
func (c *Cascade[K, V]) Snapshot() Snapshot[K, V] {
	st := c.st.Load()
	return Snapshot[K, V]{c: c, frozen: st.frozen, tail: st.tail, gen: st.sealed}
}
