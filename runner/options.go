package runner

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// Defaults of Options fields left zero.
const (
	DefaultMemoryMiB = 256
	DefaultCPUs      = 1
	// DefaultTestTimeout is the guest-side bound of the test run.
	DefaultTestTimeout = protocol.DefaultTimeout
	// BootAllowance is added to the test timeout (and the guest's kill
	// grace) to get the default host-side Timeout.
	BootAllowance = 60 * time.Second
	// DefaultChannelTimeout bounds boot + init until the guest connects.
	DefaultChannelTimeout = 60 * time.Second
	// DefaultPoweroffTimeout bounds the wait for QEMU to exit after the
	// verdict was acknowledged; a passing run whose guest does not power
	// off in it fails with ErrAfterVerdict.
	DefaultPoweroffTimeout = 10 * time.Second
	// DefaultHostname is the guest's hostname.
	DefaultHostname = "invm-guest"
)

// Environment variables the runner adds to the test's environment (after
// Options.Env), so a test can prove it runs in the guest.
const (
	// EnvKernelRelease is the release of the booted kernel image, as the
	// host read it (KernelRelease); empty if unknown.
	EnvKernelRelease = "INVM_KERNEL_RELEASE"
	// EnvHostKernelRelease is the host's `uname -r`.
	EnvHostKernelRelease = "INVM_HOST_KERNEL_RELEASE"
	// EnvHostHostname is the host's hostname.
	EnvHostHostname = "INVM_HOST_HOSTNAME"
	// EnvHostBootID is the host's /proc/sys/kernel/random/boot_id.
	EnvHostBootID = "INVM_HOST_BOOT_ID"
)

// Options describes one run. Only TestBinary is required.
type Options struct {
	// TestBinary is the Linux executable to run in the guest (a `go test
	// -c` binary or any static program).
	TestBinary string
	// Args are the test's arguments (without argv[0]).
	Args []string
	// Env holds extra NAME=value entries for the test.
	Env []string
	// WorkDir is the test's working directory in the guest; "" means
	// GuestDir (where the binary and testdata/ are).
	WorkDir string
	// TestdataDir is a host directory copied to GuestDir/testdata; "" means
	// none.
	TestdataDir string
	// PackageFiles are host files copied next to the test binary in
	// GuestDir under their base names: the package directory's files, which
	// go test's working directory gives a test on the host (see
	// PackageDirFiles). A name that is also the binary's or testdata is an
	// invalid option.
	PackageFiles []string

	// Arch is the guest architecture; "" means the test binary's (ELF).
	Arch arch.Arch
	// Kernel is the guest kernel image; "" means FindKernel in
	// KernelDirs(CacheDir).
	Kernel string
	// QEMU is the QEMU binary; "" means the arch's qemu-system-* on PATH.
	QEMU string
	// Machine overrides the arch's machine type (e.g. "q35").
	Machine string
	// Accel forces "kvm" or "tcg"; "" means ChooseAccel.
	Accel string
	// MemoryMiB is the guest RAM; 0 means DefaultMemoryMiB.
	MemoryMiB int
	// CPUs is the number of vCPUs; 0 means DefaultCPUs.
	CPUs int
	// ExtraCmdline is appended to the kernel command line.
	ExtraCmdline []string

	// VM shape (go_vm_test's nics, mgmt_nic, host_pages, guest_hugepages,
	// iommu).

	// Backend is the hypervisor backend ("" or "qemu", see vmm.For).
	Backend string
	// NICs are the guest's network cards, one per entry, each a
	// qemu.NICModels value ("virtio_net", "e1000", "e1000e"). NIC i is at
	// PCI address qemu.NICPCIAddress(i) (0000:00:10.0 onwards); NICs 2k and
	// 2k+1 are cabled back to back inside QEMU (no host network, ever).
	// NICs make an x86_64 guest a q35 machine.
	NICs []string
	// MgmtNIC is the management NIC's model, a qemu.NICModels value; ""
	// for none. It is at PCI address qemu.MgmtNICPCIAddress (0000:00:0f.0),
	// alone on its own QEMU hub, with MAC qemu.MgmtNICMAC, and makes an
	// x86_64 guest a q35 machine like the NICs.
	MgmtNIC string
	// NICSeed names the test for its NICs' MAC addresses (qemu.NICMAC);
	// "" means the test binary's base name.
	NICSeed string
	// HostPages is the host page backing of guest RAM: "" or "4k" (memfd),
	// "2M" or "1G" (hugetlbfs, which the host must have mounted with
	// enough free pages).
	HostPages string
	// HostHugepages is where the host's hugetlbfs mounts and pools are
	// read (zero: /proc/mounts, /sys/kernel/mm/hugepages).
	HostHugepages qemu.HostHugepages
	// GuestHugepages reserves guest hugepages (kernel command line) and
	// has the guest init mount hugetlbfs for them at /dev/hugepages and
	// /dev/hugepages-SIZE.
	GuestHugepages vmspec.Hugepages
	// IOMMU gives the guest a virtual IOMMU (intel-iommu on x86_64, SMMUv3
	// on aarch64); without it, a guest with NICs gets VFIO's no-IOMMU
	// mode.
	IOMMU bool
	// VFIONICs selects the NICs the guest init binds to vfio-pci before
	// the test (through their IOMMU group with IOMMU, in VFIO's no-IOMMU
	// mode without); the test finds their addresses in EnvVFIONICs.
	VFIONICs vmspec.VFIONICs
	// NoMonitor boots without the VM monitor (QMP): a guest panic is then
	// only seen on the console. For measuring the monitor's cost.
	NoMonitor bool
	// CountTranslations asks QEMU, when the verdict arrives, how many
	// translation blocks TCG has made (Result.Translations): the guest code
	// run for the first time, a noise-free measure of a boot's cost for
	// benchmarks. Needs the monitor; nothing is counted under KVM.
	CountTranslations bool

	// ExtraLayers are initramfs archives inserted between the base and the
	// test layer (later ones override earlier ones).
	ExtraLayers []string
	// Daemon is the vhost-device-vsock binary; "" means vsock.FindDaemon.
	Daemon string
	// BaseLayerFile is a prebuilt base layer (see NewBaseLayer), e.g. from
	// the guest_base_layer Bazel rule; "" means BaseLayer (cached, built
	// around InitBinary).
	BaseLayerFile string
	// GuestTestPath, when set, is where the test binary already is in the
	// guest (an ExtraLayers archive holds it, e.g. go_vm_test's test
	// layer); TestBinary is then only read for its architecture.
	GuestTestPath string
	// InitBinary is a prebuilt static guest init; "" builds
	// guestinit/cmd/init from ModuleRoot (cached by content).
	InitBinary string
	// ModuleRoot is this module's source tree, for building the init; ""
	// means FindModuleRoot from the working directory.
	ModuleRoot string

	// TestTimeout bounds the test in the guest (SIGQUIT, then SIGKILL);
	// 0 means DefaultTestTimeout.
	TestTimeout time.Duration
	// Timeout bounds the whole run on the host (QEMU is killed); 0 means
	// TestTimeout + protocol.DefaultKillGrace + BootAllowance.
	Timeout time.Duration
	// ChannelTimeout bounds the boot until the guest init speaks (its
	// first Hello; a bare connection, which QEMU makes for virtio-serial
	// before the guest boots, does not count); 0 means
	// DefaultChannelTimeout.
	ChannelTimeout time.Duration
	// PoweroffTimeout bounds the wait for QEMU to exit after the verdict;
	// 0 means DefaultPoweroffTimeout.
	PoweroffTimeout time.Duration

	// ExternalDeadline says Timeout is a deadline set from outside (Bazel's
	// TEST_TIMEOUT budget) that TestTimeout was fitted under: the host time
	// spent before the guest boots is then taken off TestTimeout, so the
	// order of the bounds holds. Without it TestTimeout is left as given.
	ExternalDeadline bool
	// TCGTimeoutScale is how much longer than under KVM the test's
	// timeouts were made for TCG (go_vm_test's tcg_timeout_scale).
	TCGTimeoutScale int
	// KVMTestTimeout, when the guest gets KVM, is given to the test as its
	// -test.timeout (unless Args has one): the nominal timeout of a test
	// whose Bazel timeout was raised for TCG. 0: none.
	KVMTestTimeout time.Duration

	// ConsoleLog is where the guest console (kernel log) is written; ""
	// means a file in StateDir, removed with it.
	ConsoleLog string
	// StateDir is the run's private directory (sockets, initrd); "" means
	// a new temporary directory, removed at the end. A given directory is
	// kept with initrd.cpio and console.log (for the reproducer); the
	// daemon's sockets and log are removed.
	StateDir string
	// CacheDir holds the kernels (kbuild), base layers and accelerator
	// choices; "" means $XDG_CACHE_HOME/rules_go_vm or ~/.cache/rules_go_vm.
	CacheDir string
	// Hostname is the guest's hostname; "" means DefaultHostname.
	Hostname string
	// Verbose mirrors the console live to Log and makes init verbose.
	Verbose bool

	// Stdout and Stderr receive the test's output, live; nil discards.
	Stdout, Stderr io.Writer
	// Log receives the runner's diagnostics; nil discards.
	Log io.Writer
	// CPUInfo is the host's /proc/cpuinfo (for the TSC frequency).
	CPUInfo string
	// KVMDevice is the host's /dev/kvm.
	KVMDevice string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Transport is how the guest's streams reach the host: "" or "auto"
	// (kernel vhost-vsock when /dev/vhost-vsock is usable, else the
	// vhost-device-vsock daemon, else virtio-serial), "vhost-vsock",
	// "vhost-user-vsock" or "virtio-serial" (see package runner/vsock).
	// The run's log says which one and why.
	Transport string
	// Start is how the guest starts (vmspec.Starts): "" or "cold" boots it;
	// "snapshot" restores a template of this VM from the cache directory
	// (made on first use; see template.go) and sends the test layer over
	// virtio-serial, failing with ErrInvalidOptions when the VM cannot be
	// restored; "auto" restores where it can and boots otherwise. A
	// template that does not fit and a failed restore fall back to a cold
	// boot; the run's log and Result.Start say which start ran and why.
	Start string
	// Template is a prebuilt template's directory (MakeTemplate), used
	// instead of the cache's; "" uses the cache directory's templates.
	// A prebuilt template that does not fit is refused (cold boot), never
	// remade.
	Template string
	// NoTemplate, when set, is why the run has no template (a launcher's
	// build decided, e.g. the VM is not the shared template's shape):
	// start = "auto" boots cold giving this reason, without making or
	// looking for one; start = "snapshot" still makes one in the cache.
	NoTemplate string
	// TemplateFormat is how templates are saved (vmm.SaveFormats); "" is
	// DefaultTemplateFormat, the one measured to restore fastest here.
	// For measuring the others (invmbench -template-formats).
	TemplateFormat string
	// TemplateOut, when set, makes Run make a template of this VM in that
	// directory and run no test (MakeTemplate); TestBinary is not needed.
	TemplateOut string
	// VhostDevice is the kernel's vhost-vsock device; "" means
	// /dev/vhost-vsock.
	VhostDevice string
	// OutputsDir receives the files the test wrote to
	// $TEST_UNDECLARED_OUTPUTS_DIR in the guest; "" checks and drops them.
	OutputsDir string
	// CoverageDir, when not empty, receives the files the test wrote to
	// GuestCoverageDir in the guest (whatever its verdict): its coverage
	// data. The front end points the test's coverage at GuestCoverageDir
	// (Env: COVERAGE_DIR for a Bazel go_test; Args: -test.gocoverdir,
	// -test.coverprofile for go test). "" gives the guest no coverage
	// directory: nothing is made, walked or sent.
	CoverageDir string
	// StacksGrace is how long the run goes on after ctx ended (host
	// timeout, SIGTERM) while the guest prints the test's goroutine
	// stacks; 0 means DefaultStacksGrace.
	StacksGrace time.Duration
	// Command, when not empty, is run in the booted guest after the test's
	// verdict arrived and before the guest powers off (argv; the guest has
	// no shell unless a layer adds one, see ShellLayer): for debugging a
	// test in the VM it ran in. Needs a vsock transport.
	Command []string
	// Shell makes Command interactive: the guest runs it on a pty and the
	// host's Stdin (a terminal, put in raw mode) is its input.
	Shell bool
	// Stdin is the input of Command; nil means os.Stdin.
	Stdin io.Reader
	// ShellBusybox is a static busybox put at /bin/busybox in the guest
	// for Shell; "" means the base layer's (Busybox), else FindBusybox's
	// default.
	ShellBusybox string
	// CC is the C compiler for the guest's arch that resolves a dynamically
	// linked test binary's interpreter and libraries (runner/dynlib); ""
	// means $CC, else gcc for the host's arch, else <triplet>-gcc.
	CC string
	// Busybox is the static busybox of the base layer (its applets are on
	// the test's PATH, see GuestApplets); "" means FindGuestBusybox's
	// default (tools/setup's busybox-<arch>), NoBusybox none. Ignored with
	// BaseLayerFile.
	Busybox string
}

// DefaultStacksGrace bounds the wait for the guest's goroutine stacks after
// the run was stopped (Bazel sends SIGKILL 15 s after SIGTERM).
const DefaultStacksGrace = 10 * time.Second

// DefaultCacheDir returns $XDG_CACHE_HOME/rules_go_vm, or
// ~/.cache/rules_go_vm.
func DefaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "rules_go_vm")
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".cache", "rules_go_vm")
	}
	return filepath.Join(os.TempDir(), "rules_go_vm-cache")
}

// WithDefaults returns o with its zero fields defaulted (Arch is left for
// Run to read from the binary).
func (o Options) WithDefaults() Options {
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultMemoryMiB
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.TestTimeout == 0 {
		o.TestTimeout = DefaultTestTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = o.TestTimeout + protocol.DefaultKillGrace + BootAllowance
	}
	if o.ChannelTimeout == 0 {
		o.ChannelTimeout = DefaultChannelTimeout
	}
	if o.PoweroffTimeout == 0 {
		o.PoweroffTimeout = DefaultPoweroffTimeout
	}
	if o.WorkDir == "" {
		o.WorkDir = GuestDir
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.Hostname == "" {
		o.Hostname = DefaultHostname
	}
	if o.CPUInfo == "" {
		o.CPUInfo = "/proc/cpuinfo"
	}
	if o.KVMDevice == "" {
		o.KVMDevice = "/dev/kvm"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StacksGrace == 0 {
		o.StacksGrace = DefaultStacksGrace
	}
	if o.Transport == "" {
		o.Transport = string(vsock.Auto)
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Validate checks o (after WithDefaults) and returns an error wrapping
// ErrInvalidOptions naming the first bad field.
func (o *Options) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, a...))
	}
	if err := o.validateTestBinary(); err != nil {
		return err
	}
	if o.Arch != "" {
		if _, err := qemu.ProfileFor(o.Arch); err != nil {
			return bad("%v", err)
		}
	}
	if err := o.validateShape(); err != nil {
		return err
	}
	if o.TemplateFormat != "" && !slices.Contains(vmm.SaveFormats, o.TemplateFormat) {
		return bad("template format %q: use one of %s", o.TemplateFormat, strings.Join(vmm.SaveFormats, ", "))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"test timeout", o.TestTimeout}, {"timeout", o.Timeout}, {"channel timeout", o.ChannelTimeout}, {"power-off timeout", o.PoweroffTimeout}} {
		if d.v <= 0 {
			return bad("%s %v: want > 0", d.name, d.v)
		}
	}
	if !strings.HasPrefix(o.WorkDir, "/") {
		return bad("workdir %q: want an absolute guest path", o.WorkDir)
	}
	if o.TestdataDir != "" {
		if fi, err := os.Stat(o.TestdataDir); err != nil || !fi.IsDir() {
			return bad("testdata dir %q: not a directory", o.TestdataDir)
		}
	}
	seenFile := map[string]bool{filepath.Base(o.TestBinary): true, "testdata": true}
	for _, f := range o.PackageFiles {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return bad("package file %q: not a regular file", f)
		}
		if seenFile[filepath.Base(f)] {
			return bad("package file %q: its name %q is taken in the guest directory (the test binary, testdata or another package file)", f, filepath.Base(f))
		}
		seenFile[filepath.Base(f)] = true
	}
	if o.Kernel != "" {
		if _, err := os.Stat(o.Kernel); err != nil {
			return fmt.Errorf("%w: %w", ErrNoKernel, err)
		}
	}
	for _, e := range o.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return bad("env %q: want NAME=value", e)
		}
	}
	if o.GuestTestPath != "" && !strings.HasPrefix(o.GuestTestPath, "/") {
		return bad("guest test path %q: want an absolute guest path", o.GuestTestPath)
	}
	if o.BaseLayerFile != "" {
		if _, err := os.Stat(o.BaseLayerFile); err != nil {
			return bad("base layer: %v", err)
		}
	}
	if o.StacksGrace < 0 {
		return bad("stacks grace %v: want >= 0", o.StacksGrace)
	}
	if (len(o.Command) > 0 || o.Shell) && o.Transport == string(vsock.VirtioSerial) {
		return bad("command/shell needs a vsock transport, not %s", vsock.VirtioSerial)
	}
	for _, l := range o.ExtraLayers {
		if _, err := os.Stat(l); err != nil {
			return bad("extra layer: %v", err)
		}
	}
	return nil
}

// validateTestBinary checks the test binary, which making a template
// (TemplateOut) does not need.
func (o *Options) validateTestBinary() error {
	switch {
	case o.TemplateOut != "" && o.TestBinary == "":
		return nil
	case o.TestBinary == "":
		return fmt.Errorf("%w: no test binary", ErrInvalidOptions)
	}
	if fi, err := os.Stat(o.TestBinary); err != nil {
		return fmt.Errorf("%w: test binary: %v", ErrInvalidOptions, err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: test binary %s: not a regular file", ErrInvalidOptions, o.TestBinary)
	}
	return nil
}

// validateShape checks the VM shape fields with package vmspec (limits,
// allowed values, cross-field rules) and, once the arch is known, that the
// shape has a machine.
func (o *Options) validateShape() error {
	if err := o.Shape().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if _, err := vmm.For(o.Backend); err != nil {
		return fmt.Errorf("%w: backend: %w", ErrInvalidOptions, err)
	}
	if o.Arch != "" {
		if _, err := o.machineType(); err != nil {
			return err
		}
	}
	return nil
}

// machineType is the machine the backend boots o's VM shape on (Arch must
// be set; the backend is valid).
func (o *Options) machineType() (string, error) {
	b, err := vmm.For(o.Backend)
	if err != nil {
		return "", fmt.Errorf("%w: backend: %w", ErrInvalidOptions, err)
	}
	m, err := b.Machine(o.shape())
	if err != nil {
		return "", fmt.Errorf("%w: machine: %s", ErrInvalidOptions, specMessage(err))
	}
	return m, nil
}

// Shape is the VM spec of o, as package vmspec sees it (defaults applied).
func (o *Options) Shape() vmspec.Shape {
	accel := o.Accel
	if accel == "" {
		accel = "auto"
	}
	return vmspec.Shape{
		Arch: string(o.Arch), Backend: o.Backend, Accel: accel, CPUs: o.CPUs, MemoryMiB: o.MemoryMiB,
		HostPages: o.HostPages, GuestHugepages: o.GuestHugepages, NICs: o.NICs, MgmtNIC: o.MgmtNIC,
		IOMMU: o.IOMMU, VFIONICs: o.VFIONICs, Cmdline: o.ExtraCmdline, Transport: o.Transport, TCGTimeoutScale: max(o.TCGTimeoutScale, 1),
		Start: o.Start,
	}.Defaults()
}

// SetShape sets o's VM shape fields from a resolved spec ("auto" accel is
// Options' "": the runner chooses).
func (o *Options) SetShape(s vmspec.Shape) {
	o.Arch, o.Backend, o.CPUs, o.MemoryMiB = arch.Arch(s.Arch), s.Backend, s.CPUs, s.MemoryMiB
	o.Accel = s.Accel
	if o.Accel == "auto" {
		o.Accel = ""
	}
	o.HostPages, o.GuestHugepages, o.NICs, o.MgmtNIC, o.IOMMU = s.HostPages, s.GuestHugepages, s.NICs, s.MgmtNIC, s.IOMMU
	o.VFIONICs = s.VFIONICs
	o.ExtraCmdline, o.Transport, o.TCGTimeoutScale = s.Cmdline, s.Transport, s.TCGTimeoutScale
	o.Start = s.Start
}

// specMessage is a qemu.ErrInvalidSpec error's message without the prefix.
func specMessage(err error) string {
	return strings.TrimPrefix(err.Error(), qemu.ErrInvalidSpec.Error()+": ")
}

// shape is the VM shape of o: what the plan knows before anything is
// prepared (Arch must be set for a backend to lower it).
func (o *Options) shape() vmm.VM {
	s := vmm.VM{
		Arch: o.Arch, Machine: o.Machine, MemoryMiB: o.MemoryMiB, CPUs: o.CPUs,
		HostPages: o.HostPages, GuestHugepages: o.GuestHugepages, IOMMU: o.IOMMU,
	}
	seed := o.NICSeed
	if seed == "" {
		seed = filepath.Base(o.TestBinary)
	}
	for i, m := range o.NICs {
		s.NICs = append(s.NICs, vmm.NIC{Model: m, MAC: qemu.NICMAC(seed, i)})
	}
	if o.MgmtNIC != "" {
		s.MgmtNIC = vmm.NIC{Model: o.MgmtNIC, MAC: qemu.MgmtNICMAC(seed)}
	}
	return s
}

// EnvNICs is the variable the runner sets for the test when the guest has
// NICs: space-separated "MODEL PCI-ADDRESS MAC" entries joined by commas,
// in PCI order (package invm parses it: invm.NICs).
const EnvNICs = "INVM_NICS"

// EnvMgmtNIC is the variable the runner sets for the test when the guest has
// a management NIC: "MODEL PCI-ADDRESS MAC" (invm.MgmtNIC). INVM_NICS never
// lists it.
const EnvMgmtNIC = "INVM_MGMT_NIC"

// EnvVFIONICs is the variable the runner sets for the test when the guest
// init bound NICs to vfio-pci before it (Options.VFIONICs): their PCI
// addresses, comma-separated (invm.VFIONICs).
const EnvVFIONICs = "INVM_VFIO_NICS"

// vfioNICs returns the PCI addresses of the NICs o.VFIONICs selects.
func (o *Options) vfioNICs() []string {
	var out []string
	for _, i := range o.VFIONICs.Resolve(len(o.NICs)) {
		out = append(out, qemu.NICPCIAddress(i))
	}
	return out
}

// EnvGuestHugepages is the variable the runner sets for the test when the
// guest has hugepages: SIZE:COUNT, e.g. "2M:64" (see invm.Hugepages).
const EnvGuestHugepages = "INVM_GUEST_HUGEPAGES"

// shapeEnv returns the environment entries describing the VM shape to the
// test.
func shapeEnv(s vmm.VM) []string {
	var env []string
	if len(s.NICs) > 0 {
		var nics []string
		for i, n := range s.NICs {
			nics = append(nics, n.Model+" "+qemu.NICPCIAddress(i)+" "+n.MAC)
		}
		env = append(env, EnvNICs+"="+strings.Join(nics, ","))
	}
	if m := s.MgmtNIC; m.Model != "" {
		env = append(env, EnvMgmtNIC+"="+m.Model+" "+qemu.MgmtNICPCIAddress()+" "+m.MAC)
	}
	if h := s.GuestHugepages; h.Count > 0 {
		env = append(env, EnvGuestHugepages+"="+h.String())
	}
	return env
}
