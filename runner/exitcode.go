package runner

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// Sentinel errors for failures that are not the test's. Run's errors wrap
// exactly one of them.
var (
	// ErrInvalidOptions reports bad Options.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNoKernel reports a missing or unusable guest kernel.
	ErrNoKernel = errors.New("no guest kernel")
	// ErrNoQEMU reports a missing QEMU binary or one lacking a feature.
	ErrNoQEMU = errors.New("no usable QEMU")
	// ErrNoKVM reports a run that must use KVM (Options.Accel "kvm") on a
	// machine whose KVM does not work (no device, a cross-arch guest, a
	// failed canary boot). It is an ErrNoQEMU: QEMU cannot do what was
	// asked here.
	ErrNoKVM = fmt.Errorf("%w: no working KVM", ErrNoQEMU)
	// ErrNoDaemon reports a missing or failing vhost-device-vsock daemon.
	ErrNoDaemon = errors.New("no usable vsock daemon")
	// ErrBootFailed reports a QEMU that exited before the guest opened the
	// channel: the boot never reached init.
	ErrBootFailed = errors.New("boot never reached init")
	// ErrGuestPanic reports a guest kernel panic.
	ErrGuestPanic = errors.New("guest kernel panic")
	// ErrNoChannel reports a guest that never connected.
	ErrNoChannel = errors.New("guest never opened the channel")
	// ErrTimeout reports that the run exceeded Options.Timeout.
	ErrTimeout = errors.New("timed out")
	// ErrDaemonDied reports the vsock daemon exiting while the VM ran.
	ErrDaemonDied = errors.New("vsock daemon died during the run")
	// ErrBadSession reports a missing, truncated, garbled or duplicated
	// verdict, or any other protocol violation on an open channel.
	ErrBadSession = errors.New("no valid verdict")
	// ErrAfterVerdict reports a guest that sent a passing verdict and then
	// did not power off in order: it hung past the power-off timeout, its
	// kernel panicked, or QEMU failed. The pass is not trusted.
	ErrAfterVerdict = errors.New("guest did not power off cleanly after its verdict")
	// ErrInternal reports any other runner failure (I/O, building init).
	ErrInternal = errors.New("runner error")
)

// Exit codes of invm. A run with a valid verdict exits with the test's own
// code (0 = pass); the codes from 64 up are reserved for failures that are
// not the test's, one per sentinel error.
const (
	ExitPass = 0
	// ExitUsage: bad flags or options (ErrInvalidOptions).
	ExitUsage = 64
	// ExitNoKernel: no guest kernel (ErrNoKernel).
	ExitNoKernel = 65
	// ExitNoQEMU: QEMU missing or lacking a feature (ErrNoQEMU).
	ExitNoQEMU = 66
	// ExitNoDaemon: vhost-device-vsock missing or not starting (ErrNoDaemon).
	ExitNoDaemon = 67
	// ExitBootFailed: QEMU exited before init connected (ErrBootFailed).
	ExitBootFailed = 68
	// ExitGuestPanic: the guest kernel panicked, no verdict (ErrGuestPanic).
	ExitGuestPanic = 69
	// ExitNoChannel: the guest never connected in time (ErrNoChannel).
	ExitNoChannel = 70
	// ExitTimeout: the whole run exceeded its timeout (ErrTimeout).
	ExitTimeout = 71
	// ExitDaemonDied: the vsock daemon died during the run (ErrDaemonDied).
	ExitDaemonDied = 72
	// ExitBadSession: channel open but no valid verdict (ErrBadSession).
	ExitBadSession = 73
	// ExitVerdictFail: a valid FAIL verdict without a non-zero test exit
	// code: leaked process, guest-side timeout, init error.
	ExitVerdictFail = 74
	// ExitInternal: any other runner failure (ErrInternal).
	ExitInternal = 75
	// ExitAfterVerdict: a passing verdict, then no orderly power-off
	// (ErrAfterVerdict).
	ExitAfterVerdict = 76
	// ExitSignalBase + N: the test was killed by signal N (shell style).
	ExitSignalBase = 128
)

// exitCodes maps sentinel errors to exit codes, in precedence order.
var exitCodes = []struct {
	err  error
	code int
}{
	{ErrInvalidOptions, ExitUsage},
	{ErrNoKernel, ExitNoKernel},
	{ErrNoQEMU, ExitNoQEMU},
	{ErrNoDaemon, ExitNoDaemon},
	{ErrDaemonDied, ExitDaemonDied},
	{ErrTimeout, ExitTimeout},
	{ErrGuestPanic, ExitGuestPanic},
	{ErrBootFailed, ExitBootFailed},
	{ErrNoChannel, ExitNoChannel},
	{ErrBadSession, ExitBadSession},
	{ErrAfterVerdict, ExitAfterVerdict},
	{ErrInternal, ExitInternal},
}

// ExitCode returns the process exit code for a run's result and error: the
// infrastructure code of err when it is non-nil, else the verdict's.
func ExitCode(res Result, err error) int {
	if err != nil {
		for _, e := range exitCodes {
			if errors.Is(err, e.err) {
				return e.code
			}
		}
		return ExitInternal
	}
	v := res.Verdict
	switch {
	case v == nil:
		return ExitBadSession
	case v.Pass:
		return ExitPass
	case v.ExitCode > 0 && v.ExitCode <= protocol.MaxExitCode:
		return v.ExitCode
	case v.Signal != "":
		// A signal number is below 128 (SIGRTMAX is 64): 128+N stays in
		// 129..255, never 0 once the process exits with it.
		if n := unix.SignalNum(v.Signal); n > 0 && int(n) < ExitSignalBase {
			return ExitSignalBase + int(n)
		}
	}
	// A failing verdict whose code would not fail on its own (0, -1, or
	// out of range if a caller built it by hand).
	return ExitVerdictFail
}

// WriteReport prints why a run failed for a reason other than a plain test
// failure: the error, the console tail and a reproducer.
func WriteReport(w io.Writer, res Result, err error) {
	switch {
	case err != nil && IsInfrastructure(res, err):
		fmt.Fprintf(w, "invm: FAIL (infrastructure, not the test): %v\n", err)
	case err != nil:
		// A host timeout or stop, or a kernel panic, while the test ran.
		fmt.Fprintf(w, "invm: FAIL: %v\n", err)
	default:
		fmt.Fprintf(w, "invm: FAIL: %s\n", res.Reason)
		if res.Verdict != nil && len(res.Verdict.Leaked) > 0 {
			fmt.Fprintf(w, "invm: leaked processes: %s\n", strings.Join(res.Verdict.Leaked, "; "))
		}
	}
	if res.QEMUStderr != "" {
		fmt.Fprintf(w, "invm: QEMU said:\n%s\n", res.QEMUStderr)
	}
	if res.ConsoleTail != "" {
		fmt.Fprintf(w, "invm: guest console (last %d lines):\n%s\n", ConsoleTailLines, res.ConsoleTail)
	}
	if res.CommandLine != "" {
		fmt.Fprintf(w, "invm: accelerator %s (%s)\ninvm: reproduce with (the initrd is kept with -state-dir DIR):\n%s\n",
			res.Accel, res.AccelReason, res.CommandLine)
	}
}

// IsInfrastructure reports whether a run failed for a reason that is not
// the test's, the case for Bazel's TEST_INFRASTRUCTURE_FAILURE_FILE:
// every sentinel error, except a host timeout or a guest kernel panic once
// the guest had connected (the test was running: it hung past its own
// -test.timeout and the kill grace, or crashed the kernel it tests). A
// valid verdict, passing or failing (a test failure, the test's own
// timeout, a leaked process), is never the infrastructure's.
func IsInfrastructure(res Result, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrGuestPanic) {
		return res.Boot == 0
	}
	return true
}
