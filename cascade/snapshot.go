package cascade

import (
	"fmt"
	"iter"
)

// Snapshot is an immutable view of a Cascade's sealed layers at one
// generation. Taking one costs a single atomic load; it pins the layers it
// sees (they are reclaimed by the garbage collector once no snapshot needs
// them). The zero Snapshot is not usable; get one from Cascade.Snapshot.
type Snapshot[K comparable, V any] struct {
	c      *Cascade[K, V]
	frozen []*layer[K, V]
	tail   *tail[K, V]
	gen    Generation
}

// Generation returns the newest generation the snapshot includes, or 0 if
// it was taken before the first Rotate.
func (s Snapshot[K, V]) Generation() Generation { return s.gen }

// TailGeneration returns the generation up to which history has been
// compacted into the tail (0 if never). AsOf cannot go below it.
func (s Snapshot[K, V]) TailGeneration() Generation { return s.tail.gen }

// FrozenGenerations returns the generations of the snapshot's non-empty
// frozen layers, newest first.
func (s Snapshot[K, V]) FrozenGenerations() []Generation {
	gens := make([]Generation, len(s.frozen))
	for i, l := range s.frozen {
		gens[i] = l.gen
	}
	return gens
}

// Get returns the value of k in the snapshot. A hit does not allocate.
func (s Snapshot[K, V]) Get(k K) (V, bool) {
	return s.c.lower(s.frozen, s.tail, s.c.hash(k), k, Entry[V]{}, false)
}

// AsOf returns the view of the cascade as it was sealed at generation g:
// only layers with generation <= g. It fails with ErrCompacted if g is older
// than the tail or inside a fused layer, ErrFutureGeneration if g is newer than s, and
// ErrZeroGeneration for 0.
func (s Snapshot[K, V]) AsOf(g Generation) (Snapshot[K, V], error) {
	switch {
	case g == 0:
		return Snapshot[K, V]{}, fmt.Errorf("%w: as of 0", ErrZeroGeneration)
	case g > s.gen:
		return Snapshot[K, V]{}, fmt.Errorf("%w: as of %d, snapshot is at %d", ErrFutureGeneration, g, s.gen)
	case g < s.tail.gen:
		return Snapshot[K, V]{}, fmt.Errorf("%w: as of %d, tail is at %d", ErrCompacted, g, s.tail.gen)
	}
	i := 0
	for i < len(s.frozen) && s.frozen[i].gen > g {
		if s.frozen[i].from <= g {
			return Snapshot[K, V]{}, fmt.Errorf("%w: as of %d, fused into a layer covering %d..%d", ErrCompacted, g, s.frozen[i].from, s.frozen[i].gen)
		}
		i++
	}
	return Snapshot[K, V]{c: s.c, frozen: s.frozen[i:], tail: s.tail, gen: g}, nil
}

// All yields every live key and its value in the snapshot, each key once, in
// no particular order. It is the entry point for lookups by predicate rather
// than by key (see the ACL example in the tests).
func (s Snapshot[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		seen := make(map[K]struct{})
		for _, l := range s.frozen {
			for i := range l.shards {
				for k := range l.shards[i].m {
					if _, dup := seen[k]; dup {
						continue
					}
					seen[k] = struct{}{}
					if v, ok := s.Get(k); ok && !yield(k, v) {
						return
					}
				}
			}
		}
		for k, v := range s.tail.m {
			if _, dup := seen[k]; dup {
				continue
			}
			if !yield(k, v) {
				return
			}
		}
	}
}
