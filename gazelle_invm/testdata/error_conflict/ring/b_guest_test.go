package ring

//invm:memory 1G

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuestB(t *testing.T) {
	invm.Require(t)
}
