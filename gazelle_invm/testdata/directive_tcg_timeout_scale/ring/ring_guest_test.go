package ring

//invm:tcg_timeout_scale 4

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
}
