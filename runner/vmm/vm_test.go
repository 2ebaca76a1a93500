package vmm

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// TestQEMUSpec: every field of a VM reaches QEMU's model, and each channel
// transport becomes its own device field.
func TestQEMUSpec(t *testing.T) {
	vm := VM{
		Arch: arch.X86_64, Machine: "q35", Accel: qemu.AccelKVM, CPUs: 2, MemoryMiB: 512,
		HostPages: qemu.HostPages2M, HugetlbfsDir: "/dev/hugepages", GuestHugepages: vmspec.Hugepages{Size: "2M", Count: 8},
		NICs: []NIC{{"e1000", "02:00:00:00:00:00"}}, MgmtNIC: NIC{"virtio_net", "02:00:00:00:00:ff"}, IOMMU: true,
		Kernel: "/k", Initrd: "/i", Cmdline: []string{"loglevel=7"}, Quiet: true, TSCkHz: 1000, Monitor: "/s/qmp",
		Channel: Channel{Transport: vsock.VhostUserVsock, Socket: "/s/vhost"},
	}
	want := qemu.Spec{
		Arch: arch.X86_64, Machine: "q35", Accel: qemu.AccelKVM, CPUs: 2, MemoryMiB: 512,
		HostPages: qemu.HostPages2M, HugetlbfsDir: "/dev/hugepages", GuestHugepages: vmspec.Hugepages{Size: "2M", Count: 8},
		NICs: []qemu.NIC{{Model: "e1000", MAC: "02:00:00:00:00:00"}}, MgmtNIC: qemu.NIC{Model: "virtio_net", MAC: "02:00:00:00:00:ff"}, IOMMU: true,
		Kernel: "/k", Initrd: "/i", ExtraCmdline: []string{"loglevel=7"}, Quiet: true, TSCkHz: 1000, QMPSocket: "/s/qmp",
		VhostUserSocket: "/s/vhost",
	}
	if got := QEMUSpec(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("QEMUSpec:\n got %+v\nwant %+v", got, want)
	}
	if f := vm.Files(); f != nil {
		t.Errorf("vhost-user VM inherits %v", f)
	}

	dev, err := os.Create(filepath.Join(t.TempDir(), "vhost-vsock"))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	vm.Channel = Channel{Transport: vsock.VhostVsock, CID: 42, Device: dev}
	if s := QEMUSpec(vm); s.VhostVsockCID != 42 || s.VhostVsockFD != 3 || s.VhostUserSocket != "" || s.SerialSocket != "" {
		t.Errorf("vhost-vsock: %+v", s)
	}
	if f := vm.Files(); len(f) != 1 || f[0] != dev {
		t.Errorf("vhost-vsock VM inherits %v, want the device as fd 3", f)
	}

	vm.Channel = Channel{Transport: vsock.VirtioSerial, Socket: "/s/serial"}
	if s := QEMUSpec(vm); s.SerialSocket != "/s/serial" || s.VhostVsockCID != 0 || s.VhostUserSocket != "" {
		t.Errorf("virtio-serial: %+v", s)
	}
}

func TestQEMUMachine(t *testing.T) {
	for _, tc := range []struct {
		vm   VM
		want string
	}{
		{VM{Arch: arch.X86_64}, "microvm,acpi=off"},
		{VM{Arch: arch.X86_64, NICs: []NIC{{"e1000", "02:00:00:00:00:00"}}}, "q35"},
		{VM{Arch: arch.X86_64, IOMMU: true}, "q35"},
		{VM{Arch: arch.AArch64}, "virt"},
	} {
		if got, err := (QEMU{}).Machine(tc.vm); err != nil || got != tc.want {
			t.Errorf("Machine(%+v) = %q, %v; want %q", tc.vm, got, err, tc.want)
		}
	}
	if _, err := (QEMU{}).Machine(VM{Arch: arch.X86_64, Machine: "microvm", IOMMU: true}); err == nil {
		t.Error("an IOMMU on microvm: no error")
	}
}
