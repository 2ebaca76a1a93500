package cascade

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// DefaultSubscribeBuffer is the channel capacity used when
// SubscribeOptions.Buffer is 0.
const DefaultSubscribeBuffer = 16

// FrozenEntry is one key's entry in a frozen layer.
type FrozenEntry[K comparable, V any] struct {
	// Key is the entry's key.
	Key K
	// Entry is what the frozen layer holds for Key: a value, a tombstone
	// or (with a merging policy) an unresolved delta.
	Entry Entry[V]
}

// DrainEvent is what subscribers receive for every Rotate: the generation
// that was frozen and the entries frozen with it (possibly none), in no
// particular order. Entries is shared between subscribers: treat it as
// read-only.
type DrainEvent[K comparable, V any] struct {
	// Generation is the generation of the frozen head.
	Generation Generation
	// Entries are the frozen head's entries.
	Entries []FrozenEntry[K, V]
}

// SubscribeOptions configures a Subscription.
type SubscribeOptions struct {
	// Buffer is the capacity of the event channel. Zero means
	// DefaultSubscribeBuffer; it must not be negative.
	Buffer int
}

// Validate reports whether o is usable, wrapping ErrInvalidOptions.
func (o SubscribeOptions) Validate() error {
	if o.Buffer < 0 {
		return fmt.Errorf("%w: Buffer = %d, want >= 0", ErrInvalidOptions, o.Buffer)
	}
	return nil
}

// Subscription receives DrainEvents through a bounded channel. Delivery never
// blocks Rotate, writers or readers: when the channel is full the event is
// dropped and Lag is incremented. A subscriber that sees Lag grow (or a gap
// in generations) should resynchronise from Cascade.Snapshot.
type Subscription[K comparable, V any] struct {
	c      *Cascade[K, V]
	ch     chan DrainEvent[K, V]
	lag    atomic.Uint64
	closed bool // guarded by c.subMu
}

// Subscribe registers a new subscriber for drain events from now on.
func (c *Cascade[K, V]) Subscribe(opts SubscribeOptions) (*Subscription[K, V], error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Buffer == 0 {
		opts.Buffer = DefaultSubscribeBuffer
	}
	s := &Subscription[K, V]{c: c, ch: make(chan DrainEvent[K, V], opts.Buffer)}
	c.subMu.Lock()
	c.subs = append(slices.Clip(c.subs), s)
	c.subMu.Unlock()
	return s, nil
}

// Events returns the channel events arrive on. It is closed by Close.
func (s *Subscription[K, V]) Events() <-chan DrainEvent[K, V] { return s.ch }

// Lag returns how many events were dropped because the channel was full.
func (s *Subscription[K, V]) Lag() uint64 { return s.lag.Load() }

// Close unregisters the subscription and closes its channel. Events already
// buffered can still be received. Close is idempotent.
func (s *Subscription[K, V]) Close() {
	c := s.c
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	c.subs = slices.DeleteFunc(slices.Clone(c.subs), func(x *Subscription[K, V]) bool { return x == s })
	close(s.ch)
}

// drain delivers the freeze of generation gen (layer l, nil if empty) to
// every subscriber without blocking. Called with c.mu held, so events are
// delivered in generation order.
func (c *Cascade[K, V]) drain(gen Generation, l *layer[K, V]) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if len(c.subs) == 0 {
		return
	}
	ev := DrainEvent[K, V]{Generation: gen}
	if l != nil {
		ev.Entries = make([]FrozenEntry[K, V], 0, l.n)
		l.each(func(k K, e Entry[V]) { ev.Entries = append(ev.Entries, FrozenEntry[K, V]{Key: k, Entry: e}) })
	}
	for _, s := range c.subs {
		select {
		case s.ch <- ev:
		default:
			s.lag.Add(1)
		}
	}
}
