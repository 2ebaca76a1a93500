package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// serialSocket is the host end of the virtio-serial port in the state
// directory; QEMU connects to it as a client.
const serialSocket = "serial.sock"

// GuestSerialDevice is the guest's virtio-serial port (port 1 of the first
// virtio-serial device, named qemu.SerialPortName).
const GuestSerialDevice = "/dev/vport0p1"

// channel is the host side of the chosen transport, set up before boot.
type channel struct {
	choice vsock.Choice
	// ln yields the guest's streams.
	ln net.Listener
	// guest is what the guest init dials.
	guest protocol.Channel
	// device is the guest's channel device: the daemon's vhost-user
	// socket, the reserved vhost-vsock device and CID, or the serial
	// port's socket.
	device vmm.Channel
	// daemon runs for vhost-user-vsock once started (startDaemon).
	daemon *vsock.Daemon
	// dial connects to a guest vsock port (nil: not possible).
	dial func(ctx context.Context, port uint32) (net.Conn, error)
	// reproducer prefix: the daemon's command line.
	daemonCmd string
	closers   []func()
}

// close releases everything the channel holds (idempotent).
func (c *channel) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
}

// chooseTransport resolves o.Transport on this host.
func chooseTransport(o Options) (vsock.Choice, error) {
	req, err := vsock.ParseTransport(o.Transport)
	if err != nil {
		return vsock.Choice{}, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	find := func() (string, error) {
		if o.Daemon != "" {
			return o.Daemon, nil
		}
		return vsock.FindDaemon(exec.LookPath, vsock.DaemonFallbacks)
	}
	c, err := vsock.Choose(req, vsock.Probe{VhostDevice: o.VhostDevice, FindDaemon: find})
	if err != nil {
		if req == vsock.VhostUserVsock {
			return c, fmt.Errorf("%w: %w", ErrNoDaemon, err)
		}
		return c, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return c, nil
}

// openChannel sets up the host side of the transport before the guest
// config is written (the guest must know the port) and before boot (the
// listener must exist when the guest dials). With listen (a snapshot
// start on kernel vhost-vsock), the guest listens instead and the host
// dials it (protocol.ChannelVsockListen, guestDialer).
func openChannel(o Options, state string, choice vsock.Choice, listen bool) (*channel, error) {
	c := &channel{choice: choice, device: vmm.Channel{Transport: choice.Transport}}
	fail := func(err error) (*channel, error) {
		c.close()
		return nil, err
	}
	switch choice.Transport {
	case vsock.VhostUserVsock:
		ln, err := vsock.Listen(state, protocol.DefaultVsockPort)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrInternal, err))
		}
		c.ln = ln
		c.closers = append(c.closers, func() { ln.Close() })
		c.guest = protocol.Channel{Kind: protocol.ChannelVsock, CID: protocol.HostCID, Port: protocol.DefaultVsockPort}
		c.device.Socket = vsock.SocketPath(state)
		c.dial = func(ctx context.Context, port uint32) (net.Conn, error) { return vsock.DialGuest(ctx, state, port) }
		c.daemonCmd = qemu.CommandLine(choice.Daemon, vsock.Args(state, vsock.DefaultGuestCID)) + " &\n"
	case vsock.VhostVsock:
		dev := o.VhostDevice
		if dev == "" {
			dev = vsock.DefaultVhostDevice
		}
		vd, cid, err := vsock.Allocator{Open: vsock.OpenVhostDevice(dev)}.Reserve()
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrInternal, err))
		}
		c.closers = append(c.closers, func() { vd.Close() })
		c.device.CID, c.device.Device = cid, vd.File()
		c.dial = func(ctx context.Context, port uint32) (net.Conn, error) { return vsock.DialKernel(ctx, cid, port) }
		if listen {
			c.guest = protocol.Channel{Kind: protocol.ChannelVsockListen, Port: protocol.TemplateListenPort}
			c.ln = &guestDialer{cid: cid, port: protocol.TemplateListenPort, dial: c.dial}
			c.choice.Reason += fmt.Sprintf("; guest CID %d, the host dials its port %d", cid, protocol.TemplateListenPort)
			break
		}
		kl, err := vsock.ListenKernel(cid, 0)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrInternal, err))
		}
		c.ln = kl
		c.closers = append(c.closers, func() { kl.Close() })
		c.guest = protocol.Channel{Kind: protocol.ChannelVsock, CID: protocol.HostCID, Port: kl.Port()}
		c.choice.Reason += fmt.Sprintf("; guest CID %d, host port %d", cid, kl.Port())
	case vsock.VirtioSerial:
		if listen {
			return fail(fmt.Errorf("%w: only kernel vhost-vsock has a listening guest", ErrInternal))
		}
		path := filepath.Join(state, serialSocket)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrInternal, err))
		}
		c.ln = ln
		c.closers = append(c.closers, func() { ln.Close(); os.Remove(path) })
		c.guest = protocol.Channel{Kind: protocol.ChannelSerial, Device: GuestSerialDevice}
		c.device.Socket = path
	default:
		return fail(fmt.Errorf("%w: transport %q", ErrInvalidOptions, choice.Transport))
	}
	return c, nil
}

// startDaemon starts vhost-device-vsock for the vhost-user transport.
func (c *channel) startDaemon(ctx context.Context, state string) error {
	if c.choice.Transport != vsock.VhostUserVsock {
		return nil
	}
	d, err := vsock.Start(ctx, vsock.Config{Binary: c.choice.Daemon, Dir: state})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoDaemon, err)
	}
	c.daemon = d
	c.closers = append(c.closers, d.Stop)
	return nil
}
