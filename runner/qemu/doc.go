// Package qemu lowers a guest description (Spec) to a QEMU command line per
// guest architecture, probes a QEMU binary for what the runner needs, reads
// the host TSC frequency and manages the QEMU process (started with a
// parent-death signal, so it dies with the runner).
//
// The lowering is data: every Arch has a Profile (binary name, machine,
// CPU, console device, vsock device, kernel command line) in the Profiles
// table; Args only assembles the pieces. The command line always has
// -nodefaults -no-user-config -display none -no-reboot, no network device,
// the guest RAM in a shared memfd backend (vhost-user needs it) and the
// console on the serial port, written to QEMU's stdout.
//
// Supported QEMU versions: 7.2 (Debian bookworm) to 11.x; Probe checks the
// machine type, the vhost-user vsock device and the memfd backend are there
// rather than trusting a version number.
package qemu
