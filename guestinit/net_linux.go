package guestinit

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// loopbackName is the loopback interface every Linux network namespace has.
const loopbackName = "lo"

// LoopbackUp sets the loopback interface up, which gives it 127.0.0.1 and
// ::1: the kernel creates it down, and tests that listen on localhost
// (net/http/httptest, x/sys's sendfile tests, ...) expect it up, as on the
// host where go test runs.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(loopbackName)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: get flags: %w", loopbackName, err)
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: set up: %w", loopbackName, err)
	}
	return nil
}
