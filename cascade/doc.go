// Package cascade is an in-memory LSM for match-action state: a small
// concurrent mutable head in front of immutable frozen layers in front of an
// immutable compacted tail.
//
// Readers walk head → frozen layers (newest first) → tail and stop at the
// first definitive answer; a tombstone is definitive, so a Delete in the head
// hides an older value in the tail. One Upsert policy (LastWriteWins unless
// Options.Upsert says otherwise) decides what happens whenever two entries for
// a key meet: a Merge onto an existing head entry, a lookup folding deltas,
// FuseThrough merging frozen layers, and Compact folding frozen layers into
// the tail.
//
// The read path takes no locks except a shard read lock on a probable head
// hit: the layer set is an immutable value published through an atomic
// pointer (the Go analogue of Rust's arc-swap), and a per-shard filter lets a
// miss skip the head entirely. A hit does not allocate.
//
// # Walkthrough
//
// Write: Put, Delete and Merge land in the head and return the Generation
// they were acknowledged at.
//
//	c, _ := cascade.New[string, int](cascade.Options[int]{})
//	c.Put("a", 1)
//	c.Get("a") // 1, true: the head is read live
//
// Rotate: freeze the head into an immutable layer and install a fresh head at
// a newer generation. A Snapshot sees everything sealed so far and stays
// valid while writers continue.
//
//	c.Rotate(c.Generation() + 1)
//	snap := c.Snapshot() // contains "a"
//
// Compact: fold frozen layers into the tail (all of them, or those up to a
// watermark with CompactThrough). Readers holding older snapshots keep their
// view.
//
//	c.Compact()
//
// FuseThrough is the cheaper middle step: it merges frozen layers into one
// (bounding how many layers a lookup walks) without copying the tail.
//
// Subscribe: receive every frozen layer (for hardware offload or
// replication) on a bounded channel. A slow subscriber loses events, which
// Subscription.Lag counts; it never blocks writers, readers or Rotate.
//
//	sub, _ := c.Subscribe(cascade.SubscribeOptions{Buffer: 8})
//	for ev := range sub.Events() { ... }
//
// Misuse is reported with wrapped sentinel errors, never by corrupting
// state: rotating to a generation that is not newer (ErrStaleGeneration),
// compacting beyond the newest frozen layer (ErrBeyondFrozen), looking up as
// of compacted history (ErrCompacted).
//
// Package cascadetest checks that a custom Upsert obeys the laws the cascade
// relies on.
//
// # Benchmarks
//
// Run all benchmarks, side by side with sync.Map and a mutex-guarded map,
// with:
//
//	go test -run '^$' -bench . -benchmem ./cascade/...
//
// See README.md in this directory for measured figures.
package cascade
