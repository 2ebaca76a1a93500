package cascade

import "fmt"

// Kind says what an Entry records about its key.
type Kind uint8

const (
	// KindValue is a definitive full value: it shadows everything older.
	KindValue Kind = iota + 1
	// KindTombstone is a definitive absence: it shadows everything older
	// and makes lookups report "not found".
	KindTombstone
	// KindDelta is a partial update: it is not definitive and must be folded
	// onto the next older entry with the cascade's Upsert policy.
	KindDelta
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindValue:
		return "value"
	case KindTombstone:
		return "tombstone"
	case KindDelta:
		return "delta"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Entry is what one layer of a Cascade holds for one key.
type Entry[V any] struct {
	// Kind says how to read Value.
	Kind Kind
	// Value is the full value (KindValue) or the delta (KindDelta). It is
	// the zero value for tombstones.
	Value V
}

// Definitive reports whether e ends a lookup: values and tombstones are
// definitive, deltas are not.
func (e Entry[V]) Definitive() bool { return e.Kind != KindDelta }

// String formats the entry for diagnostics.
func (e Entry[V]) String() string {
	if e.Kind == KindTombstone {
		return "tombstone"
	}
	return fmt.Sprintf("%v(%v)", e.Kind, e.Value)
}

// ValueEntry returns a definitive entry holding v.
func ValueEntry[V any](v V) Entry[V] { return Entry[V]{Kind: KindValue, Value: v} }

// TombstoneEntry returns a definitive deletion.
func TombstoneEntry[V any]() Entry[V] { return Entry[V]{Kind: KindTombstone} }

// DeltaEntry returns a partial update carrying d.
func DeltaEntry[V any](d V) Entry[V] { return Entry[V]{Kind: KindDelta, Value: d} }
