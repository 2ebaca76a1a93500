package c

//invm:memory 2G

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
}
