package runner

import (
	"fmt"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

func TestIsInfrastructure(t *testing.T) {
	connected := Result{Boot: 2 * time.Second}
	for _, tc := range []struct {
		name string
		res  Result
		err  error
		want bool
	}{
		{"pass", Result{Pass: true, Verdict: &protocol.Verdict{Pass: true}}, nil, false},
		{"test failed", Result{Verdict: &protocol.Verdict{ExitCode: 1}}, nil, false},
		{"test's own timeout", Result{Verdict: &protocol.Verdict{ExitCode: 2}}, nil, false},
		{"leaked process", Result{Verdict: &protocol.Verdict{ExitCode: 0, Leaked: []string{"7 sleep"}}}, nil, false},
		{"no QEMU", Result{}, fmt.Errorf("%w: qemu-system-x86_64 not on PATH", ErrNoQEMU), true},
		{"no kernel", Result{}, fmt.Errorf("%w: x", ErrNoKernel), true},
		{"bad options", Result{}, fmt.Errorf("%w: x", ErrInvalidOptions), true},
		{"boot failed", Result{}, fmt.Errorf("%w: x", ErrBootFailed), true},
		{"no channel", Result{}, fmt.Errorf("%w: x", ErrNoChannel), true},
		{"daemon died", connected, fmt.Errorf("%w: x", ErrDaemonDied), true},
		{"bad session", connected, fmt.Errorf("%w: x", ErrBadSession), true},
		{"internal", Result{}, fmt.Errorf("%w: x", ErrInternal), true},
		{"unclassified", Result{}, fmt.Errorf("mystery"), true},
		{"timeout during boot", Result{}, fmt.Errorf("%w after 1m: boot", ErrTimeout), true},
		{"timeout while the test ran", connected, fmt.Errorf("%w after 1m", ErrTimeout), false},
		{"kernel panic during boot", Result{}, fmt.Errorf("%w: QEMU exited", ErrGuestPanic), true},
		{"kernel panic while the test ran", connected, fmt.Errorf("%w: x", ErrGuestPanic), false},
	} {
		if got := IsInfrastructure(tc.res, tc.err); got != tc.want {
			t.Errorf("%s: IsInfrastructure = %v, want %v", tc.name, got, tc.want)
		}
	}
}
