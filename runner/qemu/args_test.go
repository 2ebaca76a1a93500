package qemu

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestArgsGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{
			name: "x86_64 microvm TCG",
			spec: Spec{Arch: X86_64, Kernel: "/k/vmlinux", Initrd: "/s/initrd.cpio", MemoryMiB: 256, CPUs: 1,
				VhostUserSocket: "/s/vhost.sock", TSCkHz: 2249998, Quiet: true},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine microvm,acpi=off,memory-backend=mem -accel tcg " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/vmlinux " +
				"-initrd /s/initrd.cpio -append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check tsc_early_khz=2249998 quiet " +
				"-chardev socket,id=vsock0,path=/s/vhost.sock -device vhost-user-vsock-device,chardev=vsock0",
		},
		{
			name: "x86_64 q35 KVM drops tsc_early_khz",
			spec: Spec{Arch: X86_64, Machine: "q35", Accel: AccelKVM, Kernel: "/boot/vmlinuz", Initrd: "/i", MemoryMiB: 512, CPUs: 2,
				VhostUserSocket: "/s/v", TSCkHz: 1000},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine q35,memory-backend=mem -accel kvm -cpu host " +
				"-m 512M -smp 2 -object memory-backend-memfd,id=mem,size=512M,share=on -serial stdio -kernel /boot/vmlinuz " +
				"-initrd /i -append console=ttyS0 panic=-1 oops=panic rdinit=/init reboot=t no_timer_check " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0",
		},
		{
			name: "aarch64 virt TCG",
			spec: Spec{Arch: AArch64, Kernel: "/k/Image", Initrd: "/i", MemoryMiB: 256, CPUs: 1, VhostUserSocket: "/s/v",
				TSCkHz: 1000, ExtraCmdline: []string{"loglevel=7"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 256M -smp 1 -object memory-backend-memfd,id=mem,size=256M,share=on -serial stdio -kernel /k/Image " +
				"-initrd /i -append console=ttyAMA0 panic=-1 oops=panic rdinit=/init loglevel=7 " +
				"-chardev socket,id=vsock0,path=/s/v -device vhost-user-vsock-pci,chardev=vsock0",
		},
		{
			name: "no vsock, no initrd",
			spec: Spec{Arch: AArch64, Kernel: "/k/Image", MemoryMiB: 128, CPUs: 1, ExtraArgs: []string{"-S"}},
			want: "-nodefaults -no-user-config -display none -no-reboot -machine virt,memory-backend=mem -accel tcg -cpu max,pauth=off " +
				"-m 128M -smp 1 -object memory-backend-memfd,id=mem,size=128M,share=on -serial stdio -kernel /k/Image " +
				"-append console=ttyAMA0 panic=-1 oops=panic rdinit=/init -S",
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
			for _, a := range args {
				if strings.Contains(a, "netdev") || strings.Contains(a, "-net") {
					t.Errorf("network argument %q", a)
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
	}{
		{"unknown arch", Spec{Arch: "riscv64", Kernel: "k", MemoryMiB: 1, CPUs: 1}, ErrUnknownArch},
		{"no kernel", Spec{Arch: X86_64, MemoryMiB: 1, CPUs: 1}, ErrInvalidSpec},
		{"no memory", Spec{Arch: X86_64, Kernel: "k", CPUs: 1}, ErrInvalidSpec},
		{"no cpus", Spec{Arch: X86_64, Kernel: "k", MemoryMiB: 1}, ErrInvalidSpec},
		{"bad accel", Spec{Arch: X86_64, Kernel: "k", MemoryMiB: 1, CPUs: 1, Accel: "hvf"}, ErrInvalidSpec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Args(tc.spec); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
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
		[]byte("Misc devices:\nname \"vhost-user-vsock-device\", bus virtio-bus\nname \"vhost-user-vsock-pci\", bus PCI\n"),
		[]byte("List of user creatable objects:\n  authz-list\n  memory-backend-memfd\n"),
	)
	if c.Version != "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" {
		t.Errorf("version %q", c.Version)
	}
	for _, tc := range []struct {
		arch    Arch
		machine string
		ok      bool
	}{
		{X86_64, "", true},
		{X86_64, "q35", true},
		{X86_64, "pc", false},
		{AArch64, "", false}, // no virt machine
	} {
		err := c.Check(tc.arch, tc.machine)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s, %q) = %v, want ok=%v", tc.arch, tc.machine, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrMissingFeature) {
			t.Errorf("Check error %v does not wrap ErrMissingFeature", err)
		}
	}
	c.Objects = map[string]bool{}
	if err := c.Check(X86_64, ""); !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), "memory-backend-memfd") {
		t.Errorf("Check without memfd = %v", err)
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
