package vmspec

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is a field's type at the Bazel rule (its attribute type).
type Kind string

// Field kinds.
const (
	KindString     Kind = "string"
	KindInt        Kind = "int"
	KindBool       Kind = "bool"
	KindStringList Kind = "string_list"
)

// Field is one settable field of a Shape: its name at every front door,
// its type, default, allowed values and doc, and how its text form is read
// and written.
type Field struct {
	// Name is the go_vm_test attribute and the //invm: directive
	// ("guest_hugepages").
	Name string
	// Aliases are other accepted spellings (directives, flags).
	Aliases []string
	// Kind is the attribute's type.
	Kind Kind
	// Default is the text form of the default value ("" for none).
	Default string
	// Values are the allowed values of an enumerated field (nil if not).
	Values []string
	// Example is a valid text form, for messages.
	Example string
	// Doc is the attribute's and flag's documentation.
	Doc string

	set     func(s *Shape, v string) error
	setList func(s *Shape, items []string) error // KindStringList only
	get     func(s Shape) string
}

// Flag is the field's invm flag name ("guest-hugepages").
func (f Field) Flag() string { return strings.ReplaceAll(f.Name, "_", "-") }

// Env is the field's $INVM_* variable ("INVM_GUEST_HUGEPAGES").
func (f Field) Env() string { return EnvName(f.Flag()) }

// EnvName is the $INVM_* variable of an invm flag.
func EnvName(flag string) string {
	return "INVM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Fields are the settable fields, sorted by name. (The guest arch is not
// among them: Bazel takes it from the target platform, invm from the test
// binary or its -arch flag.)
var Fields = []Field{
	{
		Name: "accel", Kind: KindString, Default: "auto", Values: Accels, Example: "tcg",
		Doc: `Accelerator: "auto" (KVM only after a canary boot proves it works, else TCG), "kvm" or "tcg".`,
		set: enum("accel", Accels, func(s *Shape) *string { return &s.Accel }),
		get: func(s Shape) string { return s.Accel },
	},
	{
		Name: "backend", Kind: KindString, Default: "qemu", Values: Backends, Example: "qemu",
		Doc: `VMM: "qemu" (cloud-hypervisor is planned).`,
		set: enum("backend", Backends, func(s *Shape) *string { return &s.Backend }),
		get: func(s Shape) string { return s.Backend },
	},
	{
		Name: "cmdline", Aliases: []string{"append"}, Kind: KindStringList, Example: "loglevel=3",
		Doc:     "Extra kernel command-line parameters (space-separated as a directive or flag).",
		set:     func(s *Shape, v string) error { s.Cmdline = strings.Fields(v); return nil },
		setList: func(s *Shape, items []string) error { s.Cmdline = items; return nil },
		get:     func(s Shape) string { return strings.Join(s.Cmdline, " ") },
	},
	{
		Name: "cpus", Kind: KindInt, Default: "1", Example: "2",
		Doc: fmt.Sprintf("Guest vCPUs (%d to %d).", MinCPUs, MaxCPUs),
		set: integer("cpus", MinCPUs, MaxCPUs, func(s *Shape) *int { return &s.CPUs }),
		get: func(s Shape) string { return itoa(s.CPUs) },
	},
	{
		Name: "guest_hugepages", Aliases: []string{"hugepages"}, Kind: KindString, Example: "2M:64",
		Doc: fmt.Sprintf(`Guest hugepages as SIZE:COUNT, SIZE 2M or 1G, e.g. "2M:64", reserved at boot and mounted at /dev/hugepages-SIZE; empty for none. Must leave %d MiB of memory.`, HugepageMarginMiB),
		set: func(s *Shape, v string) (err error) { s.GuestHugepages, err = ParseHugepages(v); return err },
		get: func(s Shape) string { return s.GuestHugepages.String() },
	},
	{
		Name: "host_pages", Kind: KindString, Default: "4k", Values: HostPageSizes, Example: "2M",
		Doc: `Host page backing of guest RAM: "4k" (memfd), "2M" or "1G" (host hugetlbfs); memory must be a multiple of it.`,
		set: enum("host_pages", HostPageSizes, func(s *Shape) *string { return &s.HostPages }),
		get: func(s Shape) string { return s.HostPages },
	},
	{
		Name: "iommu", Kind: KindBool, Default: "false", Example: "true",
		Doc: "Give the guest a virtual IOMMU (intel-iommu on x86_64, SMMUv3 on aarch64); without one, NICs use VFIO's no-IOMMU mode.",
		set: func(s *Shape, v string) (err error) { s.IOMMU, err = parseBool("iommu", v); return err },
		get: func(s Shape) string { return strconv.FormatBool(s.IOMMU) },
	},
	{
		Name: "memory", Kind: KindString, Default: "256M", Example: "512M",
		Doc: fmt.Sprintf(`Guest RAM, a whole number of MiB written with K, M or G, e.g. "256M" or "1G" (%dM to %dG).`, MinMemoryMiB, MaxMemoryMiB>>10),
		set: func(s *Shape, v string) (err error) { s.MemoryMiB, err = ParseMemory(v); return err },
		get: func(s Shape) string { return FormatMiB(s.MemoryMiB) },
	},
	{
		Name: "mgmt_nic", Kind: KindString, Values: NICModels, Example: "virtio_net",
		Doc: `A management NIC next to the nics: its model ("virtio_net", "e1000", "e1000e"), empty for none. ` +
			`It is at PCI address 0000:00:0f.0, alone on its own QEMU hub (no host network, ever), with a deterministic ` +
			`MAC ending in ff; the guest finds it with invm.MgmtNIC() ($INVM_MGMT_NIC). Makes an x86_64 guest a q35 machine.`,
		set: func(s *Shape, v string) error {
			if v != "" {
				if err := oneOf("mgmt_nic", v, NICModels); err != nil {
					return err
				}
			}
			s.MgmtNIC = v
			return nil
		},
		get: func(s Shape) string { return s.MgmtNIC },
	},
	{
		Name: "nics", Kind: KindStringList, Values: NICModels, Example: "e1000,virtio_net",
		Doc:     fmt.Sprintf(`NIC models, one NIC each, in PCI order from 0000:00:10.0 (at most %d; comma-separated as a directive or flag): "virtio_net", "e1000", "e1000e".`, MaxNICs),
		set:     func(s *Shape, v string) error { return setNICs(s, splitList(v)) },
		setList: setNICs,
		get:     func(s Shape) string { return strings.Join(s.NICs, ",") },
	},
	{
		Name: "start", Kind: KindString, Default: "auto", Values: Starts, Example: "cold",
		Doc: `How the guest starts: "cold" boots it; "snapshot" restores a template of the VM (kernel, base layer, ` +
			`shape, QEMU build) booted once to where init waits for its test and saved, then hands it the test in a ` +
			`read-only 9p share (the kernel needs CONFIG_9P_FS and CONFIG_NET_9P_VIRTIO, as the default kernels ` +
			`have); "auto" (the default) does that where a template fits and cold-boots otherwise. The restored ` +
			`guest talks over kernel vhost-vsock where /dev/vhost-vsock is usable (it listens, the host dials the ` +
			`new CID it reserved), else over virtio-serial; a KVM template is restored on its host CPU model only. ` +
			`go_vm_test: every test of the default kernel and VM shape restores its arch's one shared template; ` +
			`under "snapshot" another shape gets a template of its own, under "auto" it cold-boots. invm: templates ` +
			`are made on first use in its cache directory. A spec a template cannot carry (NICs, a management NIC, ` +
			`an IOMMU, vfio_nics, 2M/1G host pages, the vhost-user-vsock transport, a debug command) cold-boots under "auto" and ` +
			`is an error under "snapshot"; a template made by another QEMU or for another shape is not used, and a ` +
			`failed restore falls back to a cold boot. The test log says which start ran and why.`,
		set: enum("start", Starts, func(s *Shape) *string { return &s.Start }),
		get: func(s Shape) string { return s.Start },
	},
	{
		Name: "tcg_timeout_scale", Kind: KindInt, Default: "3", Example: "3",
		Doc: "How much slower the test may be under TCG than under KVM. go_vm_test raises Bazel's timeout category so it " +
			"holds the nominal timeout (from `timeout` or `size`) times this factor; when the runner gets KVM, the guest " +
			"test's own -test.timeout is the nominal one again.",
		set: integer("tcg_timeout_scale", MinTCGTimeoutScale, MaxTCGTimeoutScale, func(s *Shape) *int { return &s.TCGTimeoutScale }),
		get: func(s Shape) string { return itoa(s.TCGTimeoutScale) },
	},
	{
		Name: "transport", Kind: KindString, Default: "auto", Values: Transports, Example: "virtio-serial",
		Doc: `Host<->guest transport of the test's streams: "auto" (kernel vhost-vsock when /dev/vhost-vsock is usable, ` +
			`else the vhost-device-vsock daemon, else virtio-serial), "vhost-vsock", "vhost-user-vsock" or "virtio-serial" ` +
			`(one connection for every stream; for guest kernels without vsock). The test log says which one and why.`,
		set: enum("transport", Transports, func(s *Shape) *string { return &s.Transport }),
		get: func(s Shape) string { return s.Transport },
	},
	{
		Name: "vfio_nics", Kind: KindStringList, Example: "all",
		Doc: `NICs the guest init binds to vfio-pci before the test starts (for DPDK): their indexes in nics ("0" for ` +
			`the first, at 0000:00:10.0), or "all" (comma-separated as a directive or flag); never the management NIC. ` +
			`Through an IOMMU group with iommu = True, in VFIO's no-IOMMU mode otherwise. A NIC that does not bind ` +
			`fails the test, saying why; the test finds the bound NICs' addresses in $INVM_VFIO_NICS (invm.VFIONICs).`,
		set:     func(s *Shape, v string) error { return setVFIONICs(s, splitList(v)) },
		setList: setVFIONICs,
		get:     func(s Shape) string { return s.VFIONICs.String() },
	},
}

// Lookup finds a field by its name, an alias or its flag name.
func Lookup(name string) (Field, bool) {
	for _, f := range Fields {
		if f.Name == name || f.Flag() == name {
			return f, true
		}
		for _, a := range f.Aliases {
			if a == name || strings.ReplaceAll(a, "_", "-") == name {
				return f, true
			}
		}
	}
	return Field{}, false
}

// FieldNames lists the fields' names, for messages.
func FieldNames() string {
	names := make([]string, len(Fields))
	for i, f := range Fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// Set parses the text form v of the field called name (see Lookup) into s.
// Errors are *FieldError naming the field.
func (s *Shape) Set(name, v string) error {
	f, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("%w: unknown field %q; known: %s", ErrInvalid, name, FieldNames())
	}
	return f.set(s, strings.TrimSpace(v))
}

// SetList sets a list field (KindStringList) from its items, as the
// rule's attribute holds them.
func (s *Shape) SetList(name string, items []string) error {
	f, ok := Lookup(name)
	if !ok || f.setList == nil {
		return fmt.Errorf("%w: %q is not a list field", ErrInvalid, name)
	}
	return f.setList(s, items)
}

func setVFIONICs(s *Shape, items []string) (err error) {
	s.VFIONICs, err = ParseVFIONICs(items)
	return err
}

func setNICs(s *Shape, nics []string) error {
	if err := checkNICs(nics); err != nil {
		return err
	}
	s.NICs = nics
	return nil
}

// Get returns the text form of the field called name (after Defaults, the
// resolved value).
func (s Shape) Get(name string) string {
	f, ok := Lookup(name)
	if !ok {
		return ""
	}
	return f.get(s)
}

// String prints every field as name=value, in Fields order: the resolved
// spec, as `invm -verbose` shows it.
func (s Shape) String() string {
	var b strings.Builder
	if s.Arch != "" {
		b.WriteString("arch=" + s.Arch)
	}
	for _, f := range Fields {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", f.Name, strconv.Quote(f.get(s)))
	}
	return b.String()
}

func enum(field string, allowed []string, p func(*Shape) *string) func(*Shape, string) error {
	return func(s *Shape, v string) error {
		if err := oneOf(field, v, allowed); err != nil {
			return err
		}
		*p(s) = v
		return nil
	}
}

func integer(field string, lo, hi int, p func(*Shape) *int) func(*Shape, string) error {
	return func(s *Shape, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fieldErr(field, MessageIntRange, v, lo, hi)
		}
		*p(s) = n
		return nil
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
