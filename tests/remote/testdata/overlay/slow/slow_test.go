package slow

import (
	"fmt"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestSlow(t *testing.T) {
	invm.Require(t)
	fmt.Println("REMOTE-SLOW: started")
	time.Sleep(3 * time.Minute)
}
