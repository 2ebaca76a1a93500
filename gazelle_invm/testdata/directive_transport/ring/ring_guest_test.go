package ring

//invm:transport virtio-serial

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
}
