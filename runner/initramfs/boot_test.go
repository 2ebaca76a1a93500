package initramfs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootIntegration boots a real kernel on a base layer (a tiny static
// init) concatenated with a test layer that overrides one of its files,
// proving the kernel unpacks our archives and their concatenation. Run
// with INITRAMFS_BOOT_KERNEL=path/to/vmlinux (x86_64, microvm) or
// .../Image with INITRAMFS_BOOT_ARCH=aarch64.
func TestBootIntegration(t *testing.T) {
	kernel := os.Getenv("INITRAMFS_BOOT_KERNEL")
	if kernel == "" {
		t.Skip("set INITRAMFS_BOOT_KERNEL to a guest kernel to boot")
	}
	arch := os.Getenv("INITRAMFS_BOOT_ARCH")
	if arch == "" {
		arch = "x86_64"
	}
	goarch, qemu, args := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[arch], "qemu-system-"+arch, []string(nil)
	switch arch {
	case "x86_64":
		args = []string{"-machine", "microvm", "-append", "console=ttyS0 tsc_early_khz=2000000 panic=-1 quiet"}
	case "aarch64":
		args = []string{"-machine", "virt", "-cpu", "max,pauth=off", "-append", "console=ttyAMA0 panic=-1 quiet"}
	default:
		t.Fatalf("INITRAMFS_BOOT_ARCH=%q: want x86_64 or aarch64", arch)
	}
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-o", initBin, "./testdata/bootinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building init: %v\n%s", err, out)
	}

	base := NewLayer()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(base.AddFile("init", initBin, 0o755))
	must(base.AddBytes("etc/layer", []byte("base"), 0o644))
	must(base.AddBytes("base-only", []byte("kept"), 0o644))
	must(base.AddSymlink("bin/init-link", "/init"))
	must(base.AddDir("tmp", 0o1777))
	td := filepath.Join(dir, "td")
	must(os.MkdirAll(filepath.Join(td, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(td, "sub", "data.txt"), []byte("testdata"), 0o644))
	test := NewLayer()
	must(test.AddBytes("etc/layer", []byte("test"), 0o644))
	must(test.AddTree("testdata", td))
	must(test.AssumeDir("tmp")) // keeps the base layer's 1777
	must(test.AddBytes("tmp/from-test", []byte("t"), 0o644))

	var b1, b2, img bytes.Buffer
	_, err := base.WriteTo(&b1)
	must(err)
	_, err = test.WriteTo(&b2)
	must(err)
	_, err = Concat(&img, &b1, &b2)
	must(err)
	initrd := filepath.Join(dir, "initrd.cpio")
	must(os.WriteFile(initrd, img.Bytes(), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, append([]string{"-m", "256M", "-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", qemu, err, out)
	}
	got := string(out)
	for _, want := range []string{
		"BOOTINIT /etc/layer=test",
		"BOOTINIT /base-only=kept",
		"BOOTINIT /testdata/sub/data.txt=testdata",
		"BOOTINIT symlink=/init",
		"BOOTINIT tmpmode=1777",
		"BOOTINIT done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", got)
	}
}
