// Package runner runs a Go test binary inside a real Linux guest under QEMU
// and reports its verdict: Run(ctx, Options) (Result, error).
//
// One run is five phases, each a named step of Run:
//
//  1. Plan (plan.go: runPlan, planOptions, findHost): Options are
//     defaulted and validated; the guest architecture comes from the test
//     binary's ELF header when not given (ArchOfELF). The kernel is
//     Options.Kernel or the newest kbuild cache entry for the arch
//     (FindKernel); QEMU is the arch's qemu-system binary on PATH, probed
//     for the machine type, the vhost-user vsock device and the memfd
//     memory backend (qemu.Probe); the VM's shape (a vmm.VM) gets the host's
//     hugetlbfs mount for 2M/1G host pages; the transport is chosen
//     (vsock.Choose, which finds the vsock daemon). The guest's config and
//     the VM's description are pure functions of the plan and what prepare
//     made (guestConfig, guestTimeouts, vmDescription).
//  2. Prepare (prepare.go: prepared, prepare), in order: the private state
//     directory; the cached base initramfs layer (guestinit built for the
//     guest GOARCH with CGO_ENABLED=0, /dev/console, directories; see
//     BaseLayer); the host side of the channel (listening before the guest
//     can dial); the accelerator, KVM only when a canary boot proved it
//     works for this (host, QEMU, kernel), cached in the cache directory
//     (ChooseAccel), otherwise TCG; the per-run test layer (the test binary
//     and its testdata/ under GuestDir, and protocol.ConfigPath with the
//     test's args, env, timeout and channel) after the base and extra
//     layers in the initrd; then one vhost-device-vsock for this VM when
//     that is the transport.
//  3. Boot (boot.go: bootedVM, boot): the backend (vmm.Backend) lowers the
//     VM's description to QEMU's command line; QEMU starts with a
//     parent-death signal, its console to a log file, and the VM monitor
//     is watched for a guest panic.
//  4. Session (session.go: vmSession.run): the guest init connects;
//     protocol.CollectStreams streams the test's output live to
//     Options.Stdout/Stderr and checks the verdict (it must be positive to
//     pass), then acks it; the guest powers off.
//  5. Collect (run.go: collectResult): the verdict and the host's timings
//     go into the Result.
//
// Whatever the phases made is released by the run's one teardown
// (teardown.go, package lifecycle), on every path, in stage order, each
// stage within its deadline: vm (quit over the monitor, kill, console
// closed), channel (the daemon killed by PID, its sockets, the vhost
// device, the listener), state (the run's files and the state directory).
// Launch runs a launcher's (invm, vmtest) whole run under the process's
// signals.
//
// Failures that are not the test's are errors wrapping one of the sentinel
// errors below; ExitCode maps a Result and error to the process exit code
// of the invm command (see the Exit* constants).
package runner
