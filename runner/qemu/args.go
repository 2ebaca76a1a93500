package qemu

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
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
	// TCGCmdline is added to Cmdline under TCG only.
	TCGCmdline []string
	// TSCEarly says whether tsc_early_khz=<host kHz> is added under TCG
	// (x86 microvm hangs in most TCG boots without it: no HPET nor PM
	// timer to calibrate the TSC against).
	TSCEarly bool
	// KernelImage is the kernel file the kbuild cache entry provides.
	KernelImage string
	// PCIMachine is the machine type picked when a device needs PCI (NICs,
	// the IOMMU).
	PCIMachine string
	// IOMMU is how the arch's virtual IOMMU is lowered.
	IOMMU IOMMULowering
	// LayerWindowReserve is the kernel parameter that keeps the kernel off
	// a layer window (Spec.LayerWindow), a format of the window's size and
	// base in MiB; "" when the arch has no layer window (aarch64: no
	// memmap=, and its /dev/mem maps memory outside the kernel's as Device
	// memory, which faults on unaligned loads and is slow under TCG).
	LayerWindowReserve string
}

// Profiles is the per-arch lowering table.
var Profiles = map[arch.Arch]Profile{
	arch.X86_64: {
		Binary: "qemu-system-x86_64",
		// No ACPI: QEMU 11's microvm with a vhost-user vsock device and an
		// initrd hangs the guest at "ACPI: Core revision" (measured with
		// linux 7.2; QEMU 7.2 boots). Without ACPI there is no power-off:
		// the guest init resets instead, which -no-reboot turns into a
		// QEMU exit.
		Machine: "microvm,acpi=off",
		// TCG emulates QEMU's max model, not its default qemu64: code built
		// for a real x86-64 baseline (Debian's DPDK: -march=corei7, SSE4.2)
		// dies of SIGILL on qemu64. It costs the boot ~1.7k more translation
		// blocks at the verdict (62.7k -> 64.4k, +2.7%; invmbench
		// -compare-qemu with a -cpu max wrapper, same run).
		CPU:     "max",
		KVMCPU:  "host",
		Console: "ttyS0",
		// The guest init resets at the end; without ACPI the kernel would
		// first try reset methods microvm lacks (3.5 s lost per boot,
		// measured): go straight to a triple fault. no_timer_check: the
		// IO-APIC timer check counts ticks against a busy loop, and a TCG
		// vCPU starved by a loaded host (8 guests on 2 cores, measured)
		// fails it and panics ("IO-APIC + timer doesn't work!").
		// noreplace-smp: a 1-vCPU guest would otherwise rewrite every LOCK
		// prefix of the kernel text to UP form at boot, one text_poke each
		// (~0.1 s under TCG, measured with a sampling profiler).
		Cmdline: []string{"reboot=t", "no_timer_check", "noreplace-smp"},
		// nolapic_timer: TCG's CPU has no TSC-deadline timer, so the
		// kernel would calibrate the local APIC timer against the PIT for
		// 25 ticks (~0.2 s per boot, measured); the PIT (and its broadcast
		// to other vCPUs) is the tick device instead. KVM has the deadline
		// timer and skips the calibration.
		TCGCmdline: []string{"nolapic_timer"},
		// memmap=<size>$<base>: the range is reserved (e820), never the
		// kernel's; /dev/mem maps it cached (x86 PAT: write-back).
		LayerWindowReserve: "memmap=%dM$%dM",
		VsockDevice:        map[string]string{"microvm": "vhost-user-vsock-device", "": "vhost-user-vsock-pci"},
		TSCEarly:           true,
		KernelImage:        "vmlinux",
		PCIMachine:         "q35",
		// Interrupt remapping needs the split irqchip under KVM (TCG
		// ignores it). The profile's no_timer_check also covers the
		// remapped variant of the timer check ("timer doesn't work through
		// Interrupt-remapped IO-APIC": 1 boot in ~20 here without it).
		IOMMU: IOMMULowering{
			Device:         "intel-iommu,intremap=on",
			MachineOptions: []string{"kernel-irqchip=split"},
			Cmdline:        []string{"intel_iommu=on"},
		},
	},
	arch.AArch64: {
		Binary:      "qemu-system-aarch64",
		Machine:     "virt",
		CPU:         "max,pauth=off",
		KVMCPU:      "host",
		Console:     "ttyAMA0",
		VsockDevice: map[string]string{"": "vhost-user-vsock-pci"},
		KernelImage: "Image",
		PCIMachine:  "virt",
		// The SMMUv3 is part of the virt machine; the device tree tells the
		// kernel about it. VFIO's type-1 IOMMU (what DPDK opens) refuses a
		// group whose MSIs are not isolated ("No interrupt remapping
		// support", EPERM on VFIO_SET_IOMMU): on Arm that isolation is the
		// GICv3 ITS, and virt's default GICv2 (with v2m) has none, so a
		// guest with an IOMMU gets a GICv3 (and its ITS). Under KVM the
		// host needs a GICv3 too.
		IOMMU: IOMMULowering{MachineOptions: []string{"iommu=smmuv3", "gic-version=3"}},
	},
}

// BaseCmdline is the architecture-independent kernel command line.
var BaseCmdline = []string{"panic=-1", "oops=panic", "rdinit=/init"}

// ProfileFor returns the Profile of a.
func ProfileFor(a arch.Arch) (Profile, error) {
	p, ok := Profiles[a]
	if !ok {
		return Profile{}, fmt.Errorf("%w: %q (want %s or %s)", ErrUnknownArch, a, arch.X86_64, arch.AArch64)
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
	Arch arch.Arch
	// Machine overrides the machine type ("q35" for a baseline); "" picks
	// the profile's, or its PCI machine when a device needs PCI (see
	// MachineType).
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
	// Incoming restores the guest from a saved state instead of booting
	// it (QEMU's -incoming, e.g. "file:/path/state"); empty boots. The rest
	// of the spec must be the saved guest's, but for Kernel, Initrd and the
	// command line, which a restore leaves out: the saved guest has them
	// in its RAM, and QEMU would only load them for a reboot (which
	// -no-reboot makes an exit). Reading them cost each restore ~5 ms
	// (an 18 MB vmlinux and the initrd, measured).
	Incoming string
	// MigrationCaps are migration capabilities to turn on (CapMappedRAM,
	// CapIgnoreShared), on both sides of a save.
	MigrationCaps []string
	// RAMFile, when set, backs guest RAM with this file, mapped shared
	// (writes reach it) or, with RAMFilePrivate, copy-on-write from a file
	// opened read-only. It replaces HostPages' backend.
	RAMFile        string
	RAMFilePrivate bool
	// QMPSocket is where QEMU serves QMP (a unix socket it creates); empty
	// means no monitor.
	QMPSocket string
	// VhostVsockCID, when not 0, adds the host kernel's vhost-vsock device
	// with this guest CID, on the vhost device QEMU inherits as file
	// descriptor VhostVsockFD.
	VhostVsockCID uint32
	VhostVsockFD  int
	// SerialSocket, when set, adds a virtio-serial port named
	// SerialPortName whose host end is this unix socket (QEMU connects to
	// it as a client).
	SerialSocket string
	// LayerWindow, when its File is set, adds a layer window: MiB MiB of
	// guest-physical memory right after the RAM (LayerWindowBase) backed by
	// File mapped shared, a NUMA node of its own, which the kernel is told
	// not to use (Profile.LayerWindowReserve). A save with
	// CapIgnoreShared leaves it out, so each restore brings its own file:
	// its test layer, which the guest maps through /dev/mem
	// (protocol.LayerInWindow).
	LayerWindow LayerWindow
	// Share, when its Dir is set, adds a virtio-9p device exporting Dir
	// read-only under Share.Tag.
	Share Share
	// NICs are the guest's network cards, in PCI slot order (see
	// NICPCIAddress). They are cabled in back-to-back pairs inside QEMU.
	NICs []NIC
	// MgmtNIC is the management NIC (Model "" for none): at PCI address
	// MgmtNICPCIAddress, alone on its own QEMU hub (MgmtHub), so it reaches
	// neither the fabric NICs nor the host.
	MgmtNIC NIC
	// HostPages is the host page backing of guest RAM: "" or HostPages4k
	// (memfd), HostPages2M or HostPages1G (a file on HugetlbfsDir).
	HostPages string
	// HugetlbfsDir is the host hugetlbfs mount for HostPages 2M/1G (see
	// FindHugetlbfs).
	HugetlbfsDir string
	// GuestHugepages reserves guest hugepages on the kernel command line;
	// zero means none.
	GuestHugepages vmspec.Hugepages
	// IOMMU gives the guest a virtual IOMMU (the arch's IOMMULowering);
	// without it, a guest with NICs gets VFIO's no-IOMMU mode.
	IOMMU bool
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

// LayerWindow is Spec.LayerWindow.
type LayerWindow struct {
	File string
	MiB  int
}

// maxLayerWindowEndMiB bounds where a layer window ends: RAM and window
// stay under 2 GiB, below every x86 machine's 32-bit PCI hole, so that
// the RAM is one range from 0 and the window follows it.
const maxLayerWindowEndMiB = 2048

// LayerWindowBase returns the guest-physical address of s's layer window
// (s.LayerWindow.MiB, right after the RAM), or why s cannot have one.
func (s Spec) LayerWindowBase() (uint64, error) {
	p, err := ProfileFor(s.Arch)
	switch {
	case err != nil:
		return 0, err
	case p.LayerWindowReserve == "":
		return 0, fmt.Errorf("%w: no layer window on %s", ErrInvalidSpec, s.Arch)
	case s.LayerWindow.MiB <= 0:
		return 0, fmt.Errorf("%w: layer window of %d MiB", ErrInvalidSpec, s.LayerWindow.MiB)
	case s.MemoryMiB+s.LayerWindow.MiB > maxLayerWindowEndMiB:
		return 0, fmt.Errorf("%w: a layer window of %d MiB after %d MiB of RAM ends past %d MiB", ErrInvalidSpec,
			s.LayerWindow.MiB, s.MemoryMiB, maxLayerWindowEndMiB)
	}
	return uint64(s.MemoryMiB) << 20, nil
}

// needsPCI reports whether s has a device that only exists on a PCI
// machine.
func (s Spec) needsPCI() bool { return len(s.NICs) > 0 || s.MgmtNIC.Model != "" || s.IOMMU }

// MachineType returns the machine type s boots: Spec.Machine if set, else
// the profile's PCI machine when s has NICs (fabric or management) or an IOMMU (x86_64: q35, whose
// PCI bus and ACPI tables the NICs and intel-iommu need; microvm has
// neither), else the profile's default.
func (s Spec) MachineType() (string, error) {
	p, err := ProfileFor(s.Arch)
	if err != nil {
		return "", err
	}
	m := s.Machine
	if m == "" {
		m = p.Machine
		if s.needsPCI() {
			m = p.PCIMachine
		}
	}
	if s.needsPCI() && !PCIMachines[machineBase(m)] {
		return "", fmt.Errorf("%w: machine %q has no PCI bus for the NICs or the IOMMU; "+
			"leave the machine empty (picks %s) or use one of q35, virt", ErrInvalidSpec, m, p.PCIMachine)
	}
	return m, nil
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
	if s.Accel != AccelKVM {
		c = append(c, p.TCGCmdline...)
	}
	if p.TSCEarly && s.Accel != AccelKVM && s.TSCkHz > 0 {
		c = append(c, "tsc_early_khz="+strconv.Itoa(s.TSCkHz))
	}
	if s.IOMMU {
		c = append(c, p.IOMMU.Cmdline...)
	} else if len(s.NICs) > 0 {
		c = append(c, NoIOMMUCmdline...)
	}
	if h := s.GuestHugepages; h.Count > 0 {
		c = append(c, "hugepagesz="+h.Size, "hugepages="+strconv.Itoa(h.Count))
	}
	if s.LayerWindow.File != "" {
		c = append(c, fmt.Sprintf(p.LayerWindowReserve, s.LayerWindow.MiB, s.MemoryMiB))
	}
	if s.Quiet {
		c = append(c, "quiet")
	}
	return append(c, s.ExtraCmdline...), nil
}

// shape is the VM spec part of s, for package vmspec's checks (the one
// owner of limits, allowed values and cross-field rules).
func (s Spec) shape() vmspec.Shape {
	v := vmspec.Shape{
		Arch: string(s.Arch), CPUs: s.CPUs, MemoryMiB: s.MemoryMiB, HostPages: s.HostPages,
		GuestHugepages: s.GuestHugepages, MgmtNIC: s.MgmtNIC.Model, IOMMU: s.IOMMU,
	}
	for _, n := range s.NICs {
		v.NICs = append(v.NICs, n.Model)
	}
	return v.Defaults()
}

// check validates s and returns its machine type and accelerator.
func (s Spec) check() (machine, accel string, err error) {
	switch {
	case s.Kernel == "" && s.Incoming == "":
		return "", "", fmt.Errorf("%w: no kernel", ErrInvalidSpec)
	case s.MemoryMiB <= 0:
		return "", "", fmt.Errorf("%w: memory %d MiB", ErrInvalidSpec, s.MemoryMiB)
	case s.CPUs <= 0:
		return "", "", fmt.Errorf("%w: %d CPUs", ErrInvalidSpec, s.CPUs)
	}
	accel = s.Accel
	if accel == "" {
		accel = AccelTCG
	}
	if accel != AccelTCG && accel != AccelKVM {
		return "", "", fmt.Errorf("%w: accelerator %q", ErrInvalidSpec, accel)
	}
	if machine, err = s.MachineType(); err != nil {
		return "", "", err
	}
	if err := s.shape().Validate(); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	for i, n := range s.NICs {
		if _, err := net.ParseMAC(n.MAC); err != nil {
			return "", "", fmt.Errorf("%w: NIC %d MAC %q: %v", ErrInvalidSpec, i, n.MAC, err)
		}
	}
	if m := s.MgmtNIC; m.Model != "" {
		if _, err := net.ParseMAC(m.MAC); err != nil {
			return "", "", fmt.Errorf("%w: mgmt_nic MAC %q: %v", ErrInvalidSpec, m.MAC, err)
		}
	}
	if s.Share.Dir != "" && (s.Share.Tag == "" || strings.ContainsAny(s.Share.Tag, ",= ")) {
		return "", "", fmt.Errorf("%w: share of %s: mount tag %q: want a non-empty tag without ',', '=' or spaces", ErrInvalidSpec, s.Share.Dir, s.Share.Tag)
	}
	if s.LayerWindow.File != "" {
		if _, err := s.LayerWindowBase(); err != nil {
			return "", "", err
		}
		if hostPageMiB(s.HostPages) > 1 {
			return "", "", fmt.Errorf("%w: a layer window with host pages %s", ErrInvalidSpec, s.HostPages)
		}
	}
	if hostPageMiB(s.HostPages) > 1 && s.HugetlbfsDir == "" {
		return "", "", fmt.Errorf("%w: host pages %s need a hugetlbfs directory", ErrInvalidSpec, s.HostPages)
	}
	return machine, accel, nil
}

// Migration capabilities (Spec.MigrationCaps).
const (
	// CapMappedRAM writes RAM pages at fixed offsets of a file.
	CapMappedRAM = "mapped-ram"
	// CapIgnoreShared leaves RAM backed by a shared named file out of the
	// migration (VM templating).
	CapIgnoreShared = "x-ignore-shared"
)

// SerialPortName is the name of the virtio-serial port of
// Spec.SerialSocket (the guest sees it as /dev/vport0p1).
const SerialPortName = "rules_go_vm.0"

// Args lowers s to QEMU arguments (without the binary): the machine and
// accelerator, the memory and kernel, the monitor, the devices, the
// host-guest channel, then s.ExtraArgs.
func Args(s Spec) ([]string, error) {
	p, err := ProfileFor(s.Arch)
	if err != nil {
		return nil, err
	}
	machine, accel, err := s.check()
	if err != nil {
		return nil, err
	}
	cmdline, err := s.Cmdline()
	if err != nil {
		return nil, err
	}
	a := machineArgs(p, s, machine, accel)
	a = append(a, memoryArgs(s)...)
	a = append(a, "-serial", "stdio")
	if s.Incoming == "" { // a restore's guest is in its RAM (Spec.Incoming)
		a = append(a, "-kernel", s.Kernel)
		if s.Initrd != "" {
			a = append(a, "-initrd", s.Initrd)
		}
		a = append(a, "-append", strings.Join(cmdline, " "))
	}
	if s.QMPSocket != "" {
		a = append(a, "-qmp", "unix:"+s.QMPSocket+",server=on,wait=off")
	}
	a = append(a, deviceArgs(p, s, machine)...)
	a = append(a, channelArgs(p, s, machine)...)
	for _, c := range s.MigrationCaps {
		a = append(a, "-global", "migration."+c+"=on")
	}
	if s.Incoming != "" {
		a = append(a, "-incoming", s.Incoming)
	}
	return append(a, s.ExtraArgs...), nil
}

// machineArgs are the fixed options, the machine (with the IOMMU's
// options), the accelerator and the CPU model.
func machineArgs(p Profile, s Spec, machine, accel string) []string {
	machineOpts := []string{machine}
	if s.LayerWindow.File == "" { // else the RAM is NUMA nodes' (memoryArgs)
		machineOpts = append(machineOpts, "memory-backend=mem")
	}
	if s.IOMMU {
		machineOpts = append(machineOpts, p.IOMMU.MachineOptions...)
	}
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", strings.Join(machineOpts, ","),
		"-accel", accel,
	}
	cpu := p.CPU
	if accel == AccelKVM {
		cpu = p.KVMCPU
	}
	if cpu != "" {
		a = append(a, "-cpu", cpu)
	}
	return a
}

// memoryArgs are the RAM size, the vCPUs and the RAM's shared backend
// (memfd, or a file on hugetlbfs for 2M/1G host pages); with a layer
// window, the RAM and the window are two NUMA nodes' memory, in that
// order (the guest's physical memory).
func memoryArgs(s Spec) []string {
	mem := strconv.Itoa(s.MemoryMiB) + "M"
	if w := s.LayerWindow; w.File != "" {
		total := strconv.Itoa(s.MemoryMiB+w.MiB) + "M"
		a := []string{"-m", total, "-smp", strconv.Itoa(s.CPUs), "-object", ramBackend(s, mem)}
		return append(a, "-object", "memory-backend-file,id=layerwin,size="+strconv.Itoa(w.MiB)+"M,mem-path="+w.File+",share=on",
			"-numa", "node,memdev=mem", "-numa", "node,memdev=layerwin")
	}
	return []string{"-m", mem, "-smp", strconv.Itoa(s.CPUs), "-object", ramBackend(s, mem)}
}

// ramBackend is the RAM's memory backend object, id "mem", of size mem.
func ramBackend(s Spec, mem string) string {
	backend := "memory-backend-memfd,id=mem,size=" + mem + ",share=on"
	switch {
	case s.RAMFile != "" && s.RAMFilePrivate:
		// readonly: the file may be a read-only build output; rom=off: the
		// guest still writes its private copy.
		backend = "memory-backend-file,id=mem,size=" + mem + ",mem-path=" + s.RAMFile + ",share=off,readonly=on,rom=off"
	case s.RAMFile != "":
		backend = "memory-backend-file,id=mem,size=" + mem + ",mem-path=" + s.RAMFile + ",share=on"
	case s.HostPages == HostPages2M || s.HostPages == HostPages1G:
		backend = "memory-backend-file,id=mem,size=" + mem + ",mem-path=" + s.HugetlbfsDir + ",share=on"
	}
	return backend
}

// slotter returns the ",addr=" suffix of a fixed PCI slot (nothing on a
// machine without PCI).
func slotter(machine string) func(n int) string {
	pci := PCIMachines[machineBase(machine)]
	return func(n int) string {
		if !pci {
			return ""
		}
		return fmt.Sprintf(",addr=0x%x", n)
	}
}

// deviceArgs are the vIOMMU, the vhost-user vsock device, pvpanic and the
// NICs, on their fixed slots.
func deviceArgs(p Profile, s Spec, machine string) []string {
	var a []string
	slot := slotter(machine)
	// The vIOMMU comes before the PCI devices it translates for.
	if s.IOMMU && p.IOMMU.Device != "" {
		a = append(a, "-device", p.IOMMU.Device)
	}
	if s.VhostUserSocket != "" {
		a = append(a,
			"-chardev", "socket,id=vsock0,path="+s.VhostUserSocket,
			"-device", p.VsockDeviceFor(machine)+",chardev=vsock0"+slot(SlotVsock),
		)
	}
	if PCIMachines[machineBase(machine)] {
		// A guest panic becomes a QMP GUEST_PANICKED event.
		a = append(a, "-device", "pvpanic-pci"+slot(SlotPvpanic))
	}
	return append(a, nicArgs(s, slot)...)
}

// nicArgs are the management NIC and the fabric NICs with their hubs.
func nicArgs(s Spec, slot func(int) string) []string {
	var a []string
	if m := s.MgmtNIC; m.Model != "" {
		// The management NIC has a hub of its own: nothing else, and no
		// host network, is on it.
		a = append(a,
			"-netdev", fmt.Sprintf("hubport,id=mgmt,hubid=%d", MgmtHub),
			"-device", fmt.Sprintf("%s,netdev=mgmt,mac=%s%s", nicDevice(m.Model, s.IOMMU), m.MAC, slot(SlotMgmtNIC)),
		)
		a = append(a, dropPort("mgmt", MgmtHub)...)
	}
	for i, n := range s.NICs {
		// NICs 2k and 2k+1 share hub k: a back-to-back cable inside QEMU,
		// with no way out to the host.
		a = append(a,
			"-netdev", fmt.Sprintf("hubport,id=net%d,hubid=%d", i, i/2),
			"-device", fmt.Sprintf("%s,netdev=net%d,mac=%s%s", nicDevice(n.Model, s.IOMMU), i, n.MAC, slot(SlotNIC0+i)),
		)
		if i%2 == 0 && i == len(s.NICs)-1 {
			a = append(a, dropPort(fmt.Sprintf("net%d", i), i/2)...)
		}
	}
	return a
}

// channelArgs are the kernel vhost-vsock device and the virtio-serial port,
// in the flavour of machine (virtio-mmio on microvm, PCI otherwise).
func channelArgs(p Profile, s Spec, machine string) []string {
	var a []string
	if s.VhostVsockCID != 0 {
		device := strings.Replace(p.VsockDeviceFor(machine), "vhost-user-vsock", "vhost-vsock", 1)
		a = append(a, "-device", fmt.Sprintf("%s,guest-cid=%d,vhostfd=%d", device, s.VhostVsockCID, s.VhostVsockFD))
	}
	if s.SerialSocket != "" {
		bus := "virtio-serial-pci"
		if strings.HasSuffix(p.VsockDeviceFor(machine), "-device") {
			bus = "virtio-serial-device" // virtio-mmio machines (microvm)
		}
		a = append(a,
			"-device", bus+",id=invmser",
			"-chardev", "socket,id=invmport,path="+s.SerialSocket,
			"-device", "virtserialport,bus=invmser.0,nr=1,chardev=invmport,name="+SerialPortName,
		)
	}
	if s.Share.Dir != "" {
		dev := "virtio-9p-pci"
		if strings.HasSuffix(p.VsockDeviceFor(machine), "-device") {
			dev = "virtio-9p-device" // virtio-mmio machines (microvm)
		}
		a = append(a,
			"-fsdev", "local,id=invmshare,security_model=none,readonly=on,path="+strings.ReplaceAll(s.Share.Dir, ",", ",,"),
			"-device", dev+",fsdev=invmshare,mount_tag="+s.Share.Tag,
		)
	}
	return a
}

// Share is a host directory a guest mounts over 9p (Spec.Share).
type Share struct {
	// Dir is the host directory, exported read-only.
	Dir string
	// Tag is the 9p mount tag the guest mounts it by.
	Tag string
}

// dropPort returns the arguments of a hub port without a peer on hub hub:
// QEMU drops what reaches it. A hub passes a NIC's frames on only when
// another of its ports can take them, so a NIC alone on its hub (the
// management NIC, the last of an odd number of NICs) could not transmit at
// all: its TX ring filled and stalled (tx_packets stayed 0). With this
// port its frames leave and vanish, as on an unplugged switch. QEMU warns
// "hub port NAME-drop has no peer" once at start.
func dropPort(name string, hub int) []string {
	return []string{"-netdev", fmt.Sprintf("hubport,id=%s-drop,hubid=%d", name, hub)}
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
