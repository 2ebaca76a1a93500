// Package guestinit is the PID 1 of rules_go_vm guests: it mounts the
// pseudo filesystems, reads the protocol.GuestConfig the host put into the
// initramfs, connects back to the host, runs the test binary with a clean
// environment while streaming its output as protocol frames, decides the
// verdict, waits for the host's Ack, tears the mounts down and powers off.
//
// The sequence of Init.Run:
//
//  1. Refuse to run unless PID 1 (Init.RequirePID1).
//  2. Arm a watchdog (SetupTimeout until the test starts, then the test's
//     Timeout + KillGrace + WatchdogMargin). When it fires, or init itself
//     panics, that is a fatal report: init shuts down (step 7) with a FAIL
//     verdict saying why (a panic with its stack): the guest never hangs.
//  3. Read the config (protocol.ConfigPath, or $INVM_CONFIG). If it cannot
//     be read, init still connects on protocol.DefaultChannel and reports a
//     FAIL verdict saying why.
//  4. Mount the table (BaseMounts, then one hugetlbfs per configured page
//     size), nosuid/noexec/nodev where sensible; make sure fds 0-2 are open
//     on /dev/console. Over vsock, step 5 runs meanwhile.
//  5. Connect: vsock dials to CID 2 on the configured port (the control
//     stream and one per data role, at once), or open the virtio-serial
//     port (after the mounts: it is a /dev node), retrying until
//     OpenTimeout. Send Hello.
//  6. Run the test (see below) and stream its stdout/stderr live.
//  7. Shut down (shutdown_linux.go), one path for every end: the stages
//     drain in order, each within its deadline (package lifecycle): test
//     (on a fatal end, kill what the test left; TestStopDeadline), verdict
//     (send it, wait for the Ack at most AckTimeout; + VerdictSlack),
//     streams (StreamsCloseDeadline), mounts (sync, unmount in reverse
//     order, lazy, with EBUSY retries, sync; MountsTeardownDeadline). A
//     stage that overruns is abandoned and reported on the console; then
//     init powers off.
//
// # The test's environment
//
// The test gets exactly this environment, then the config's Env entries
// (which override these defaults, except EnvMarker):
//
//	IN_VM=1                                  EnvMarker: "I run inside a rules_go_vm guest"
//	PATH=/bin:/sbin:/usr/bin:/usr/sbin
//	TMPDIR=/tmp
//	HOME=/tmp
//
// Its working directory is GuestConfig.Dir, stdin is /dev/null, stdout and
// stderr are pipes pumped into Stdout/Stderr frames.
//
// # Verdict
//
// The run passes only when the test exited 0, no process was left alive
// after it exited (leaked processes are named from /proc in the reason, then
// killed), it did not time out, no terminating signal (SIGTERM, SIGINT,
// SIGQUIT, SIGALRM) reached init, its output was fully drained, and init
// itself hit no error. Signals listed in Signals are forwarded to the test.
// Init reaps every child until ECHILD.
//
// # What the initramfs must hold
//
// /init (this program, built with CGO_ENABLED=0), the config at
// protocol.ConfigPath, the test binary, and the device node /dev/console
// (char 5:1, mode 0600). The kernel opens /dev/console as init's fds 0-2
// before devtmpfs is mounted; without it those fds are closed and the Go
// runtime aborts at start-up (it then tries /dev/null, which does not exist
// yet either), so the guest never reports anything. Kernel command line
// parameters of the form INVM_CONFIG=/path reach init as environment
// variables and override the config path.
//
// Everything that touches the machine (mounts, /proc, the clock, the
// channel, power-off) is injected through Init's fields, so the core runs
// in host tests without being PID 1.
package guestinit
