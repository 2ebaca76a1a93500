package cascade

import (
	"sync"
	"sync/atomic"
)

// bloomWords is the size of a shard's filter in 64-bit words (256 bits).
const bloomWords = 4

// bloomSlot picks the word and bit of a shard's filter that hash sets. The
// shard index uses the low bits of the hash, the filter the top eight.
func bloomSlot(hash uint64) (word int, bit uint64) {
	return int(hash >> 62), 1 << ((hash >> 56) & 63)
}

// shard is one lock-protected slice of the mutable head. Writers set the
// filter bit before inserting, so a reader that finds the bit clear can skip
// the lock: the write it might have missed was not yet acknowledged. The
// struct is 64 bytes, one cache line.
type shard[K comparable, V any] struct {
	mu    sync.RWMutex
	bloom [bloomWords]atomic.Uint64
	m     map[K]Entry[V]
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
	if w, bit := bloomSlot(hash); sh.bloom[w].Load()&bit == 0 {
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
	w, bit := bloomSlot(hash)
	sh.bloom[w].Or(bit)
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
	l := &layer[K, V]{from: h.gen, gen: h.gen, mask: h.mask, shards: make([]frozenShard[K, V], len(h.shards))}
	for i := range h.shards {
		sh := &h.shards[i]
		l.shards[i].m = sh.m
		for w := range sh.bloom {
			l.shards[i].bloom[w] = sh.bloom[w].Load()
		}
		l.n += len(sh.m)
	}
	if l.n == 0 {
		return nil
	}
	return l
}

type frozenShard[K comparable, V any] struct {
	bloom [bloomWords]uint64
	m     map[K]Entry[V]
}

// layer is an immutable frozen head, or several fused ones. It keeps the
// head's sharding and filters so lookups reuse the hash computed once per
// read. It covers the generations [from, gen].
type layer[K comparable, V any] struct {
	from   Generation
	gen    Generation
	mask   uint64
	n      int
	shards []frozenShard[K, V]
}

func (l *layer[K, V]) get(hash uint64, k K) (Entry[V], bool) {
	sh := &l.shards[hash&l.mask]
	if w, bit := bloomSlot(hash); sh.bloom[w]&bit == 0 {
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
