package vmspec

import (
	"errors"
	"strings"
	"testing"
)

func valid() Spec {
	return Spec{
		Arch: "x86_64", Backend: "qemu", Accel: "auto", Kernel: "_main/k/vmlinux",
		Layers: []string{"_main/base.cpio"}, MemoryMiB: 256, CPUs: 1, HostPages: "4k",
		Test: "/invm/runfiles/_main/pkg/x_test", WorkDir: "/invm/runfiles/_main/pkg", TimeoutScaleTCG: 1,
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Spec)
		want   string // substring of the error; "" = valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"arch", func(s *Spec) { s.Arch = "riscv64" }, `arch: "riscv64" is not allowed; use one of x86_64, aarch64`},
		{"nic", func(s *Spec) { s.NICs = []string{"e1000", "rtl8139"} }, `nics[1]: "rtl8139" is not allowed`},
		{"mgmt nic", func(s *Spec) { s.MgmtNIC = "rtl8139" }, `mgmt_nic: "rtl8139" is not allowed; use one of virtio_net, e1000, e1000e`},
		{"mgmt nic ok", func(s *Spec) { s.MgmtNIC = "e1000e" }, ""},
		{"hugepages too big", func(s *Spec) { s.GuestHugepages = &Hugepages{Size: "2M", Count: 128} }, "does not fit in memory_mib 256"},
		{"hugepages size", func(s *Spec) { s.GuestHugepages = &Hugepages{Size: "4M", Count: 1} }, "guest_hugepages.size"},
		{"hugepages ok", func(s *Spec) { s.GuestHugepages = &Hugepages{Size: "2M", Count: 64} }, ""},
		{"host pages align", func(s *Spec) { s.HostPages = "1G" }, "not a multiple of host_pages 1G"},
		{"cpus", func(s *Spec) { s.CPUs = 0 }, "cpus: 0 is out of range"},
		{"memory", func(s *Spec) { s.MemoryMiB = 16 }, "memory_mib: 16 is too small"},
		{"test path", func(s *Spec) { s.Test = "x_test" }, "test: \"x_test\" must be an absolute path"},
		{"no layers", func(s *Spec) { s.Layers = nil }, "layers: is empty"},
		{"scale", func(s *Spec) { s.TimeoutScaleTCG = 0 }, "timeout_scale_tcg"},
		{"transport", func(s *Spec) { s.Transport = "virtio-serial" }, ""},
		{"bad transport", func(s *Spec) { s.Transport = "vsock" }, `transport: "vsock" is not allowed; use one of auto, vhost-vsock, vhost-user-vsock, virtio-serial`},
	} {
		s := valid()
		tc.mutate(&s)
		err := s.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrInvalid containing %q", tc.name, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	if _, err := Parse([]byte(`{"arch":"x86_64","bogus":1}`)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: got %v", err)
	}
	if _, err := Parse([]byte(`{`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("truncated JSON: got %v", err)
	}
	b := []byte(`{"arch":"aarch64","backend":"qemu","accel":"tcg","kernel":"k","layers":["b"],"memory_mib":512,
		"cpus":2,"nics":["e1000"],"host_pages":"4k","guest_hugepages":null,"iommu":false,"cmdline":[],"env":{"A":"1"},
		"args":["-test.v"],"test":"/t","workdir":"/","timeout_scale_tcg":3}`)
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Arch != "aarch64" || s.CPUs != 2 || s.Env["A"] != "1" || s.TimeoutScaleTCG != 3 {
		t.Errorf("decoded %+v", s)
	}
}
