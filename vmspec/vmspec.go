// Package vmspec owns the VM spec: the shape of the guest a test asks for
// (arch, backend, accelerator, cpus, memory, host page backing, guest
// hugepages, NICs, management NIC, IOMMU, NICs bound to vfio-pci, kernel
// command line, transport, TCG timeout scale). Field names, value syntax, defaults, limits and every
// cross-field check live here, and every front door calls it:
//
//   - go_vm_test attributes: rules/private/spec.bzl is generated from this
//     package (names, allowed values, limits, defaults, docs and message
//     templates; `go run ./vmspec/cmd/specgen`, drift-tested by
//     //tools/lint), and the launcher re-checks the spec the rule wrote
//     (Launch, Parse);
//   - //invm: directives (gazelle_invm) call Shape.Set;
//   - invm's flags and $INVM_* variables call Shape.Set too (Flags);
//   - runner.Options validates its shape with Shape.Validate.
//
// A field's text form is the same everywhere ("512M", "2M:64",
// "e1000,virtio_net"), and so is its error: "FIELD: MESSAGE", with the
// message made from one template (Message*), so the rule, Gazelle and invm
// say the same words for the same mistake.
package vmspec

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every error of this package.
var ErrInvalid = errors.New("invalid VM spec")

// FieldError is a bad value of one field.
type FieldError struct {
	// Field is the field's name (Field.Name, e.g. "memory").
	Field string
	// Message says what is wrong and what to write instead.
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, template string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(template, args...)}
}

// Limits. Starlark gets them through rules/private/spec.bzl.
const (
	// MinMemoryMiB and MaxMemoryMiB bound guest RAM.
	MinMemoryMiB = 64
	MaxMemoryMiB = 1 << 20
	// MinCPUs and MaxCPUs bound the guest's vCPUs.
	MinCPUs = 1
	MaxCPUs = 64
	// MaxNICs is the most NICs (besides the management NIC) a guest gets.
	MaxNICs = 8
	// HugepageMarginMiB is the guest RAM that guest hugepages must leave to
	// the kernel, init and test.
	HugepageMarginMiB = 64
	// MinTCGTimeoutScale and MaxTCGTimeoutScale bound tcg_timeout_scale.
	MinTCGTimeoutScale = 1
	MaxTCGTimeoutScale = 1000
)

// Allowed values of the enumerated fields, in documentation order.
var (
	Arches        = []string{"x86_64", "aarch64"}
	Backends      = []string{"qemu"}
	Accels        = []string{"auto", "kvm", "tcg"}
	NICModels     = []string{"virtio_net", "e1000", "e1000e"}
	HostPageSizes = []string{"4k", "2M", "1G"}
	HugepageSizes = []string{"2M", "1G"}
	Transports    = []string{"auto", "vhost-vsock", "vhost-user-vsock", "virtio-serial"}
	Starts        = []string{"cold", "snapshot", "auto"}
)

// Message templates: each error of this package is "FIELD: " and one of
// them, formatted with %s (text, or a number too large for %d) and %d only,
// so Starlark's % operator renders them the same.
const (
	MessageSize          = `"%s" is not a size; write a whole number with K, M or G, e.g. 512M`
	MessageWholeMiB      = `"%s" is not a whole number of MiB`
	MessageMemoryRange   = `"%s" is out of range; give %dM to %dG`
	MessageOneOf         = `"%s" is not allowed; use one of %s`
	MessageIntRange      = `"%s" is not a whole number from %d to %d`
	MessageNICCount      = `%d NICs; at most %d`
	MessageHugepages     = `"%s": write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. 2M:64`
	MessageHugepagesFit  = `"%s" needs %s MiB, leaving less than %d MiB of memory "%s"; raise memory or lower the count`
	MessageHostPageAlign = `"%s" is not a multiple of host_pages "%s"`
	MessageBool          = `"%s" is not a boolean; use true or false`
	MessageVFIONIC       = `"%s" is not a NIC index from 0 to %d; write indexes into nics (0 for the first NIC), or all alone`
	MessageVFIONICRange  = `NIC %d does not exist: nics has %d NICs`
	MessageVFIONICTwice  = `NIC %d twice`
	MessageVFIONICsNone  = `"all" needs NICs; nics is empty`
)

// Hugepages is a guest hugepage reservation: Count pages of Size ("2M" or
// "1G"). The zero value is none.
type Hugepages struct {
	Size  string `json:"size"`
	Count int    `json:"count"`
}

// MiB is the size of one page in MiB (0 for an unknown size).
func (h Hugepages) MiB() int { return pageMiB[h.Size] }

// String is the SIZE:COUNT form ("" for none).
func (h Hugepages) String() string {
	if h == (Hugepages{}) {
		return ""
	}
	return fmt.Sprintf("%s:%d", h.Size, h.Count)
}

// pageMiB is the size in MiB of each page size ("4k": RAM granularity).
var pageMiB = map[string]int{"4k": 1, "2M": 2, "1G": 1024}

// Shape is the VM a test asks for. The zero value of a field means its
// default (see Defaults), so front doors set only what the user wrote.
type Shape struct {
	// Arch is the guest arch (Arches); "" takes it from the test binary.
	Arch string
	// Backend is the VMM (Backends).
	Backend string
	// Accel is the accelerator policy (Accels).
	Accel string
	// CPUs is the number of vCPUs.
	CPUs int
	// MemoryMiB is the guest RAM.
	MemoryMiB int
	// HostPages is the host page backing of guest RAM (HostPageSizes).
	HostPages string
	// GuestHugepages are reserved in the guest at boot.
	GuestHugepages Hugepages
	// NICs are NIC models (NICModels), one NIC each, in PCI order.
	NICs []string
	// MgmtNIC is the management NIC's model; "" for none.
	MgmtNIC string
	// IOMMU gives the guest a virtual IOMMU.
	IOMMU bool
	// VFIONICs are the NICs the guest init binds to vfio-pci before the
	// test starts.
	VFIONICs VFIONICs
	// Cmdline is extra kernel command-line parameters.
	Cmdline []string
	// Transport is the host<->guest transport (Transports).
	Transport string
	// TCGTimeoutScale is how much slower the test may be under TCG.
	TCGTimeoutScale int
	// Start is how the guest starts (Starts): a cold boot, or restored
	// from a template booted once (snapshot start).
	Start string
}

// VFIONICs selects the NICs (of Shape.NICs, never the management NIC) the
// guest init binds to vfio-pci before the test: All of them, or those at
// Indexes. The zero value is none. Its text form is "all" or the indexes
// comma-separated ("0,1").
type VFIONICs struct {
	All     bool
	Indexes []int
}

// String is the text form: "all", "0,1", or "" for none.
func (v VFIONICs) String() string {
	if v.All {
		return "all"
	}
	items := make([]string, len(v.Indexes))
	for i, n := range v.Indexes {
		items[i] = fmt.Sprint(n)
	}
	return strings.Join(items, ",")
}

// Resolve returns the NIC indexes v selects in a VM with n NICs, in the
// order given (All: 0 to n-1).
func (v VFIONICs) Resolve(n int) []int {
	if !v.All {
		return v.Indexes
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// check checks the indexes against a VM with n NICs.
func (v VFIONICs) check(n int) error {
	for _, i := range v.Indexes {
		if i >= n {
			return fieldErr("vfio_nics", MessageVFIONICRange, i, n)
		}
	}
	if v.All && n == 0 {
		return fieldErr("vfio_nics", MessageVFIONICsNone)
	}
	return nil
}

// Defaults returns s with every unset field at its default.
func (s Shape) Defaults() Shape {
	if s.Backend == "" {
		s.Backend = "qemu"
	}
	if s.Accel == "" {
		s.Accel = "auto"
	}
	if s.CPUs == 0 {
		s.CPUs = 1
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = 256
	}
	if s.HostPages == "" {
		s.HostPages = "4k"
	}
	if s.Transport == "" {
		s.Transport = "auto"
	}
	if s.TCGTimeoutScale == 0 {
		s.TCGTimeoutScale = 3
	}
	if s.Start == "" {
		s.Start = "auto"
	}
	return s
}

// Validate checks every field and the cross-field rules of s (after
// Defaults): ranges, allowed values, the NIC count, host-page alignment and
// that the guest hugepages leave HugepageMarginMiB of RAM. All problems are
// joined; each is a *FieldError.
func (s Shape) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.Arch != "" {
		add(oneOf("arch", s.Arch, Arches))
	}
	add(oneOf("backend", s.Backend, Backends))
	add(oneOf("accel", s.Accel, Accels))
	add(oneOf("host_pages", s.HostPages, HostPageSizes))
	add(oneOf("transport", s.Transport, Transports))
	add(oneOf("start", s.Start, Starts))
	add(intIn("cpus", s.CPUs, MinCPUs, MaxCPUs))
	add(intIn("tcg_timeout_scale", s.TCGTimeoutScale, MinTCGTimeoutScale, MaxTCGTimeoutScale))
	if s.MemoryMiB < MinMemoryMiB || s.MemoryMiB > MaxMemoryMiB {
		add(fieldErr("memory", MessageMemoryRange, FormatMiB(s.MemoryMiB), MinMemoryMiB, MaxMemoryMiB>>10))
	}
	add(checkNICs(s.NICs))
	if s.MgmtNIC != "" {
		add(oneOf("mgmt_nic", s.MgmtNIC, NICModels))
	}
	if p := pageMiB[s.HostPages]; p > 1 && s.MemoryMiB%p != 0 {
		add(fieldErr("memory", MessageHostPageAlign, FormatMiB(s.MemoryMiB), s.HostPages))
	}
	add(s.GuestHugepages.fits(s.MemoryMiB))
	add(s.VFIONICs.check(len(s.NICs)))
	return errors.Join(errs...)
}

// checkNICs checks the models and the count.
func checkNICs(nics []string) error {
	if len(nics) > MaxNICs {
		return fieldErr("nics", MessageNICCount, len(nics), MaxNICs)
	}
	for _, n := range nics {
		if err := oneOf("nics", n, NICModels); err != nil {
			return err
		}
	}
	return nil
}

// fits checks h and that it leaves HugepageMarginMiB of memoryMiB, with
// arithmetic that cannot overflow.
func (h Hugepages) fits(memoryMiB int) error {
	if h == (Hugepages{}) {
		return nil
	}
	if h.MiB() == 0 || h.MiB() == 1 || h.Count < 1 {
		return fieldErr("guest_hugepages", MessageHugepages, h.String())
	}
	need := new(big.Int).Mul(big.NewInt(int64(h.MiB())), big.NewInt(int64(h.Count)))
	room := big.NewInt(int64(memoryMiB - HugepageMarginMiB))
	if need.Cmp(room) > 0 {
		return fieldErr("guest_hugepages", MessageHugepagesFit, h.String(), need.String(), HugepageMarginMiB, FormatMiB(memoryMiB))
	}
	return nil
}

func oneOf(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return fieldErr(field, MessageOneOf, v, strings.Join(allowed, ", "))
	}
	return nil
}

func intIn(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fieldErr(field, MessageIntRange, fmt.Sprint(v), lo, hi)
	}
	return nil
}
