package ring

//invm:memory 512M
//invm:hugepages 2M:64

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
}
