package cascade

// Upsert is the single policy a Cascade applies whenever two entries for the
// same key meet: when a Merge lands on an existing head entry, when frozen
// layers are merged by FuseThrough or folded into the tail by Compact, and
// when a lookup folds deltas down to a definitive answer.
//
// Upsert(older, newer) returns the entry equivalent to applying newer on top
// of older. Implementations must obey these laws (the cascadetest package
// checks them):
//
//   - Shadowing: if newer is definitive (a value or a tombstone) the result
//     is newer. The cascade relies on this to stop lookups at the first
//     definitive entry, and never calls Upsert with a definitive newer.
//   - Resolution: if older is definitive, the result is definitive. A delta
//     with nothing below it is resolved against a tombstone.
//   - Associativity: Upsert(Upsert(a, b), c) == Upsert(a, Upsert(b, c)), so
//     that folding layers pairwise, in any grouping, gives the same answer.
//   - Purity: the result depends only on the arguments.
//
// Upsert may be called concurrently and while internal locks are held: it
// must be fast, must not panic and must not call back into the Cascade.
type Upsert[V any] interface {
	Upsert(older, newer Entry[V]) Entry[V]
}

// UpsertFunc adapts a function to the Upsert interface.
type UpsertFunc[V any] func(older, newer Entry[V]) Entry[V]

// Upsert calls f(older, newer).
func (f UpsertFunc[V]) Upsert(older, newer Entry[V]) Entry[V] { return f(older, newer) }

// LastWriteWins is the stock Upsert policy: the newer entry always wins, and
// a delta is treated as a full value. It is what a Cascade uses when
// Options.Upsert is nil.
type LastWriteWins[V any] struct{}

// Upsert returns newer, promoting a delta to a value.
func (LastWriteWins[V]) Upsert(_, newer Entry[V]) Entry[V] {
	if newer.Kind == KindDelta {
		newer.Kind = KindValue
	}
	return newer
}
