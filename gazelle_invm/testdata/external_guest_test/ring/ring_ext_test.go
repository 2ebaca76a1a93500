package ring_test

import (
	"testing"

	"example.com/m/ring"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
	_ = ring.Size
}
