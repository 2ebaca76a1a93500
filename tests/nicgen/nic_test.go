// Package nicgen is the README's Gazelle walk-through, kept as a test: this
// file imports invm and says `//invm:nics e1000`, and `bazel run //:gazelle`
// writes nicgen_vm_test (a go_vm_test with nics = ["e1000"]) for it. Nothing
// in its BUILD file is hand-written.
package nicgen

//invm:nics e1000

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestE1000(t *testing.T) {
	invm.Require(t)
	nics, err := invm.NICs()
	if err != nil {
		t.Fatal(err)
	}
	if len(nics) != 1 {
		t.Fatalf("%d NICs, want the one //invm:nics asked for: %+v", len(nics), nics)
	}
	if n := nics[0]; n.Model != "e1000" || n.Driver != "e1000" || n.Name == "" {
		t.Errorf("NIC %+v: want model and bound driver e1000 with an interface", n)
	}
}
