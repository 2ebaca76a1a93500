package cascade_test

import (
	"errors"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/cascade"
)

// TestModelProperty drives a cascade with random operations (puts, deletes,
// merges, rotations with generation gaps, fusions, partial and full
// compactions) and checks it against a plain map: live reads match the
// model, and every as-of view of the latest snapshot matches the model as it
// was when that generation was sealed, unless that history was compacted or
// fused away (ErrCompacted).
func TestModelProperty(t *testing.T) {
	policies := []struct {
		name string
		up   cascade.Upsert[int]
		fold func(old int, had bool, delta int) int
	}{
		{"last-write-wins", cascade.LastWriteWins[int]{}, func(_ int, _ bool, d int) int { return d }},
		{"counter", counter(), func(o int, _ bool, d int) int { return o + d }},
	}
	for _, p := range policies {
		for seed := range uint64(20) {
			t.Run(p.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 99))
				c, err := cascade.New[int, int](cascade.Options[int]{Upsert: p.up, Shards: 1 << r.IntN(4)})
				if err != nil {
					t.Fatal(err)
				}
				model := map[int]int{}
				sealedAt := map[cascade.Generation]map[int]int{} // model when each generation was sealed
				var sealedGens []cascade.Generation
				for step := range 300 {
					k := r.IntN(6)
					switch op := r.IntN(12); {
					case op < 4:
						v := r.IntN(100)
						c.Put(k, v)
						model[k] = v
					case op < 5:
						c.Delete(k)
						delete(model, k)
					case op < 8:
						d := r.IntN(10)
						c.Merge(k, d)
						old, had := model[k]
						model[k] = p.fold(old, had, d)
					case op < 10:
						g := c.Generation()
						if err := c.Rotate(g + 1 + cascade.Generation(r.IntN(3))); err != nil {
							t.Fatal(err)
						}
						sealedAt[g] = maps.Clone(model)
						sealedGens = append(sealedGens, g)
					case op < 11 && len(sealedGens) > 0:
						w := sealedGens[r.IntN(len(sealedGens))]
						var err error
						if r.IntN(2) == 0 {
							err = c.FuseThrough(w)
						} else {
							err = c.CompactThrough(w)
						}
						if err != nil {
							t.Fatalf("step %d: through %d: %v", step, w, err)
						}
					default:
						if err := c.Compact(); err != nil {
							t.Fatal(err)
						}
					}
					for key := range 6 {
						got, ok := c.Get(key)
						want, wantOK := model[key]
						if got != want || ok != wantOK {
							t.Fatalf("seed %d step %d: Get(%d) = (%d, %v), model (%d, %v)", seed, step, key, got, ok, want, wantOK)
						}
					}
				}
				s := c.Snapshot()
				for _, g := range sealedGens {
					v, err := s.AsOf(g)
					if errors.Is(err, cascade.ErrCompacted) {
						continue
					}
					if err != nil {
						t.Fatalf("AsOf(%d): %v", g, err)
					}
					if got := maps.Collect(v.All()); !maps.Equal(got, sealedAt[g]) {
						t.Fatalf("seed %d: AsOf(%d) = %v, model %v", seed, g, got, sealedAt[g])
					}
				}
				if len(sealedGens) > 0 {
					last := sealedGens[len(sealedGens)-1]
					if got := maps.Collect(s.All()); !maps.Equal(got, sealedAt[last]) {
						t.Fatalf("seed %d: snapshot = %v, model %v", seed, got, sealedAt[last])
					}
				}
			})
		}
	}
}
