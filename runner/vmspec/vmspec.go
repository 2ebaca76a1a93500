// Package vmspec is the VM spec a `go_vm_test` target hands to its launcher:
// what guest to boot (arch, kernel, initramfs layers, memory, cpus, NICs, management NIC,
// hugepages, ...) and what to run in it. The Bazel rule writes it as JSON
// into the test's runfiles; paths in it are runfiles paths ("_main/pkg/x")
// except Test and WorkDir, which are paths inside the guest.
//
// The rule validates the attributes at analysis time; Validate checks the
// decoded spec again so a hand-written or stale spec fails with the field
// name and the allowed values, never with a confusing boot failure.
package vmspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid VM spec")

// Allowed values of the enumerated fields.
var (
	Arches    = []string{"x86_64", "aarch64"}
	NICModels = []string{"virtio_net", "e1000", "e1000e"}
	HostPages = []string{"4k", "2M", "1G"}
	Accels    = []string{"auto", "kvm", "tcg"}
	Backends  = []string{"qemu"}
	HugeSizes = []string{"2M", "1G"}
	// Transports are the host<->guest transports (see runner/vsock).
	Transports = []string{"auto", "vhost-vsock", "vhost-user-vsock", "virtio-serial"}
)

// Hugepages is a guest hugepage reservation.
type Hugepages struct {
	Size  string `json:"size"`  // "2M" or "1G"
	Count int    `json:"count"` // > 0
}

// Spec describes one VM test.
type Spec struct {
	Arch           string            `json:"arch"`
	Backend        string            `json:"backend"`
	Accel          string            `json:"accel"`
	Kernel         string            `json:"kernel"`
	KernelManifest string            `json:"kernel_manifest,omitempty"`
	Layers         []string          `json:"layers"`
	MemoryMiB      int               `json:"memory_mib"`
	CPUs           int               `json:"cpus"`
	NICs           []string          `json:"nics"`
	MgmtNIC        string            `json:"mgmt_nic,omitempty"` // a NICModels value; "" for none
	HostPages      string            `json:"host_pages"`
	GuestHugepages *Hugepages        `json:"guest_hugepages"`
	IOMMU          bool              `json:"iommu"`
	Cmdline        []string          `json:"cmdline"`
	Env            map[string]string `json:"env"`
	Args           []string          `json:"args"`
	Test           string            `json:"test"`
	WorkDir        string            `json:"workdir"`
	// TimeoutScaleTCG multiplies the test timeout under TCG (>= 1).
	TimeoutScaleTCG int `json:"timeout_scale_tcg"`
	// Transport is the host<->guest transport, one of Transports; "" means
	// "auto".
	Transport string `json:"transport,omitempty"`
}

func bad(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

func oneOf(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return bad(field, "%q is not allowed; use one of %s", v, strings.Join(allowed, ", "))
	}
	return nil
}

// mib returns the size of "2M" / "1G" in MiB.
func mib(size string) int {
	switch size {
	case "2M":
		return 2
	case "1G":
		return 1024
	}
	return 0
}

// Validate checks every field; the error names the field and what is allowed.
func (s Spec) Validate() error {
	errs := []error{
		oneOf("arch", s.Arch, Arches),
		oneOf("backend", s.Backend, Backends),
		oneOf("accel", s.Accel, Accels),
		oneOf("host_pages", s.HostPages, HostPages),
	}
	if s.Kernel == "" {
		errs = append(errs, bad("kernel", "is empty; name the kernel image"))
	}
	if len(s.Layers) == 0 {
		errs = append(errs, bad("layers", "is empty; the base layer (guest init) is required"))
	}
	if s.MemoryMiB < 64 {
		errs = append(errs, bad("memory_mib", "%d is too small; give at least 64", s.MemoryMiB))
	}
	if s.CPUs < 1 || s.CPUs > 64 {
		errs = append(errs, bad("cpus", "%d is out of range; use 1 to 64", s.CPUs))
	}
	for i, n := range s.NICs {
		if err := oneOf(fmt.Sprintf("nics[%d]", i), n, NICModels); err != nil {
			errs = append(errs, err)
		}
	}
	if s.MgmtNIC != "" {
		if err := oneOf("mgmt_nic", s.MgmtNIC, NICModels); err != nil {
			errs = append(errs, err)
		}
	}
	if hp := mib(s.HostPages); hp > 0 && s.MemoryMiB%hp != 0 {
		errs = append(errs, bad("memory_mib", "%d is not a multiple of host_pages %s", s.MemoryMiB, s.HostPages))
	}
	if h := s.GuestHugepages; h != nil {
		if err := oneOf("guest_hugepages.size", h.Size, HugeSizes); err != nil {
			errs = append(errs, err)
		} else if h.Count < 1 {
			errs = append(errs, bad("guest_hugepages.count", "%d must be at least 1", h.Count))
		} else if mib(h.Size)*h.Count >= s.MemoryMiB {
			errs = append(errs, bad("guest_hugepages", "%d x %s does not fit in memory_mib %d", h.Count, h.Size, s.MemoryMiB))
		}
	}
	if !strings.HasPrefix(s.Test, "/") {
		errs = append(errs, bad("test", "%q must be an absolute path in the guest", s.Test))
	}
	if s.WorkDir != "" && !strings.HasPrefix(s.WorkDir, "/") {
		errs = append(errs, bad("workdir", "%q must be an absolute path in the guest", s.WorkDir))
	}
	if s.Transport != "" {
		if err := oneOf("transport", s.Transport, Transports); err != nil {
			errs = append(errs, err)
		}
	}
	if s.TimeoutScaleTCG < 1 {
		errs = append(errs, bad("timeout_scale_tcg", "%d must be at least 1", s.TimeoutScaleTCG))
	}
	return errors.Join(errs...)
}

// Parse decodes a spec strictly (unknown fields are errors) and validates it.
func Parse(b []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return s, s.Validate()
}

// Read reads and parses the spec file at path.
func Read(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	s, err := Parse(b)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
