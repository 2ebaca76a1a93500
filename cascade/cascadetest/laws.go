// Package cascadetest checks that an Upsert policy obeys the algebraic laws
// a cascade.Cascade relies on. It is meant to be called from the tests of
// packages that supply their own policy:
//
//	err := cascadetest.CheckUpsert(myPolicy, cascadetest.Config[int]{
//		Gen:   func(r *rand.Rand) int { return r.IntN(100) },
//		Equal: func(a, b int) bool { return a == b },
//	})
//	if err != nil {
//		t.Fatal(err)
//	}
//
// Like testing/fstest it returns an error instead of taking a *testing.T, so
// it works under any test framework.
package cascadetest

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/rules-go-vm/rules_go_vm/cascade"
)

// ErrLawViolated is wrapped by every error CheckUpsert reports for a policy
// that breaks a law.
var ErrLawViolated = errors.New("cascadetest: upsert law violated")

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("cascadetest: invalid config")

// Config says how to exercise a policy over values of type V.
type Config[V any] struct {
	// Gen draws a random value (used both for full values and for
	// deltas). Required.
	Gen func(r *rand.Rand) V
	// Equal compares two values. Required.
	Equal func(a, b V) bool
	// Commutative claims that deltas commute: folding d1 then d2 onto a
	// value equals folding d2 then d1. Only checked when set.
	Commutative bool
	// Iterations is the number of random cases per law. Zero means 500.
	Iterations int
	// Seed seeds the random source, for reproducible failures.
	Seed uint64
}

// Validate reports whether c is usable, wrapping ErrInvalidConfig.
func (c Config[V]) Validate() error {
	switch {
	case c.Gen == nil:
		return fmt.Errorf("%w: Gen is nil", ErrInvalidConfig)
	case c.Equal == nil:
		return fmt.Errorf("%w: Equal is nil", ErrInvalidConfig)
	case c.Iterations < 0:
		return fmt.Errorf("%w: Iterations = %d", ErrInvalidConfig, c.Iterations)
	}
	return nil
}

// CheckUpsert checks u against the laws documented on cascade.Upsert:
//
//   - purity: the same arguments give the same result;
//   - shadowing (tombstone semantics included): a definitive newer entry
//     (value or tombstone) is the result, whatever is older;
//   - resolution: a delta folded onto a definitive entry (a value, or a
//     tombstone standing for "absent") is definitive;
//   - associativity: (a⊕b)⊕c == a⊕(b⊕c) for entries of every kind;
//   - order independence of deltas, if Config.Commutative claims it;
//   - in situ: random Put/Delete/Merge sequences through a real Cascade, with
//     random rotations, fusions and compactions, read back the same as a sequential
//     fold of the same operations.
//
// It returns nil or the first violation found, with a counterexample,
// wrapping ErrLawViolated.
func CheckUpsert[V any](u cascade.Upsert[V], cfg Config[V]) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 500
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	eq := func(a, b cascade.Entry[V]) bool {
		return a.Kind == b.Kind && (a.Kind == cascade.KindTombstone || cfg.Equal(a.Value, b.Value))
	}
	anyEntry := func() cascade.Entry[V] {
		switch r.IntN(3) {
		case 0:
			return cascade.ValueEntry(cfg.Gen(r))
		case 1:
			return cascade.TombstoneEntry[V]()
		}
		return cascade.DeltaEntry(cfg.Gen(r))
	}
	definitive := func() cascade.Entry[V] {
		if r.IntN(4) == 0 {
			return cascade.TombstoneEntry[V]()
		}
		return cascade.ValueEntry(cfg.Gen(r))
	}
	delta := func() cascade.Entry[V] { return cascade.DeltaEntry(cfg.Gen(r)) }
	fail := func(law string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrLawViolated, law, fmt.Sprint(args...))
	}

	for range cfg.Iterations {
		a, b, c := anyEntry(), anyEntry(), anyEntry()
		if x, y := u.Upsert(a, b), u.Upsert(a, b); !eq(x, y) {
			return fail("purity", "upsert(", a, ", ", b, ") gave ", x, " then ", y)
		}
		d := definitive()
		if got := u.Upsert(a, d); !eq(got, d) {
			return fail("shadowing", "upsert(", a, ", ", d, ") = ", got, ", want ", d)
		}
		if got := u.Upsert(d, delta()); !got.Definitive() {
			return fail("resolution", "upsert(", d, ", delta) = ", got, ", want a definitive entry")
		}
		left, right := u.Upsert(u.Upsert(a, b), c), u.Upsert(a, u.Upsert(b, c))
		if !eq(left, right) {
			return fail("associativity", "a=", a, " b=", b, " c=", c, ": (a⊕b)⊕c = ", left, ", a⊕(b⊕c) = ", right)
		}
		if cfg.Commutative {
			d1, d2 := delta(), delta()
			if x, y := u.Upsert(u.Upsert(d, d1), d2), u.Upsert(u.Upsert(d, d2), d1); !eq(x, y) {
				return fail("order independence", "base=", d, " d1=", d1, " d2=", d2, ": d1 then d2 = ", x, ", d2 then d1 = ", y)
			}
		}
	}
	return checkInSitu(u, cfg, r)
}

// checkInSitu runs random operations through a Cascade and compares every key
// with a sequential reference fold, live and through snapshots.
func checkInSitu[V any](u cascade.Upsert[V], cfg Config[V], r *rand.Rand) error {
	const keys = 4
	rounds := max(cfg.Iterations/25, 4)
	for round := range rounds {
		c, err := cascade.New[int, V](cascade.Options[V]{Upsert: u, Shards: 2})
		if err != nil {
			return err
		}
		ref := make([]cascade.Entry[V], keys) // zero Kind = absent
		check := func(where string, get func(int) (V, bool)) error {
			for k := range keys {
				want := ref[k]
				got, ok := get(k)
				wantOK := want.Kind != 0 && want.Kind != cascade.KindTombstone
				if ok != wantOK || (ok && !cfg.Equal(got, want.Value)) {
					return fmt.Errorf("%w: in situ (round %d, %s): key %d read (%v, %v), sequential fold gives %v",
						ErrLawViolated, round, where, k, got, ok, want)
				}
			}
			return nil
		}
		for range 40 {
			k := r.IntN(keys)
			var e cascade.Entry[V]
			switch r.IntN(5) {
			case 0:
				e = cascade.TombstoneEntry[V]()
				c.Delete(k)
			case 1, 2:
				e = cascade.ValueEntry(cfg.Gen(r))
				c.Put(k, e.Value)
			default:
				e = cascade.DeltaEntry(cfg.Gen(r))
				c.Merge(k, e.Value)
			}
			base := ref[k]
			if base.Kind == 0 {
				base = cascade.TombstoneEntry[V]()
			}
			ref[k] = u.Upsert(base, e)
			if ref[k].Kind == cascade.KindDelta { // broken resolution: read as a value
				ref[k].Kind = cascade.KindValue
			}
			switch r.IntN(8) {
			case 0, 1:
				if err := c.Rotate(c.Generation() + 1); err != nil {
					return err
				}
			case 2:
				if err := c.Compact(); err != nil {
					return err
				}
			case 3:
				if g := c.Snapshot().Generation(); g > 0 {
					if err := c.FuseThrough(g); err != nil {
						return err
					}
				}
			}
			if err := check("live", c.Get); err != nil {
				return err
			}
		}
		if err := c.Rotate(c.Generation() + 1); err != nil {
			return err
		}
		if err := check("snapshot", c.Snapshot().Get); err != nil {
			return err
		}
		if err := c.Compact(); err != nil {
			return err
		}
		if err := check("compacted", c.Snapshot().Get); err != nil {
			return err
		}
	}
	return nil
}
