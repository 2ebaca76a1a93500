package runner

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// TestValidateShape checks the VM shape fields: each error names the field
// and what is allowed.
func TestValidateShape(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "x.test")
	os.WriteFile(bin, []byte("x"), 0o755)
	o := func(mod func(*Options)) Options {
		o := Options{TestBinary: bin}
		mod(&o)
		return o.WithDefaults()
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string // "" = valid
	}{
		{"NICs", o(func(o *Options) { o.NICs = []string{"e1000", "virtio_net", "e1000e"}; o.Arch = arch.X86_64 }), ""},
		{"bad NIC", o(func(o *Options) { o.NICs = []string{"e1000", "rtl8139"} }), `nics: "rtl8139" is not allowed; use one of virtio_net, e1000, e1000e`},
		{"too many NICs", o(func(o *Options) { o.NICs = make([]string, 9) }), "nics: 9 NICs; at most 8"},
		{"NICs on microvm", o(func(o *Options) { o.NICs = []string{"e1000"}; o.Arch = arch.X86_64; o.Machine = "microvm" }), `machine: machine "microvm" has no PCI bus`},
		{"mgmt NIC", o(func(o *Options) { o.MgmtNIC = "e1000e"; o.Arch = arch.AArch64 }), ""},
		{"bad mgmt NIC", o(func(o *Options) { o.MgmtNIC = "rtl8139" }), `mgmt_nic: "rtl8139" is not allowed; use one of virtio_net, e1000, e1000e`},
		{"mgmt NIC on microvm", o(func(o *Options) { o.MgmtNIC = "virtio_net"; o.Arch = arch.X86_64; o.Machine = "microvm" }), `machine: machine "microvm" has no PCI bus`},
		{"bad backend", o(func(o *Options) { o.Backend = "firecracker" }), `backend: "firecracker" is not allowed; use one of qemu`},
		{"bad host pages", o(func(o *Options) { o.HostPages = "64k" }), `host_pages: "64k" is not allowed; use one of 4k, 2M, 1G`},
		{"unaligned 1G", o(func(o *Options) { o.HostPages = "1G"; o.MemoryMiB = 1536 }), `memory: "1536M" is not a multiple of host_pages "1G"`},
		{"aligned 2M", o(func(o *Options) { o.HostPages = "2M"; o.MemoryMiB = 256 }), ""},
		{"hugepages fit", o(func(o *Options) { o.GuestHugepages = vmspec.Hugepages{Size: "2M", Count: 64} }), ""},
		{"hugepages too big", o(func(o *Options) { o.GuestHugepages = vmspec.Hugepages{Size: "2M", Count: 128} }), `guest_hugepages: "2M:128" needs 256 MiB, leaving less than 64 MiB of memory "256M"`},
		{"hugepage size", o(func(o *Options) { o.GuestHugepages = vmspec.Hugepages{Size: "16M", Count: 1} }), `guest_hugepages: "16M:1": write SIZE:COUNT`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want ErrInvalidOptions containing %q", err, tc.want)
			}
		})
	}
}

func TestShapeEnv(t *testing.T) {
	o := Options{TestBinary: "/x/a.test", Arch: arch.X86_64, NICs: []string{"e1000", "virtio_net"},
		GuestHugepages: vmspec.Hugepages{Size: "2M", Count: 8}}
	got := strings.Join(shapeEnv(o.shape()), "|")
	want := EnvNICs + "=e1000 0000:00:10.0 " + qemu.NICMAC("a.test", 0) + ",virtio_net 0000:00:11.0 " + qemu.NICMAC("a.test", 1) +
		"|" + EnvGuestHugepages + "=2M:8"
	if got != want {
		t.Errorf("shapeEnv:\n got %s\nwant %s", got, want)
	}
	o.NICSeed = "//pkg:t"
	if s := o.shape(); s.NICs[0].MAC != qemu.NICMAC("//pkg:t", 0) {
		t.Errorf("NICSeed ignored: %s", s.NICs[0].MAC)
	}
	// The management NIC has its own variable; INVM_NICS never lists it.
	o.MgmtNIC = "virtio_net"
	got = strings.Join(shapeEnv(o.shape()), "|")
	want = EnvNICs + "=e1000 0000:00:10.0 " + qemu.NICMAC("//pkg:t", 0) + ",virtio_net 0000:00:11.0 " + qemu.NICMAC("//pkg:t", 1) +
		"|" + EnvMgmtNIC + "=virtio_net 0000:00:0f.0 " + qemu.MgmtNICMAC("//pkg:t") + "|" + EnvGuestHugepages + "=2M:8"
	if got != want {
		t.Errorf("shapeEnv with a mgmt NIC:\n got %s\nwant %s", got, want)
	}
	if env := shapeEnv((&Options{TestBinary: "x", MgmtNIC: "e1000"}).shape()); len(env) != 1 || env[0] != EnvMgmtNIC+"=e1000 0000:00:0f.0 "+qemu.MgmtNICMAC("x") {
		t.Errorf("mgmt NIC only: env %q", env)
	}
	if env := shapeEnv((&Options{TestBinary: "x"}).shape()); len(env) != 0 {
		t.Errorf("plain VM env %q", env)
	}
}

// TestChannelDevicesFollowMachine: a VM that becomes a PCI machine (NICs, an
// IOMMU) gets the PCI flavour of the channel's devices; microvm keeps the
// virtio-mmio one.
func TestChannelDevicesFollowMachine(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		bus  string
	}{
		{"microvm", func(*Options) {}, "virtio-serial-device,id=invmser"},
		{"NICs make q35", func(o *Options) { o.NICs = []string{"virtio_net"} }, "virtio-serial-pci,id=invmser"},
		{"IOMMU makes q35", func(o *Options) { o.IOMMU = true }, "virtio-serial-pci,id=invmser"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{TestBinary: "x.test", Arch: arch.X86_64, MemoryMiB: 256, CPUs: 1}
			tc.mod(&o)
			ch, err := openChannel(o, t.TempDir(), vsock.Choice{Transport: vsock.VirtioSerial}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.close()
			vm := o.shape()
			vm.Kernel, vm.Channel = "/k/vmlinux", ch.device
			args, err := vmm.QEMU{}.Args(vm)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(args, tc.bus) {
				t.Errorf("args %q lack -device %s", args, tc.bus)
			}
		})
	}
}

func TestVFIONICAddresses(t *testing.T) {
	for _, tc := range []struct {
		v    vmspec.VFIONICs
		want string
	}{
		{vmspec.VFIONICs{}, ""},
		{vmspec.VFIONICs{All: true}, "0000:00:10.0,0000:00:11.0,0000:00:12.0"},
		{vmspec.VFIONICs{Indexes: []int{2, 0}}, "0000:00:12.0,0000:00:10.0"},
	} {
		o := Options{NICs: []string{"e1000", "virtio_net", "e1000e"}, VFIONICs: tc.v}
		if got := strings.Join(o.vfioNICs(), ","); got != tc.want {
			t.Errorf("vfio_nics %s: %s, want %s", tc.v, got, tc.want)
		}
		var back Options
		back.SetShape(o.Shape())
		if back.VFIONICs.String() != tc.v.String() {
			t.Errorf("Shape/SetShape lost vfio_nics %s: %s", tc.v, back.VFIONICs)
		}
	}
}
