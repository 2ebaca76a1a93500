package e2e

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

// edit is changed by //tests/e2e:e2e_test to prove that editing a test rebuilds only its own layer.
const edit = "original"

func TestInGuest(t *testing.T) {
	invm.Require(t)
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var machine []byte
	for _, c := range u.Machine { // int8 or uint8, depending on the arch
		if c == 0 {
			break
		}
		machine = append(machine, byte(c))
	}
	// The driver greps test.log for this line (stdout is logged without -test.v).
	fmt.Printf("E2E-GUEST goarch=%s machine=%s kernel=%s edit=%s\n",
		runtime.GOARCH, machine, strings.TrimSpace(string(b)), edit)
}
