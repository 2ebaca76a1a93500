package qemu

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

func TestArgsGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{
			name: "x86_64 microvm TCG",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", Initrd: "/s/initrd.cpio", MemoryMiB: 256, CPUs: 1,
				VhostUserSocket: "/s/vhost.sock", TSCkHz: 2249998, Quiet: true},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-initrd /s/initrd.cpio -append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer tsc_early_khz=2249998 quiet " +
				"-chardev socket,id=vsock0,path=/s/vhost.sock -device vhost-user-vsock-device,chardev=vsock0",
		},
		{
			name: "x86_64 q35 KVM drops tsc_early_khz",
			spec: Spec{Arch: arch.X86_64, Machine: "q35", Accel: AccelKVM, Kernel: "/boot/vmlinuz", Initrd: "/i", MemoryMiB: 512, CPUs: 2,
				VhostUserSocket: "/s/v", TSCkHz: 1000},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem -accel kvm -cpu host " +
				"-m 512M -smp 2 -object memory-backend-memfd,id=mem,size=512M,share=on -serial stdio -kernel /boot/vmlinuz " +
				"-initrd /i -append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0,addr=0x3 -device pvpanic-pci,addr=0x4",
		},
		{
			name: "aarch64 virt TCG",
			spec: Spec{Arch: arch.AArch64, Kernel: "/k/Image", Initrd: "/i", MemoryMiB: 256, CPUs: 1, VhostUserSocket: "/s/v",
				TSCkHz: 1000, ExtraCmdline: []string{"loglevel=7"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/Image " +
				"-initrd /i -append console=ttyAMA0 panic=-1 oops=panic rdinit=/init loglevel=7 " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0,addr=0x3 -device pvpanic-pci,addr=0x4",
		},
		{
			name: "no vsock, no initrd",
			spec: Spec{Arch: arch.AArch64, Kernel: "/k/Image", MemoryMiB: 128, CPUs: 1, ExtraArgs: []string{"-S"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 128M -smp 1 -object memory-backend-memfd,id=mem,size=128M,share=on -serial stdio -kernel /k/Image " +
				"-append console=ttyAMA0 panic=-1 oops=panic rdinit=/init -device pvpanic-pci,addr=0x4 -S",
		},
		{
			name: "x86_64 NICs pick q35, pairs on hubs, noiommu",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", Initrd: "/i", MemoryMiB: 256, CPUs: 1, VhostUserSocket: "/s/v",
				QMPSocket: "/s/qmp", TSCkHz: 1000, Quiet: true,
				NICs: []NIC{{NICE1000, "02:00:00:00:00:00"}, {NICVirtioNet, "02:00:00:00:00:01"}, {NICE1000E, "02:00:00:00:00:02"}}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-initrd /i -append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer tsc_early_khz=1000 vfio.enable_unsafe_noiommu_mode=1 quiet " +
				"-qmp unix:/s/qmp,server=on,wait=off " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0,addr=0x3 -device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=net0,hubid=0 -device e1000,netdev=net0,mac=02:00:00:00:00:00,addr=0x10 " +
				"-netdev hubport,id=net1,hubid=0 -device virtio-net-pci,netdev=net1,mac=02:00:00:00:00:01,addr=0x11 " +
				"-netdev hubport,id=net2,hubid=1 -device e1000e,netdev=net2,mac=02:00:00:00:00:02,addr=0x12 " +
				"-netdev hubport,id=net2-drop,hubid=1", // the odd NIC's hub drops what it sends
		},
		{
			name: "x86_64 IOMMU: q35, split irqchip, intel-iommu first",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 2, VhostUserSocket: "/s/v", IOMMU: true,
				NICs: []NIC{{NICVirtioNet, "02:00:00:00:00:00"}}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem,kernel-irqchip=split -accel tcg -cpu max " +
				"-m 256M -smp 2 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer intel_iommu=on " +
				"-device intel-iommu,intremap=on " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0,addr=0x3 -device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=net0,hubid=0 -device virtio-net-pci,disable-legacy=on,iommu_platform=on,netdev=net0,mac=02:00:00:00:00:00,addr=0x10 " +
				"-netdev hubport,id=net0-drop,hubid=0",
		},
		{
			name: "x86_64 IOMMU alone also needs q35",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1, IOMMU: true},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem,kernel-irqchip=split -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer intel_iommu=on " +
				"-device intel-iommu,intremap=on -device pvpanic-pci,addr=0x4",
		},
		{
			name: "aarch64 SMMUv3 is a machine option, e1000e; virtio behind it takes iommu_platform",
			spec: Spec{Arch: arch.AArch64, Kernel: "/k/Image", MemoryMiB: 512, CPUs: 1, IOMMU: true,
				NICs:    []NIC{{NICE1000E, "02:00:00:00:00:00"}, {NICE1000E, "02:00:00:00:00:01"}},
				MgmtNIC: NIC{NICVirtioNet, "02:00:00:00:00:ff"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem,iommu=smmuv3,gic-version=3 -accel tcg -cpu max,pauth=off " +
				"-m 512M -smp 1 -object memory-backend-memfd,id=mem,size=512M,share=on -serial stdio -kernel /k/Image " +
				"-append console=ttyAMA0 panic=-1 oops=panic rdinit=/init -device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=mgmt,hubid=8 -device virtio-net-pci,disable-legacy=on,iommu_platform=on,netdev=mgmt,mac=02:00:00:00:00:ff,addr=0xf " +
				"-netdev hubport,id=mgmt-drop,hubid=8 " +
				"-netdev hubport,id=net0,hubid=0 -device e1000e,netdev=net0,mac=02:00:00:00:00:00,addr=0x10 " +
				"-netdev hubport,id=net1,hubid=0 -device e1000e,netdev=net1,mac=02:00:00:00:00:01,addr=0x11",
		},
		{
			name: "x86_64 mgmt NIC alone picks q35, own hub, slot 0f, no noiommu",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1, VhostUserSocket: "/s/v",
				MgmtNIC: NIC{NICVirtioNet, "02:00:00:00:00:ff"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0,addr=0x3 -device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=mgmt,hubid=8 -device virtio-net-pci,netdev=mgmt,mac=02:00:00:00:00:ff,addr=0xf " +
				"-netdev hubport,id=mgmt-drop,hubid=8",
		},
		{
			name: "x86_64 mgmt NIC next to a pair",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1,
				NICs:    []NIC{{NICE1000, "02:00:00:00:00:00"}, {NICE1000, "02:00:00:00:00:01"}},
				MgmtNIC: NIC{NICE1000E, "02:00:00:00:00:ff"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer vfio.enable_unsafe_noiommu_mode=1 " +
				"-device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=mgmt,hubid=8 -device e1000e,netdev=mgmt,mac=02:00:00:00:00:ff,addr=0xf " +
				"-netdev hubport,id=mgmt-drop,hubid=8 " +
				"-netdev hubport,id=net0,hubid=0 -device e1000,netdev=net0,mac=02:00:00:00:00:00,addr=0x10 " +
				"-netdev hubport,id=net1,hubid=0 -device e1000,netdev=net1,mac=02:00:00:00:00:01,addr=0x11",
		},
		{
			name: "aarch64 mgmt NIC on virt",
			spec: Spec{Arch: arch.AArch64, Kernel: "/k/Image", MemoryMiB: 256, CPUs: 1,
				NICs:    []NIC{{NICVirtioNet, "02:00:00:00:00:00"}},
				MgmtNIC: NIC{NICE1000, "02:00:00:00:00:ff"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/Image " +
				"-append console=ttyAMA0 panic=-1 oops=panic rdinit=/init vfio.enable_unsafe_noiommu_mode=1 -device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=mgmt,hubid=8 -device e1000,netdev=mgmt,mac=02:00:00:00:00:ff,addr=0xf " +
				"-netdev hubport,id=mgmt-drop,hubid=8 " +
				"-netdev hubport,id=net0,hubid=0 -device virtio-net-pci,netdev=net0,mac=02:00:00:00:00:00,addr=0x10 " +
				"-netdev hubport,id=net0-drop,hubid=0",
		},
		{
			name: "x86_64 microvm kernel vhost-vsock: the mmio device on the inherited fd",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1, VhostVsockCID: 7, VhostVsockFD: 3, ExtraArgs: []string{"-S"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer " +
				"-device vhost-vsock-device,guest-cid=7,vhostfd=3 -S",
		},
		{
			name: "x86_64 NICs: kernel vhost-vsock is the PCI device (q35)",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1, VhostVsockCID: 9, VhostVsockFD: 3,
				NICs: []NIC{{NICVirtioNet, "02:00:00:00:00:00"}, {NICVirtioNet, "02:00:00:00:00:01"}}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer vfio.enable_unsafe_noiommu_mode=1 " +
				"-device pvpanic-pci,addr=0x4 " +
				"-netdev hubport,id=net0,hubid=0 -device virtio-net-pci,netdev=net0,mac=02:00:00:00:00:00,addr=0x10 " +
				"-netdev hubport,id=net1,hubid=0 -device virtio-net-pci,netdev=net1,mac=02:00:00:00:00:01,addr=0x11 " +
				"-device vhost-vsock-pci,guest-cid=9,vhostfd=3",
		},
		{
			name: "x86_64 microvm virtio-serial",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1, SerialSocket: "/s/serial.sock"},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer " +
				"-device virtio-serial-device,id=invmser -chardev socket,id=invmport,path=/s/serial.sock " +
				"-device virtserialport,bus=invmser.0,nr=1,chardev=invmport,name=rules_go_vm.0",
		},
		{
			name: "x86_64 IOMMU: virtio-serial is the PCI device (q35)",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 256, CPUs: 1, IOMMU: true, SerialSocket: "/s/serial.sock"},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem,kernel-irqchip=split -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer intel_iommu=on " +
				"-device intel-iommu,intremap=on -device pvpanic-pci,addr=0x4 " +
				"-device virtio-serial-pci,id=invmser -chardev socket,id=invmport,path=/s/serial.sock " +
				"-device virtserialport,bus=invmser.0,nr=1,chardev=invmport,name=rules_go_vm.0",
		},
		{
			name: "x86_64 2M host pages and guest hugepages stay on microvm",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", MemoryMiB: 512, CPUs: 1, HostPages: HostPages2M, HugetlbfsDir: "/dev/hugepages",
				GuestHugepages: vmspec.Hugepages{Size: "2M", Count: 64}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel tcg -cpu max " +
				"-m 512M -smp 1 -object memory-backend-file,id=mem,size=512M,mem-path=/dev/hugepages,share=on -serial stdio -kernel /k/vmlinux " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer hugepagesz=2M hugepages=64",
		},
		{
			name: "aarch64 1G host pages, 1G guest pages",
			spec: Spec{Arch: arch.AArch64, Kernel: "/k/Image", MemoryMiB: 3072, CPUs: 4, HostPages: HostPages1G, HugetlbfsDir: "/mnt/huge 1G",
				GuestHugepages: vmspec.Hugepages{Size: "1G", Count: 2}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 3072M -smp 4 -object memory-backend-file,id=mem,size=3072M,mem-path=/mnt/huge 1G,share=on -serial stdio -kernel /k/Image " +
				"-append console=ttyAMA0 panic=-1 oops=panic rdinit=/init hugepagesz=1G hugepages=2 -device pvpanic-pci,addr=0x4",
		},
		{
			name: "x86_64 restore of a RAM-file template over virtio-serial: no kernel, initrd or command line (the guest is in its RAM)",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", Initrd: "/t/initrd.cpio", MemoryMiB: 256, CPUs: 1, SerialSocket: "/s/serial",
				RAMFile: "/t/ram", RAMFilePrivate: true, MigrationCaps: []string{CapIgnoreShared}, Incoming: "file:/t/state",
				Share: Share{Dir: "/s/layer,share", Tag: "rgvm_layer"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel tcg -cpu max " +
				"-m 256M -smp 1 -object memory-backend-file,id=mem,size=256M,mem-path=/t/ram,share=off,readonly=on,rom=off -serial stdio " +
				"-device virtio-serial-device,id=invmser -chardev socket,id=invmport,path=/s/serial " +
				"-device virtserialport,bus=invmser.0,nr=1,chardev=invmport,name=rules_go_vm.0 " +
				"-fsdev local,id=invmshare,security_model=none,readonly=on,path=/s/layer,,share -device virtio-9p-device,fsdev=invmshare,mount_tag=rgvm_layer " +
				"-global migration.x-ignore-shared=on -incoming file:/t/state",
		},
		{
			name: "x86_64 template being made with a layer window: RAM and window are two NUMA nodes, the kernel keeps off the window",
			spec: Spec{Arch: arch.X86_64, Kernel: "/k/vmlinux", Initrd: "/t/initrd.cpio", MemoryMiB: 256, CPUs: 1, SerialSocket: "/s/serial",
				RAMFile: "/t/ram", MigrationCaps: []string{CapIgnoreShared}, LayerWindow: LayerWindow{File: "/s/window", MiB: 128}, Quiet: true},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off -accel tcg -cpu max " +
				"-m 384M -smp 1 -object memory-backend-file,id=mem,size=256M,mem-path=/t/ram,share=on " +
				"-object memory-backend-file,id=layerwin,size=128M,mem-path=/s/window,share=on -numa node,memdev=mem -numa node,memdev=layerwin " +
				"-serial stdio -kernel /k/vmlinux -initrd /t/initrd.cpio " +
				"-append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check noreplace-smp nolapic_timer memmap=128M$256M quiet " +
				"-device virtio-serial-device,id=invmser -chardev socket,id=invmport,path=/s/serial " +
				"-device virtserialport,bus=invmser.0,nr=1,chardev=invmport,name=rules_go_vm.0 " +
				"-global migration.x-ignore-shared=on",
		},
		{
			name: "x86_64 restore with a layer window: the RAM copy-on-write, the restore's own window file",
			spec: Spec{Arch: arch.X86_64, MemoryMiB: 256, CPUs: 1, SerialSocket: "/s/serial",
				RAMFile: "/t/ram", RAMFilePrivate: true, MigrationCaps: []string{CapIgnoreShared}, Incoming: "file:/t/state",
				LayerWindow: LayerWindow{File: "/s/window", MiB: 128}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off -accel tcg -cpu max " +
				"-m 384M -smp 1 -object memory-backend-file,id=mem,size=256M,mem-path=/t/ram,share=off,readonly=on,rom=off " +
				"-object memory-backend-file,id=layerwin,size=128M,mem-path=/s/window,share=on -numa node,memdev=mem -numa node,memdev=layerwin " +
				"-serial stdio " +
				"-device virtio-serial-device,id=invmser -chardev socket,id=invmport,path=/s/serial " +
				"-device virtserialport,bus=invmser.0,nr=1,chardev=invmport,name=rules_go_vm.0 " +
				"-global migration.x-ignore-shared=on -incoming file:/t/state",
		},
		{
			name: "x86_64 restore of a RAM-file template on kernel vhost-vsock: the restore's own CID on the inherited fd, no kernel needed",
			spec: Spec{Arch: arch.X86_64, MemoryMiB: 256, CPUs: 1, VhostVsockCID: 1234, VhostVsockFD: 3,
				Accel: AccelKVM, RAMFile: "/t/ram", RAMFilePrivate: true, MigrationCaps: []string{CapIgnoreShared}, Incoming: "file:/t/state",
				Share: Share{Dir: "/s/layer", Tag: "rgvm_layer"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel kvm -cpu host " +
				"-m 256M -smp 1 -object memory-backend-file,id=mem,size=256M,mem-path=/t/ram,share=off,readonly=on,rom=off -serial stdio " +
				"-device vhost-vsock-device,guest-cid=1234,vhostfd=3 " +
				"-fsdev local,id=invmshare,security_model=none,readonly=on,path=/s/layer -device virtio-9p-device,fsdev=invmshare,mount_tag=rgvm_layer " +
				"-global migration.x-ignore-shared=on -incoming file:/t/state",
		},
		{
			name: "aarch64 template being made, mapped-ram, with its empty layer share",
			spec: Spec{Arch: arch.AArch64, Kernel: "/k/Image", MemoryMiB: 256, CPUs: 1, RAMFile: "/t/ram", MigrationCaps: []string{CapMappedRAM},
				Share: Share{Dir: "/s/empty", Tag: "rgvm_layer"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 256M -smp 1 -object memory-backend-file,id=mem,size=256M,mem-path=/t/ram,share=on -serial stdio -kernel /k/Image " +
				"-append console=ttyAMA0 panic=-1 oops=panic rdinit=/init -device pvpanic-pci,addr=0x4 " +
				"-fsdev local,id=invmshare,security_model=none,readonly=on,path=/s/empty -device virtio-9p-pci,fsdev=invmshare,mount_tag=rgvm_layer " +
				"-global migration.mapped-ram=on",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, err := Args(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			// -append's value is one argument: check it separately.
			got := strings.Join(args, " ")
			if got != tc.want {
				t.Errorf("Args:\n got %s\nwant %s", got, tc.want)
			}
			for i, a := range args {
				if a == "-append" && strings.Count(strings.Join(args[i+2:], " "), "-append") != 0 {
					t.Error("two -append")
				}
			}
			// No network reaches the host: every netdev is a hub port
			// (user, tap, bridge, socket, stream would leave the VM).
			for i, a := range args {
				switch a {
				case "-net", "-nic":
					t.Errorf("network argument %q", a)
				case "-netdev":
					if !strings.HasPrefix(args[i+1], "hubport,") {
						t.Errorf("netdev %q is not a hub port", args[i+1])
					}
				}
			}
		})
	}
}

func TestArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want error
		msg  string // a substring of the message, when it matters
	}{
		{"unknown arch", Spec{Arch: "riscv64", Kernel: "k", MemoryMiB: 1, CPUs: 1}, ErrUnknownArch, ""},
		{"no kernel", Spec{Arch: arch.X86_64, MemoryMiB: 1, CPUs: 1}, ErrInvalidSpec, ""},
		{"no memory", Spec{Arch: arch.X86_64, Kernel: "k", CPUs: 1}, ErrInvalidSpec, ""},
		{"no cpus", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 1}, ErrInvalidSpec, ""},
		{"bad accel", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 1, CPUs: 1, Accel: "hvf"}, ErrInvalidSpec, ""},
		{"NICs on microvm", Spec{Arch: arch.X86_64, Machine: "microvm", Kernel: "k", MemoryMiB: 256, CPUs: 1,
			NICs: []NIC{{NICE1000, "02:00:00:00:00:00"}}}, ErrInvalidSpec, ""},
		{"bad NIC model", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, NICs: []NIC{{"rtl8139", "02:00:00:00:00:00"}}}, ErrInvalidSpec, ""},
		{"bad MAC", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, NICs: []NIC{{NICE1000, "nope"}}}, ErrInvalidSpec, ""},
		{"too many NICs", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, NICs: make([]NIC, MaxNICs+1)}, ErrInvalidSpec, ""},
		{"bad mgmt NIC model", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, MgmtNIC: NIC{"rtl8139", "02:00:00:00:00:ff"}}, ErrInvalidSpec,
			`mgmt_nic: "rtl8139" is not allowed; use one of virtio_net, e1000, e1000e`},
		{"bad mgmt NIC MAC", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, MgmtNIC: NIC{NICVirtioNet, ""}}, ErrInvalidSpec, "mgmt_nic MAC"},
		{"mgmt NIC on microvm", Spec{Arch: arch.X86_64, Machine: "microvm", Kernel: "k", MemoryMiB: 256, CPUs: 1,
			MgmtNIC: NIC{NICVirtioNet, "02:00:00:00:00:ff"}}, ErrInvalidSpec, "no PCI bus"},
		{"bad host pages", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, HostPages: "64k"}, ErrInvalidSpec, ""},
		{"memory not aligned to 1G pages", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 1536, CPUs: 1, HostPages: HostPages1G, HugetlbfsDir: "/h"}, ErrInvalidSpec, ""},
		{"2M pages without a mount", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, HostPages: HostPages2M}, ErrInvalidSpec, ""},
		{"guest hugepages do not fit", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, GuestHugepages: vmspec.Hugepages{Size: "2M", Count: 100}}, ErrInvalidSpec, ""},
		{"layer window on aarch64", Spec{Arch: arch.AArch64, Kernel: "k", MemoryMiB: 256, CPUs: 1, LayerWindow: LayerWindow{File: "/w", MiB: 128}},
			ErrInvalidSpec, "no layer window on aarch64"},
		{"layer window past 2 GiB", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 2000, CPUs: 1, LayerWindow: LayerWindow{File: "/w", MiB: 128}},
			ErrInvalidSpec, "a layer window of 128 MiB after 2000 MiB of RAM ends past 2048 MiB"},
		{"empty layer window", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, LayerWindow: LayerWindow{File: "/w"}},
			ErrInvalidSpec, "layer window of 0 MiB"},
		{"guest hugepage size", Spec{Arch: arch.X86_64, Kernel: "k", MemoryMiB: 256, CPUs: 1, GuestHugepages: vmspec.Hugepages{Size: "4M", Count: 1}}, ErrInvalidSpec, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Args(tc.spec)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to contain %q", err, tc.msg)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	got := CommandLine("/usr/bin/qemu", []string{"-append", "console=ttyS0 quiet", "-kernel", "/a b/it's"})
	want := `/usr/bin/qemu -append 'console=ttyS0 quiet' -kernel '/a b/it'\''s'`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestParseCapabilitiesAndCheck(t *testing.T) {
	c := ParseCapabilities(
		[]byte("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright\n"),
		[]byte("Supported machines are:\nmicrovm              microvm (i386)\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\npc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n"),
		[]byte("Misc devices:\nname \"vhost-user-vsock-device\", bus virtio-bus\nname \"vhost-user-vsock-pci\", bus PCI\nname \"pvpanic-pci\", bus PCI\nname \"e1000\", bus PCI\n"),
		[]byte("List of user creatable objects:\n  authz-list\n  memory-backend-memfd\n"),
	)
	if c.Version != "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" {
		t.Errorf("version %q", c.Version)
	}
	for _, tc := range []struct {
		arch    arch.Arch
		machine string
		ok      bool
	}{
		{arch.X86_64, "", true},
		{arch.X86_64, "q35", true},
		{arch.X86_64, "pc", false},
		{arch.AArch64, "", false}, // no virt machine
	} {
		err := c.Check(tc.arch, tc.machine)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s, %q) = %v, want ok=%v", tc.arch, tc.machine, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrMissingFeature) {
			t.Errorf("Check error %v does not wrap ErrMissingFeature", err)
		}
	}
	if err := c.CheckSpec(Spec{Arch: arch.X86_64, NICs: []NIC{{NICE1000, ""}}}); err != nil {
		t.Errorf("CheckSpec(e1000) = %v", err)
	}
	if err := c.CheckSpec(Spec{Arch: arch.X86_64, NICs: []NIC{{NICE1000E, ""}}}); !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), `"e1000e"`) {
		t.Errorf("CheckSpec(e1000e) = %v, want a missing e1000e", err)
	}
	if err := c.CheckSpec(Spec{Arch: arch.X86_64, IOMMU: true}); !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), `"intel-iommu"`) {
		t.Errorf("CheckSpec(IOMMU) = %v, want a missing intel-iommu", err)
	}
	if err := c.CheckSpec(Spec{Arch: arch.X86_64, HostPages: HostPages2M}); !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), "memory-backend-file") {
		t.Errorf("CheckSpec(2M) = %v, want a missing memory-backend-file", err)
	}
	c.Objects = map[string]bool{}
	if err := c.Check(arch.X86_64, ""); !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), "memory-backend-memfd") {
		t.Errorf("Check without memfd = %v", err)
	}
}

func TestParseHostCPUModel(t *testing.T) {
	x86 := "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Xeon\nstepping\t: 7\ncpu MHz\t\t: 2000.1\n" +
		"flags\t\t: fpu  vme sse avx512f\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu\n"
	arm := "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd atomics\nCPU implementer\t: 0x41\nCPU architecture: 8\n" +
		"CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"x86_64: the first processor, clock left out", x86, "vendor_id: GenuineIntel\ncpu family: 6\nmodel: 85\nstepping: 7\nflags: fpu vme sse avx512f\n"},
		{"arm64", arm, "Features: fp asimd atomics\nCPU implementer: 0x41\nCPU architecture: 8\nCPU variant: 0x3\nCPU part: 0xd0c\nCPU revision: 1\n"},
		{"nothing that names a model", "processor : 0\ncpu MHz : 1\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHostCPUModel([]byte(tc.in))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("no error, model %q", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseHostCPUModel = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// A clock change is not a model change; another flag is.
	a, _ := ParseHostCPUModel([]byte(x86))
	b, _ := ParseHostCPUModel([]byte(strings.Replace(x86, "2000.1", "3000.0", 1)))
	c, _ := ParseHostCPUModel([]byte(strings.Replace(x86, "avx512f", "avx2", 1)))
	if a != b || a == c {
		t.Errorf("models: clock change equal %v (want true), flag change equal %v (want false)", a == b, a == c)
	}
}

func TestParseTSCkHz(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"processor\t: 0\ncpu MHz\t\t: 2249.998\n", 2249998, false},
		{"cpu MHz : 3000\ncpu MHz : 1000\n", 3000000, false},
		{"processor : 0\nBogoMIPS : 50.00\n", 0, true},
		{"cpu MHz : fast\n", 0, true},
	} {
		got, err := ParseTSCkHz([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseTSCkHz(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestProbeRealQEMU probes the host's QEMU binaries, when installed, and
// checks they have what the runner needs (QEMU 7.2 on Debian bookworm).
func TestProbeRealQEMU(t *testing.T) {
	for arch, p := range Profiles {
		bin, err := exec.LookPath(p.Binary)
		if err != nil {
			t.Logf("%s not installed", p.Binary)
			continue
		}
		c, err := ProbeCached(context.Background(), bin, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(arch, ""); err != nil {
			t.Errorf("%s: %v", bin, err)
		}
	}
}

func TestNICAddressesAndMACs(t *testing.T) {
	if got := NICPCIAddress(0); got != "0000:00:10.0" {
		t.Errorf("NICPCIAddress(0) = %s", got)
	}
	if got := NICPCIAddress(MaxNICs - 1); got != "0000:00:17.0" {
		t.Errorf("NICPCIAddress(%d) = %s", MaxNICs-1, got)
	}
	a0, a1, b0 := NICMAC("//pkg:a_test", 0), NICMAC("//pkg:a_test", 1), NICMAC("//pkg:b_test", 0)
	if a0 != NICMAC("//pkg:a_test", 0) {
		t.Error("NICMAC is not deterministic")
	}
	if a0 == a1 || a0 == b0 {
		t.Errorf("MACs collide: %s %s %s", a0, a1, b0)
	}
	for _, m := range []string{a0, a1, b0} {
		hw, err := net.ParseMAC(m)
		if err != nil {
			t.Fatal(err)
		}
		if hw[0]&0x02 == 0 || hw[0]&0x01 != 0 {
			t.Errorf("%s is not a locally administered unicast address", m)
		}
	}
	if !strings.HasSuffix(a1, ":01") {
		t.Errorf("NIC 1's MAC %s does not end in its index", a1)
	}
	if got := MgmtNICPCIAddress(); got != "0000:00:0f.0" {
		t.Errorf("MgmtNICPCIAddress() = %s", got)
	}
	// The management NIC's MAC: the same hash, ending in ff, never a
	// fabric NIC's.
	m := MgmtNICMAC("//pkg:a_test")
	if m != MgmtNICMAC("//pkg:a_test") || m == MgmtNICMAC("//pkg:b_test") {
		t.Errorf("MgmtNICMAC is not deterministic per test: %s", m)
	}
	if m[:len(m)-2] != a0[:len(a0)-2] || !strings.HasSuffix(m, ":ff") {
		t.Errorf("MgmtNICMAC %s is not NIC 0's %s with the last byte ff", m, a0)
	}
	for i := range MaxNICs {
		if m == NICMAC("//pkg:a_test", i) {
			t.Errorf("mgmt MAC %s collides with NIC %d's", m, i)
		}
	}
}
