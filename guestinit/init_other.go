//go:build !linux

package guestinit

import "errors"

// Main runs the real guest init; it only exists on Linux.
func Main() error {
	return errors.New("guestinit: the guest init runs on Linux only")
}
