package ring

//invm:nics e1000,virtio_net
//invm:vfio_nics 1

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
}
