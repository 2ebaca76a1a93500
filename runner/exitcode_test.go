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

// FuzzVerdictExitStatus holds the whole path from verdict bytes to the
// launcher's exit status: whatever the guest sends, a verdict that decodes
// and does not pass never makes the process exit with status 0 (os.Exit
// keeps the low 8 bits), and a passing one always does.
func FuzzVerdictExitStatus(f *testing.F) {
	for _, s := range []string{
		`{"pass":true,"exit_code":0}`,
		`{"pass":false,"exit_code":1}`,
		`{"pass":false,"exit_code":256}`,
		`{"pass":false,"exit_code":-1,"signal":"SIGKILL"}`,
		`{"pass":false,"exit_code":-1,"signal":"SIGRTMAX"}`,
		`{"pass":false,"exit_code":0,"leaked":["1 sleep"]}`,
		`{"pass":false,"exit_code":-1,"signal":"SIGNOPE"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := protocol.DecodeVerdict(in)
		if err != nil {
			return
		}
		code := ExitCode(Result{Pass: v.Pass, Verdict: &v}, nil)
		if code < 0 || code > protocol.MaxExitCode {
			t.Fatalf("verdict %s: exit code %d outside 0..255", in, code)
		}
		if status := code & 0xff; (status == 0) != v.Pass {
			t.Fatalf("verdict %s (pass %v): exit status %d", in, v.Pass, status)
		}
	})
}
