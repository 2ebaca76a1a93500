package ring

//invm:nics e1000,e1000
//invm:vfio_nics all
//invm:guest_hugepages 2M:64
//invm:memory 512M

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
