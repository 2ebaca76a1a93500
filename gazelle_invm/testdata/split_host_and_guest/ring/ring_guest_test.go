package ring

import (
	"testing"

	"golang.org/x/sys/unix"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
	_ = unix.Getpid()
}
