package cascadetest_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/cascade"
	"github.com/rules-go-vm/rules_go_vm/cascade/cascadetest"
)

// plus folds deltas with +: for ints a counter (deltas commute), for strings
// concatenation (associative but order dependent).
func plus[T ~int | ~string](older, newer cascade.Entry[T]) cascade.Entry[T] {
	if newer.Kind != cascade.KindDelta {
		return newer
	}
	switch older.Kind {
	case cascade.KindTombstone:
		return cascade.ValueEntry(newer.Value)
	case cascade.KindValue:
		return cascade.ValueEntry(older.Value + newer.Value)
	}
	return cascade.DeltaEntry(older.Value + newer.Value)
}

func intCfg(commutative bool) cascadetest.Config[int] {
	return cascadetest.Config[int]{
		Gen:         func(r *rand.Rand) int { return r.IntN(100) - 50 },
		Equal:       func(a, b int) bool { return a == b },
		Commutative: commutative,
		Seed:        1,
	}
}

func strCfg(commutative bool) cascadetest.Config[string] {
	return cascadetest.Config[string]{
		Gen:         func(r *rand.Rand) string { return string(rune('a' + r.IntN(3))) },
		Equal:       func(a, b string) bool { return a == b },
		Commutative: commutative,
		Seed:        2,
	}
}

// TestCheckUpsertIntPolicies is the harness self-test: known-good policies
// pass, known-bad ones are caught.
func TestCheckUpsertIntPolicies(t *testing.T) {
	tests := []struct {
		name    string
		policy  cascade.Upsert[int]
		cfg     cascadetest.Config[int]
		wantErr bool
	}{
		{"last-write-wins", cascade.LastWriteWins[int]{}, intCfg(false), false},
		{"last-write-wins claimed commutative", cascade.LastWriteWins[int]{}, intCfg(true), true},
		{"sum", cascade.UpsertFunc[int](plus[int]), intCfg(true), false},
		{"ignores tombstones", cascade.UpsertFunc[int](func(o, n cascade.Entry[int]) cascade.Entry[int] {
			if n.Kind == cascade.KindTombstone && o.Kind == cascade.KindValue {
				return o
			}
			return cascade.LastWriteWins[int]{}.Upsert(o, n)
		}), intCfg(false), true},
		{"subtract is not associative", cascade.UpsertFunc[int](func(o, n cascade.Entry[int]) cascade.Entry[int] {
			if n.Kind != cascade.KindDelta {
				return n
			}
			k := o.Kind
			if k == cascade.KindTombstone {
				k = cascade.KindValue
			}
			return cascade.Entry[int]{Kind: k, Value: o.Value - n.Value}
		}), intCfg(false), true},
		{"never resolves deltas", cascade.UpsertFunc[int](func(o, n cascade.Entry[int]) cascade.Entry[int] { return n }), intCfg(false), true},
		{"first write wins", cascade.UpsertFunc[int](func(o, n cascade.Entry[int]) cascade.Entry[int] {
			if o.Kind == cascade.KindValue {
				return o
			}
			return cascade.LastWriteWins[int]{}.Upsert(o, n)
		}), intCfg(false), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cascadetest.CheckUpsert(tt.policy, tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckUpsert = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, cascadetest.ErrLawViolated) {
				t.Fatalf("error %v does not wrap ErrLawViolated", err)
			}
			if err != nil {
				t.Logf("caught: %v", err)
			}
		})
	}
}

func TestCheckUpsertOrderDependentPolicy(t *testing.T) {
	tests := []struct {
		name    string
		cfg     cascadetest.Config[string]
		wantErr bool
	}{
		{"append, order respected", strCfg(false), false},
		{"append, wrongly claimed commutative", strCfg(true), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cascadetest.CheckUpsert(cascade.UpsertFunc[string](plus[string]), tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckUpsert = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  cascadetest.Config[int]
		ok   bool
	}{
		{"complete", intCfg(false), true},
		{"no gen", cascadetest.Config[int]{Equal: intCfg(false).Equal}, false},
		{"no equal", cascadetest.Config[int]{Gen: intCfg(false).Gen}, false},
		{"negative iterations", cascadetest.Config[int]{Gen: intCfg(false).Gen, Equal: intCfg(false).Equal, Iterations: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, cascadetest.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if err != nil && cascadetest.CheckUpsert[int](cascade.LastWriteWins[int]{}, tt.cfg) == nil {
				t.Fatal("CheckUpsert accepted an invalid config")
			}
		})
	}
}
