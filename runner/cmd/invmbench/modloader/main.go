// Command modloader is the baseline guest's /init in invmbench: a distro
// kernel has virtio and vsock as modules, so this static program loads the
// modules listed in /modules/order (finit_module, in order), then execs the
// real guest init (/guestinit) as PID 1 with argv[0] "/init".
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "modloader:", err)
	}
	// exec failed or a module did not load: let the real init report.
	_ = unix.Exec("/guestinit", []string{"/init"}, os.Environ())
	os.Exit(1)
}

func run() error {
	f, err := os.Open("/modules/order")
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name := strings.TrimSpace(s.Text())
		if name == "" {
			continue
		}
		m, err := os.Open("/modules/" + name)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(m.Fd()), "", 0)
		m.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load %s: %w", name, err)
		}
	}
	return unix.Exec("/guestinit", []string{"/init"}, os.Environ())
}
