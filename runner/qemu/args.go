package qemu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Arch is a guest architecture, named like `uname -m`.
type Arch string

// Guest architectures.
const (
	X86_64  Arch = "x86_64"
	AArch64 Arch = "aarch64"
)

// Accelerators.
const (
	AccelTCG = "tcg"
	AccelKVM = "kvm"
)

// Sentinel errors.
var (
	// ErrUnknownArch reports an architecture without a Profile.
	ErrUnknownArch = errors.New("unknown guest architecture")
	// ErrInvalidSpec reports a Spec that cannot be lowered.
	ErrInvalidSpec = errors.New("invalid QEMU spec")
	// ErrMissingFeature reports a QEMU binary lacking a machine type,
	// device or object the runner needs.
	ErrMissingFeature = errors.New("QEMU lacks a required feature")
)

// Profile is how one guest architecture is lowered to QEMU arguments.
type Profile struct {
	// Binary is the QEMU system emulator's file name.
	Binary string
	// Machine is the default machine type.
	Machine string
	// CPU is the -cpu value under TCG ("" leaves QEMU's default).
	CPU string
	// KVMCPU is the -cpu value under KVM.
	KVMCPU string
	// Console is the kernel's console device name.
	Console string
	// VsockDevice maps a machine type to its vhost-user vsock device: the
	// virtio-mmio one for microvm, the PCI one otherwise.
	VsockDevice map[string]string
	// Cmdline is the arch's part of the kernel command line.
	Cmdline []string
	// TSCEarly says whether tsc_early_khz=<host kHz> is added under TCG
	// (x86 microvm hangs in most TCG boots without it: no HPET nor PM
	// timer to calibrate the TSC against).
	TSCEarly bool
	// KernelImage is the kernel file the kbuild cache entry provides.
	KernelImage string
}

// Profiles is the per-arch lowering table.
var Profiles = map[Arch]Profile{
	X86_64: {
		Binary: "qemu-system-x86_64",
		// No ACPI: QEMU 11's microvm with a vhost-user vsock device and an
		// initrd hangs the guest at "ACPI: Core revision" (measured with
		// linux 7.2; QEMU 7.2 boots). Without ACPI there is no power-off:
		// the guest init resets instead, which -no-reboot turns into a
		// QEMU exit.
		Machine: "microvm,acpi=off",
		KVMCPU:  "host",
		Console: "ttyS0",
		// The guest init resets at the end; without ACPI the kernel would
		// first try reset methods microvm lacks (3.5 s lost per boot,
		// measured): go straight to a triple fault. no_timer_check: the
		// IO-APIC timer check counts ticks against a busy loop, and a TCG
		// vCPU starved by a loaded host (8 guests on 2 cores, measured)
		// fails it and panics ("IO-APIC + timer doesn't work!").
		Cmdline:     []string{"reboot=t", "no_timer_check"},
		VsockDevice: map[string]string{"microvm": "vhost-user-vsock-device", "": "vhost-user-vsock-pci"},
		TSCEarly:    true,
		KernelImage: "vmlinux",
	},
	AArch64: {
		Binary:      "qemu-system-aarch64",
		Machine:     "virt",
		CPU:         "max,pauth=off",
		KVMCPU:      "host",
		Console:     "ttyAMA0",
		VsockDevice: map[string]string{"": "vhost-user-vsock-pci"},
		KernelImage: "Image",
	},
}

// BaseCmdline is the architecture-independent kernel command line.
var BaseCmdline = []string{"panic=-1", "oops=panic", "rdinit=/init"}

// ProfileFor returns the Profile of arch.
func ProfileFor(arch Arch) (Profile, error) {
	p, ok := Profiles[arch]
	if !ok {
		return Profile{}, fmt.Errorf("%w: %q (want %s or %s)", ErrUnknownArch, arch, X86_64, AArch64)
	}
	return p, nil
}

// VsockDeviceFor returns the vhost-user vsock device of machine.
func (p Profile) VsockDeviceFor(machine string) string {
	if d, ok := p.VsockDevice[machineBase(machine)]; ok {
		return d
	}
	return p.VsockDevice[""]
}

func machineBase(m string) string {
	m, _, _ = strings.Cut(m, ",")
	return m
}

// Spec describes one guest for lowering to QEMU arguments.
type Spec struct {
	// Arch is the guest architecture.
	Arch Arch
	// Machine overrides the profile's machine type ("q35" for a baseline).
	Machine string
	// Accel is AccelTCG (default) or AccelKVM.
	Accel string
	// Kernel is the kernel image (vmlinux with PVH entry, bzImage, Image).
	Kernel string
	// Initrd is the initramfs image.
	Initrd string
	// MemoryMiB is the guest RAM in MiB.
	MemoryMiB int
	// CPUs is the number of vCPUs.
	CPUs int
	// VhostUserSocket is the vhost-user-vsock daemon's socket; empty means
	// no vsock device.
	VhostUserSocket string
	// TSCkHz is the host TSC frequency for tsc_early_khz (x86 under TCG);
	// 0 leaves it out.
	TSCkHz int
	// Quiet adds "quiet" to the kernel command line.
	Quiet bool
	// ExtraCmdline is appended to the kernel command line.
	ExtraCmdline []string
	// ExtraArgs are appended to the QEMU arguments.
	ExtraArgs []string
}

// Cmdline returns the kernel command line of s.
func (s Spec) Cmdline() ([]string, error) {
	p, err := ProfileFor(s.Arch)
	if err != nil {
		return nil, err
	}
	c := []string{"console=" + p.Console}
	c = append(c, BaseCmdline...)
	c = append(c, p.Cmdline...)
	if p.TSCEarly && s.Accel != AccelKVM && s.TSCkHz > 0 {
		c = append(c, "tsc_early_khz="+strconv.Itoa(s.TSCkHz))
	}
	if s.Quiet {
		c = append(c, "quiet")
	}
	return append(c, s.ExtraCmdline...), nil
}

// Args lowers s to QEMU arguments (without the binary).
func Args(s Spec) ([]string, error) {
	p, err := ProfileFor(s.Arch)
	if err != nil {
		return nil, err
	}
	switch {
	case s.Kernel == "":
		return nil, fmt.Errorf("%w: no kernel", ErrInvalidSpec)
	case s.MemoryMiB <= 0:
		return nil, fmt.Errorf("%w: memory %d MiB", ErrInvalidSpec, s.MemoryMiB)
	case s.CPUs <= 0:
		return nil, fmt.Errorf("%w: %d CPUs", ErrInvalidSpec, s.CPUs)
	}
	accel := s.Accel
	if accel == "" {
		accel = AccelTCG
	}
	if accel != AccelTCG && accel != AccelKVM {
		return nil, fmt.Errorf("%w: accelerator %q", ErrInvalidSpec, accel)
	}
	machine := s.Machine
	if machine == "" {
		machine = p.Machine
	}
	cpu := p.CPU
	if accel == AccelKVM {
		cpu = p.KVMCPU
	}
	cmdline, err := s.Cmdline()
	if err != nil {
		return nil, err
	}
	mem := strconv.Itoa(s.MemoryMiB) + "M"
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", machine + ",memory-backend=mem",
		"-accel", accel,
	}
	if cpu != "" {
		a = append(a, "-cpu", cpu)
	}
	a = append(a,
		"-m", mem,
		"-smp", strconv.Itoa(s.CPUs),
		"-object", "memory-backend-memfd,id=mem,size="+mem+",share=on",
		"-serial", "stdio",
		"-kernel", s.Kernel,
	)
	if s.Initrd != "" {
		a = append(a, "-initrd", s.Initrd)
	}
	a = append(a, "-append", strings.Join(cmdline, " "))
	if s.VhostUserSocket != "" {
		a = append(a,
			"-chardev", "socket,id=vsock0,path="+s.VhostUserSocket,
			"-device", p.VsockDeviceFor(machine)+",chardev=vsock0",
		)
	}
	return append(a, s.ExtraArgs...), nil
}

// CommandLine renders binary and args as a shell command line a user can
// paste to reproduce a boot.
func CommandLine(binary string, args []string) string {
	parts := make([]string, 0, len(args)+1)
	for _, s := range append([]string{binary}, args...) {
		parts = append(parts, shellQuote(s))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
