//go:build !linux

package vfio

// Bind fails: binding to vfio-pci needs a Linux guest.
func Bind(addr string) (Binding, error) { return Binding{}, ErrUnsupported }

// Status fails: binding to vfio-pci needs a Linux guest.
func Status(addr string) (Binding, error) { return Binding{}, ErrUnsupported }
