package ring

//invm:nics e1000,e1000,e1000,e1000,e1000,e1000,e1000,e1000,e1000

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
}
