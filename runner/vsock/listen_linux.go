package vsock

import (
	"context"
	"fmt"
	"net"

	mdvsock "github.com/mdlayher/vsock"
)

// KernelListener listens on the host's AF_VSOCK (kernel vhost-vsock) for
// the guest with context ID cid only: the port is host-wide, so
// connections from other guests are closed.
type KernelListener struct {
	ln  *mdvsock.Listener
	cid uint32
}

// ListenKernel listens on port of every host CID for connections from
// guest cid. Port 0 lets the kernel pick one (see Port).
func ListenKernel(cid, port uint32) (*KernelListener, error) {
	ln, err := mdvsock.ListenContextID(mdvsock.Host, port, nil)
	if err != nil {
		return nil, fmt.Errorf("vsock listen on port %d: %w", port, err)
	}
	return &KernelListener{ln: ln, cid: cid}, nil
}

// Port is the port listened on.
func (l *KernelListener) Port() uint32 { return l.ln.Addr().(*mdvsock.Addr).Port }

// Accept returns the next connection from the guest.
func (l *KernelListener) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.RemoteAddr().(*mdvsock.Addr); ok && a.ContextID == l.cid {
			return c, nil
		}
		c.Close() // another guest's connection to our port
	}
}

// Close stops listening.
func (l *KernelListener) Close() error { return l.ln.Close() }

// Addr is the listening address.
func (l *KernelListener) Addr() net.Addr { return l.ln.Addr() }

// DialKernel connects to port of guest cid over the host's AF_VSOCK; ctx
// bounds the connect.
func DialKernel(ctx context.Context, cid, port uint32) (net.Conn, error) {
	return mdvsock.DialContext(ctx, cid, port, nil)
}
