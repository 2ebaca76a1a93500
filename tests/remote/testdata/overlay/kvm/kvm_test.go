package kvm

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestUnderKVM(t *testing.T) {
	invm.Require(t)
	t.Log("REMOTE-KVM: ran in a guest")
}
