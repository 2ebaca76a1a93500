// Package lookup is the read-only key → action vocabulary that every
// classifier in acl/ implements, plus projections from a parsed packet (or
// packet metadata) to a key and map-backed implementations.
//
// A [Lookup] answers "which action does this key select?". [Classify] runs a
// [Projection] and the lookup in one call, so call sites read
// Classify(table, fiveTupleOf, pkt) without building the key themselves;
// [ClassifyOpt] does the same for projections that may fail (metadata that
// is absent), turning a failed projection into a miss with no branch in user
// code. Go interface methods cannot take type parameters, so these are
// functions over a Lookup rather than methods.
package lookup

// Lookup maps keys to actions.
type Lookup[K, A any] interface {
	// Lookup returns the action selected by k and whether any rule matched.
	Lookup(k K) (A, bool)
}

// BatchLookup is a Lookup that classifies many keys per call. Backends that
// cross an expensive boundary (cgo) implement it to amortise the crossing.
type BatchLookup[K, A any] interface {
	Lookup[K, A]
	// LookupBatch classifies keys[i] into acts[i] and hits[i]; acts and hits
	// must be at least len(keys) long. It returns the number of hits.
	LookupBatch(keys []K, acts []A, hits []bool) int
}

// Projection extracts a key of type K from a source S.
type Projection[S, K any] func(S) K

// OptProjection extracts a key of type K from S when S has one.
type OptProjection[S, K any] func(S) (K, bool)

// Classify projects src to a key and looks it up.
func Classify[S, K, A any](l Lookup[K, A], p Projection[S, K], src S) (A, bool) {
	return l.Lookup(p(src))
}

// ClassifyOpt projects src to a key and looks it up; a failed projection is
// a miss.
func ClassifyOpt[S, K, A any](l Lookup[K, A], p OptProjection[S, K], src S) (A, bool) {
	k, ok := p(src)
	if !ok {
		var zero A
		return zero, false
	}
	return l.Lookup(k)
}

// ClassifyBatch projects each source to a key and classifies them all with
// one LookupBatch call per len(keys) sources. keys is scratch space of any
// non-zero length; acts and hits must be at least len(srcs) long.
func ClassifyBatch[S, K, A any](l BatchLookup[K, A], p Projection[S, K], srcs []S, keys []K, acts []A, hits []bool) int {
	n := 0
	for start := 0; start < len(srcs); start += len(keys) {
		end := min(start+len(keys), len(srcs))
		ks := keys[:end-start]
		for i := range ks {
			ks[i] = p(srcs[start+i])
		}
		n += l.LookupBatch(ks, acts[start:end], hits[start:end])
	}
	return n
}

// Map is a Lookup backed by a Go map: exact-match on the whole key.
type Map[K comparable, A any] map[K]A

// Lookup implements [Lookup].
func (m Map[K, A]) Lookup(k K) (A, bool) {
	a, ok := m[k]
	return a, ok
}

// LookupBatch implements [BatchLookup].
func (m Map[K, A]) LookupBatch(keys []K, acts []A, hits []bool) int {
	n := 0
	for i, k := range keys {
		acts[i], hits[i] = m[k]
		if hits[i] {
			n++
		}
	}
	return n
}

// Func adapts a function to [Lookup].
type Func[K, A any] func(K) (A, bool)

// Lookup implements [Lookup].
func (f Func[K, A]) Lookup(k K) (A, bool) { return f(k) }
