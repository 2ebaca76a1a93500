package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// runPlan is a run resolved before anything is made or started (the plan
// phase): the options with every default applied and what the host
// provides found; the VM's shape. The later phases add only what they make.
type runPlan struct {
	// o are the checked options, with Arch, Kernel, QEMU, Daemon and (for
	// Shell) Command resolved.
	o Options
	// start is when the run began: the guest's bounds under an external
	// deadline count from it.
	start time.Time
	// profile is the arch's QEMU lowering table entry.
	profile qemu.Profile
	// backend boots the VM.
	backend vmm.Backend
	// shape is the VM's shape, with the host's hugetlbfs mount for 2M/1G
	// host pages; prepare and boot add the rest (vmDescription).
	shape vmm.VM
	// transport is the host-guest transport chosen on this host;
	// guestListens says the guest listens on it and the host dials (a
	// snapshot start on kernel vhost-vsock, protocol.ChannelVsockListen).
	transport    vsock.Choice
	guestListens bool
	// startup is a cold boot or a snapshot start (chooseStart).
	startup startChoice
	// qemuVersion is what QEMU says it is.
	qemuVersion string
}

// planOptions checks o (defaulted) and resolves what needs no host probe:
// the arch (from the test binary's ELF when not given), that the binary is
// static or its loader reaches the guest, the arch's profile and the
// shell's default command.
func planOptions(o Options, start time.Time, res *Result) (*runPlan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Arch == "" {
		a, err := ArchOfELF(o.TestBinary)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		o.Arch = a
		if err := o.validateShape(); err != nil { // the machine check needs the arch
			return nil, err
		}
	}
	res.Arch = o.Arch
	if o.TestBinary == "" {
		// Making a template (TemplateOut): no test binary, so no loader.
	} else if err := checkLoader(o); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	profile, err := qemu.ProfileFor(o.Arch)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if o.Shell && len(o.Command) == 0 {
		o.Command = []string{GuestBusybox, "sh", "-i"}
	}
	sc, err := chooseStart(o)
	if err != nil {
		return nil, err
	}
	return &runPlan{o: o, start: start, profile: profile, shape: o.shape(), startup: sc}, nil
}

// findHost resolves the plan against the host: the kernel (FindKernel),
// QEMU and its capabilities for the shape, the backend, the hugetlbfs mount
// for 2M/1G host pages, then the transport (chooseTransport).
func (p *runPlan) findHost(ctx context.Context, res *Result) error {
	o := &p.o
	var err error
	if o.Kernel == "" {
		if o.Kernel, err = FindKernel(o.Arch, KernelDirs(o.CacheDir)...); err != nil {
			return err
		}
	}
	res.Kernel = o.Kernel
	version, err := p.findQEMU(ctx, res)
	if err != nil {
		return err
	}
	if p.backend, err = vmm.For(o.Backend); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if o.HostPages == qemu.HostPages2M || o.HostPages == qemu.HostPages1G {
		if p.shape.HugetlbfsDir, err = o.HostHugepages.Find(o.HostPages, o.MemoryMiB); err != nil {
			return fmt.Errorf("%w: host_pages: %w", ErrInvalidOptions, err)
		}
	}
	fmt.Fprintf(o.Log, "invm: %s, kernel %s\n", version, o.Kernel)
	p.qemuVersion = version
	if p.startup.snapshot {
		p.transport, p.guestListens, err = snapshotTransport(*o)
	} else {
		p.transport, err = chooseTransport(*o)
	}
	if err != nil {
		return err
	}
	o.Daemon = p.transport.Daemon
	return nil
}

// findQEMU finds the arch's QEMU (Options.QEMU, else on PATH) and checks,
// with its cached capabilities, that it has what the shape needs; it
// returns QEMU's version.
func (p *runPlan) findQEMU(ctx context.Context, res *Result) (string, error) {
	o := &p.o
	if o.QEMU == "" {
		var err error
		if o.QEMU, err = exec.LookPath(p.profile.Binary); err != nil {
			return "", fmt.Errorf("%w: %s not on PATH (apt-get install qemu-system-x86 qemu-system-arm)", ErrNoQEMU, p.profile.Binary)
		}
	}
	res.QEMU = o.QEMU
	caps, err := qemu.ProbeCached(ctx, o.QEMU, filepath.Join(o.CacheDir, "qemu"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	check := vmm.QEMUSpec(p.shape)
	check.VhostUserSocket = "-" // checked for its device
	if err := caps.CheckSpec(check); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	return caps.Version, nil
}

// chooseAccel is ChooseAccel's answer for this host, QEMU and kernel (a KVM
// canary boot, cached), or Options.Accel when forced. A forced "kvm" still
// needs a working KVM: without one the run is an infrastructure failure
// (ErrNoKVM) naming this machine and the probe's result, never a TCG run
// and never a QEMU that fails to start.
func (p *runPlan) chooseAccel(ctx context.Context) (AccelChoice, error) {
	o := p.o
	probe := AccelProbe{Arch: o.Arch, QEMU: o.QEMU, Kernel: o.Kernel,
		CacheDir: filepath.Join(o.CacheDir, "accel"), KVMDevice: o.KVMDevice, HostArch: arch.Host()}
	switch o.Accel {
	case "":
		return ChooseAccel(ctx, probe), nil
	case qemu.AccelKVM:
		c := ChooseAccel(ctx, probe)
		if c.Accel != qemu.AccelKVM {
			return c, fmt.Errorf("%w: accel = %q, but KVM does not work on %s: %s", ErrNoKVM, qemu.AccelKVM, MachineName(), c.Reason)
		}
		return AccelChoice{Accel: o.Accel, Reason: "forced by options; " + c.Reason}, nil
	}
	return AccelChoice{Accel: o.Accel, Reason: "forced by options"}, nil
}

// guestConfig plans the guest's side of the run (protocol.GuestConfig): the
// test's path, arguments and bounds (guestTimeouts), its environment (o.Env,
// then hints, the host's entries from hostHints, then the VM shape's), the
// channel the guest dials and, for Command or Shell, the debug port. It is
// pure.
func guestConfig(o Options, shape vmm.VM, ch protocol.Channel, accel string, spent time.Duration, hints []string) protocol.GuestConfig {
	args, timeout := guestTimeouts(o, accel, spent)
	env := append(append([]string(nil), o.Env...), hints...)
	cfg := protocol.GuestConfig{
		Path:     guestTestPath(o),
		Args:     args,
		Env:      append(env, shapeEnv(shape)...),
		Dir:      o.WorkDir,
		Timeout:  protocol.Duration(timeout),
		Channel:  ch,
		Hostname: o.Hostname,
		Verbose:  o.Verbose,
	}
	if cfg.VFIONICs = o.vfioNICs(); len(cfg.VFIONICs) > 0 {
		cfg.Env = append(cfg.Env, EnvVFIONICs+"="+strings.Join(cfg.VFIONICs, ","))
	}
	if o.GuestHugepages.Count > 0 {
		cfg.HugePageSizes = []string{o.GuestHugepages.Size}
	}
	if o.CoverageDir != "" {
		cfg.CoverageDir = GuestCoverageDir
	}
	if len(o.Command) > 0 || o.Shell {
		// The guest serves debug commands and waits for the Ack (sent when
		// the command ended) as long as the run may last.
		cfg.DebugPort, cfg.AckTimeout = protocol.DefaultDebugPort, protocol.Duration(o.Timeout)
	}
	return cfg
}

// guestTimeouts returns the test's arguments and the guest's bound of the
// test. A -test.timeout in Args is the user's and stays as given. Under KVM,
// a test whose timeout was raised for TCG gets the nominal one back as its
// own -test.timeout (Options.KVMTestTimeout), unless Args has one. Under an
// external deadline, the host time spent so far (a KVM canary boot takes up
// to CanaryTimeout) comes off the guest's bound: it counts from the test's
// start and must still fire before the host's, which counts from the run's.
func guestTimeouts(o Options, accel string, spent time.Duration) ([]string, time.Duration) {
	args := append([]string(nil), o.Args...)
	if accel == qemu.AccelKVM && o.KVMTestTimeout > 0 && !hasTestTimeout(args) {
		args = append(args, "-test.timeout="+o.KVMTestTimeout.String())
	}
	timeout := o.TestTimeout
	if o.ExternalDeadline {
		timeout = max(o.TestTimeout-spent, MinTestTimeout)
	}
	return args, timeout
}

// MinTestTimeout is the least the guest's bound of a test is shortened to.
const MinTestTimeout = time.Second

// hasTestTimeout reports whether args set -test.timeout.
func hasTestTimeout(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "test.timeout" {
			return true
		}
	}
	return false
}

// guestTestPath is where the test binary is in the guest.
func guestTestPath(o Options) string {
	if o.GuestTestPath != "" {
		return o.GuestTestPath
	}
	return GuestDir + "/" + filepath.Base(o.TestBinary)
}

// hostHints returns the environment entries the runner adds for the test
// (EnvKernelRelease and the host's identity).
func hostHints(kernel string) []string {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	host, _ := os.Hostname()
	var env []string
	for _, kv := range [][2]string{
		{EnvKernelRelease, KernelRelease(kernel)},
		{EnvHostKernelRelease, read("/proc/sys/kernel/osrelease")},
		{EnvHostHostname, host},
		{EnvHostBootID, read("/proc/sys/kernel/random/boot_id")},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}
