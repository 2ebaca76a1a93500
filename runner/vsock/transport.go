package vsock

import (
	"errors"
	"fmt"
	"os"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// Transport is how the guest's streams reach the host.
type Transport string

// Transports.
const (
	// Auto picks VhostVsock when /dev/vhost-vsock is usable, else
	// VhostUserVsock when the daemon is found, else VirtioSerial.
	Auto Transport = "auto"
	// VhostVsock is the kernel's vhost-vsock (QEMU vhost-vsock-pci or
	// -device with a vhostfd= whose guest CID the runner reserved).
	VhostVsock Transport = "vhost-vsock"
	// VhostUserVsock is QEMU's vhost-user-vsock device served by one
	// vhost-device-vsock daemon per VM (no global CID).
	VhostUserVsock Transport = "vhost-user-vsock"
	// VirtioSerial is one virtio-serial port carrying every stream on one
	// connection: the fallback for guest kernels without vsock.
	VirtioSerial Transport = "virtio-serial"
)

// Transports lists the allowed values, for flags and errors.
var Transports = []Transport{Auto, VhostVsock, VhostUserVsock, VirtioSerial}

// ErrTransport is wrapped by ParseTransport's and Choose's errors.
var ErrTransport = errors.New("transport")

// ParseTransport checks s ("" means Auto).
func ParseTransport(s string) (Transport, error) {
	if s == "" {
		return Auto, nil
	}
	var shape vmspec.Shape
	if err := shape.Set("transport", s); err != nil {
		return "", fmt.Errorf("%w: %w", ErrTransport, err)
	}
	return Transport(s), nil
}

// DefaultVhostDevice is the kernel vhost-vsock device.
const DefaultVhostDevice = "/dev/vhost-vsock"

// Probe is what Choose looks at; every field is injected for tests.
type Probe struct {
	// VhostDevice is the kernel device; "" means DefaultVhostDevice.
	VhostDevice string
	// OpenDevice opens the device read-write and closes it again; nil
	// means os.OpenFile.
	OpenDevice func(path string) error
	// FindDaemon finds vhost-device-vsock (see FindDaemon).
	FindDaemon func() (string, error)
}

// Choice is a chosen transport and why.
type Choice struct {
	Transport Transport
	// Daemon is the vhost-device-vsock binary (VhostUserVsock only).
	Daemon string
	// Reason says why, for the runner's diagnostics.
	Reason string
}

// Choose resolves the requested transport (Auto or a forced one) on this
// host. A forced transport whose requirement is missing fails with the
// reason; Auto falls back in the order kernel vhost-vsock,
// vhost-user-vsock, virtio-serial and says why at each step.
func Choose(req Transport, p Probe) (Choice, error) {
	dev := p.VhostDevice
	if dev == "" {
		dev = DefaultVhostDevice
	}
	open := p.OpenDevice
	if open == nil {
		open = func(path string) error {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err == nil {
				f.Close()
			}
			return err
		}
	}
	switch req {
	case VhostVsock:
		if err := open(dev); err != nil {
			return Choice{}, fmt.Errorf("%w %s requested but %s is not usable: %v (load vhost_vsock, or use %s)", ErrTransport, req, dev, err, VhostUserVsock)
		}
		return Choice{Transport: req, Reason: "requested; " + dev + " is usable"}, nil
	case VhostUserVsock:
		d, err := p.FindDaemon()
		if err != nil {
			return Choice{}, fmt.Errorf("%w %s requested: %w", ErrTransport, req, err)
		}
		return Choice{Transport: req, Daemon: d, Reason: "requested; daemon " + d}, nil
	case VirtioSerial:
		return Choice{Transport: req, Reason: "requested (one connection for every stream)"}, nil
	case Auto, "":
	default:
		return Choice{}, fmt.Errorf("%w %q: want one of %v", ErrTransport, req, Transports)
	}
	devErr := open(dev)
	if devErr == nil {
		return Choice{Transport: VhostVsock, Reason: dev + " is usable (kernel vhost-vsock, CID reserved per VM)"}, nil
	}
	d, err := p.FindDaemon()
	if err == nil {
		return Choice{Transport: VhostUserVsock, Daemon: d, Reason: fmt.Sprintf("%s not usable (%v); vhost-device-vsock daemon %s", dev, devErr, d)}, nil
	}
	return Choice{Transport: VirtioSerial, Reason: fmt.Sprintf("%s not usable (%v) and no daemon (%v): virtio-serial fallback", dev, devErr, err)}, nil
}
