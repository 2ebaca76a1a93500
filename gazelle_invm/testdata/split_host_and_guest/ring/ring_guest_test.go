package ring

import (
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
	"golang.org/x/sys/unix"
)

func TestInGuest(t *testing.T) {
	invm.Require(t)
	_ = unix.Getpid()
}
