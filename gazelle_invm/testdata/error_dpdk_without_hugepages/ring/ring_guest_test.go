package ring

//invm:nics e1000,e1000
//invm:vfio_nics all

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/dpdk"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestForward(t *testing.T) {
	invm.Require(t)
	if err := dpdk.InitEAL(dpdk.EALOptions{Hugepages: true, Allow: invm.VFIONICs()}); err != nil {
		t.Fatal(err)
	}
}
