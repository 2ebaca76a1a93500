package rulegen_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/rulegen"
)

func TestRulesDeterministicAndValid(t *testing.T) {
	for _, p := range []rulegen.Profile{rulegen.Simple, rulegen.ACL, rulegen.Firewall, rulegen.IPC} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/v6=%v", p, v6), func(t *testing.T) {
				o := rulegen.Options{Profile: p, N: 500, Seed: 3, V6: v6}
				a, err := rulegen.Rules(o)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := rulegen.Rules(o)
				if !reflect.DeepEqual(a, b) {
					t.Fatal("same seed, different rules")
				}
				s := key.MustCodec[rulegen.V4]().Schema()
				if v6 {
					s = key.MustCodec[rulegen.V6]().Schema()
				}
				if _, err := key.LowerAll(s, a, key.LowerOptions{UniquePriorities: true}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	if _, err := rulegen.Rules(rulegen.Options{N: 0}); err == nil {
		t.Fatal("N=0 accepted")
	}
}

// TestHitMiss checks the probe generators: hits satisfy the rule, one-field
// misses do not.
func TestHitMiss(t *testing.T) {
	r := rulegen.New(5)
	for i := 0; i < 300; i++ {
		s := rulegen.RandomSchema(r, rulegen.SchemaOptions{WideRanges: true})
		l, err := s.Lower(0, rulegen.RandomRule(r, s, 1), 1)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 20; j++ {
			if k := rulegen.Hit(r, s, &l); !l.Matches(s, k) {
				t.Fatalf("schema %v: hit %x does not match", s, k)
			}
			f := r.IntN(s.NumFields())
			k, ok := rulegen.Miss(r, s, &l, f)
			if ok == l.Fields[f].Any {
				t.Fatalf("schema %v field %d: miss ok=%v but Any=%v", s, f, ok, l.Fields[f].Any)
			}
			if ok && l.Matches(s, k) {
				t.Fatalf("schema %v field %d: miss %x matches", s, f, k)
			}
		}
	}
}
