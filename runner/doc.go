// Package runner runs a Go test binary inside a real Linux guest under QEMU
// and reports its verdict: Run(ctx, Options) (Result, error).
//
// One run:
//
//  1. Options are defaulted and validated; the guest architecture comes
//     from the test binary's ELF header when not given (ArchOfELF).
//  2. The kernel is Options.Kernel or the newest kbuild cache entry for the
//     arch (FindKernel); QEMU is the arch's qemu-system binary on PATH,
//     probed for the machine type, the vhost-user vsock device and the
//     memfd memory backend (qemu.Probe); the vsock daemon is found with
//     vsock.FindDaemon.
//  3. The initramfs is the cached base layer (guestinit built for the guest
//     GOARCH with CGO_ENABLED=0, /dev/console, directories; see BaseLayer)
//     followed by a per-run test layer (the test binary and its testdata/
//     under GuestDir, and protocol.ConfigPath with the test's args, env,
//     timeout and the vsock channel on protocol.DefaultVsockPort).
//  4. The accelerator is KVM only when a canary boot proved it works for
//     this (host, QEMU, kernel), cached in the cache directory (ChooseAccel);
//     otherwise TCG.
//  5. The runner listens on the daemon's host socket for the guest port,
//     starts one vhost-device-vsock for this VM in the private state
//     directory, then QEMU (parent-death signal; console to a log file).
//  6. The guest init connects; protocol.Collect streams the test's output
//     live to Options.Stdout/Stderr and checks the verdict (it must be
//     positive to pass), then acks it; the guest powers off.
//  7. The daemon is killed by PID, its sockets and the state directory are
//     removed on every path.
//
// Failures that are not the test's are errors wrapping one of the sentinel
// errors below; ExitCode maps a Result and error to the process exit code
// of the invm command (see the Exit* constants).
package runner
