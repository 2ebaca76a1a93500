// Command bootinit is a minimal PID 1 for TestBootIntegration: it prints
// files from the (concatenated) initramfs to the console and powers off.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	for _, p := range []string{"/etc/layer", "/base-only", "/testdata/sub/data.txt"} {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Printf("BOOTINIT %s: %v\n", p, err)
			continue
		}
		fmt.Printf("BOOTINIT %s=%s\n", p, b)
	}
	if fi, err := os.Lstat("/bin/init-link"); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		t, _ := os.Readlink("/bin/init-link")
		fmt.Printf("BOOTINIT symlink=%s\n", t)
	}
	if fi, err := os.Stat("/tmp"); err == nil {
		m := uint32(fi.Mode().Perm())
		if fi.Mode()&os.ModeSticky != 0 {
			m |= 0o1000
		}
		fmt.Printf("BOOTINIT tmpmode=%o\n", m)
	}
	fmt.Println("BOOTINIT done")
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
