package cascade

import (
	"sync"
	"sync/atomic"
)

// bloomBit picks the bit of a shard's 64-bit filter that hash sets. The shard
// index uses the low bits of the hash, the filter the top six.
func bloomBit(hash uint64) uint64 { return 1 << (hash >> 58) }

// shard is one lock-protected slice of the mutable head. Writers set the
// filter bit before inserting, so a reader that finds the bit clear can skip
// the lock: the write it might have missed was not yet acknowledged.
type shard[K comparable, V any] struct {
	mu    sync.RWMutex
	bloom atomic.Uint64
	m     map[K]Entry[V]
	_     [24]byte // keep shards on separate cache lines
}

// head is the concurrent, mutable top layer. It is sealed exactly once, by
// Rotate, after which it never changes again.
type head[K comparable, V any] struct {
	gen    Generation
	mask   uint64
	sealed atomic.Bool
	shards []shard[K, V]
}

func newHead[K comparable, V any](gen Generation, shards int) *head[K, V] {
	return &head[K, V]{gen: gen, mask: uint64(shards - 1), shards: make([]shard[K, V], shards)}
}

// get returns the head's entry for k without allocating.
func (h *head[K, V]) get(hash uint64, k K) (Entry[V], bool) {
	sh := &h.shards[hash&h.mask]
	if sh.bloom.Load()&bloomBit(hash) == 0 {
		return Entry[V]{}, false
	}
	sh.mu.RLock()
	e, ok := sh.m[k]
	sh.mu.RUnlock()
	return e, ok
}

// put stores e for k, folding a delta onto an existing entry with up. It
// reports false, storing nothing, if the head has been sealed; the caller
// then retries on the new head.
func (h *head[K, V]) put(hash uint64, k K, e Entry[V], up Upsert[V]) bool {
	sh := &h.shards[hash&h.mask]
	sh.mu.Lock()
	if h.sealed.Load() {
		sh.mu.Unlock()
		return false
	}
	if sh.m == nil {
		sh.m = make(map[K]Entry[V])
	}
	if e.Kind == KindDelta {
		if old, ok := sh.m[k]; ok {
			e = up.Upsert(old, e)
		}
	}
	sh.bloom.Or(bloomBit(hash))
	sh.m[k] = e
	sh.mu.Unlock()
	return true
}

// seal stops all writes to the head and waits for in-flight ones. A writer
// holding a shard lock either checked the flag before it was set (and the
// sweep waits for it) or will see it set and retry elsewhere.
func (h *head[K, V]) seal() {
	h.sealed.Store(true)
	for i := range h.shards {
		h.shards[i].mu.Lock()
		h.shards[i].mu.Unlock() //nolint:staticcheck // empty critical section is the barrier
	}
}

// freeze turns a sealed head into an immutable layer, sharing its maps. It
// returns nil for an empty head.
func (h *head[K, V]) freeze() *layer[K, V] {
	l := &layer[K, V]{gen: h.gen, mask: h.mask, shards: make([]frozenShard[K, V], len(h.shards))}
	for i := range h.shards {
		sh := &h.shards[i]
		l.shards[i] = frozenShard[K, V]{bloom: sh.bloom.Load(), m: sh.m}
		l.n += len(sh.m)
	}
	if l.n == 0 {
		return nil
	}
	return l
}

type frozenShard[K comparable, V any] struct {
	bloom uint64
	m     map[K]Entry[V]
}

// layer is an immutable frozen head. It keeps the head's sharding and
// filters so lookups reuse the hash computed once per read.
type layer[K comparable, V any] struct {
	gen    Generation
	mask   uint64
	n      int
	shards []frozenShard[K, V]
}

func (l *layer[K, V]) get(hash uint64, k K) (Entry[V], bool) {
	sh := &l.shards[hash&l.mask]
	if sh.bloom&bloomBit(hash) == 0 {
		return Entry[V]{}, false
	}
	e, ok := sh.m[k]
	return e, ok
}

// each calls fn for every entry of the layer, in no particular order.
func (l *layer[K, V]) each(fn func(K, Entry[V])) {
	for i := range l.shards {
		for k, e := range l.shards[i].m {
			fn(k, e)
		}
	}
}

// tail is the immutable bottom layer. Being the bottom, it needs no
// tombstones or deltas: compaction resolves everything to plain values.
type tail[K comparable, V any] struct {
	gen Generation
	m   map[K]V
}
