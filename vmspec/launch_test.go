package vmspec

import (
	"strings"
	"testing"
)

const validLaunch = `{
  "arch": "x86_64",
  "shape": {"memory": "512M", "cpus": "2", "nics": ["e1000", "virtio_net"], "guest_hugepages": "2M:64",
            "cmdline": ["quiet", "x=\"a b\""], "iommu": "false", "transport": "auto"},
  "kernel": "_main/k/vmlinux",
  "layers": ["_main/base.cpio", "_main/pkg/x.layer.cpio"],
  "env": {"A": "1"},
  "args": ["-x"],
  "test": "/invm/runfiles/_main/pkg/x_test",
  "workdir": "/invm/runfiles/_main/pkg"
}`

func TestParseLaunch(t *testing.T) {
	l, s, err := Parse([]byte(validLaunch))
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryMiB != 512 || s.CPUs != 2 || len(s.NICs) != 2 || s.GuestHugepages != (Hugepages{"2M", 64}) ||
		s.Accel != "auto" || s.HostPages != "4k" || s.TCGTimeoutScale != 3 || len(s.Cmdline) != 2 || s.Cmdline[1] != `x="a b"` {
		t.Errorf("shape %+v", s)
	}
	if l.Arch != "x86_64" || s.Arch != "x86_64" || l.Test != "/invm/runfiles/_main/pkg/x_test" {
		t.Errorf("launch %+v", l)
	}
}

func TestParseLaunchErrors(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{`"arch": "x86_64"`, `"arch": "riscv64"`, `arch: "riscv64" is not allowed; use one of x86_64, aarch64`},
		{`"memory": "512M"`, `"memory": "32M"`, `memory: "32M" is out of range`},
		{`"memory": "512M"`, `"memory": 512`, `memory: want its text form as a string, e.g. "512M"`},
		{`"nics": ["e1000", "virtio_net"]`, `"nics": "e1000"`, `nics: want a list of strings`},
		{`"cpus": "2"`, `"colour": "red"`, `shape: unknown field "colour"`},
		{`"test": "/invm`, `"test": "invm`, `test: "invm/runfiles/_main/pkg/x_test" must be an absolute path`},
		{`"layers": ["_main/base.cpio", "_main/pkg/x.layer.cpio"]`, `"layers": []`, `layers: is empty`},
		{`"args": ["-x"]`, `"args": ["-x"], "extra": 1`, `unknown field "extra"`},
	} {
		in := strings.Replace(validLaunch, tc.old, tc.new, 1)
		if in == validLaunch {
			t.Fatalf("%q not in the launch file", tc.old)
		}
		if _, _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want %q", tc.old, tc.new, err, tc.want)
		}
	}
}
