package guestinit

// The init reaches the host over AF_VSOCK with a few raw socket calls
// (golang.org/x/sys/unix) rather than github.com/mdlayher/vsock, which the
// host side keeps using: that library returns net types, and linking package
// net runs its package initialisers (net/netip's unique handles among them)
// at every guest start, ~1,700 translation blocks under TCG (~13 ms per
// x86_64 boot, counted with QEMU's `info jit`). The sockets are
// non-blocking and handed to the Go runtime's poller through os.NewFile, so
// reads and writes park goroutines, deadlines work and Close wakes a
// blocked reader, as with a net.Conn.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Deadlines for connect: none, and one already past (cancels a wait).
var (
	noDeadline   time.Time
	pastDeadline = time.Unix(1, 0)
)

// Listener accepts connections: the debug command server's vsock port.
type Listener interface {
	// Accept waits for the next connection; after Close it fails.
	Accept() (io.ReadWriteCloser, error)
	// Close stops listening and wakes a waiting Accept.
	Close() error
}

// socketFile makes a non-blocking, close-on-exec stream socket of domain as
// a poller-backed *os.File.
func socketFile(domain int, name string) (*os.File, error) {
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// DialVsock connects to cid:port; ctx bounds the connect.
func DialVsock(ctx context.Context, cid, port uint32) (io.ReadWriteCloser, error) {
	c, err := dialSocket(ctx, unix.AF_VSOCK, &unix.SockaddrVM{CID: cid, Port: port}, fmt.Sprintf("vsock:%d:%d", cid, port))
	if err != nil {
		return nil, fmt.Errorf("vsock connect to %d:%d: %w", cid, port, err)
	}
	return c, nil
}

// dialSocket connects a new socket of domain to sa.
func dialSocket(ctx context.Context, domain int, sa unix.Sockaddr, name string) (*os.File, error) {
	f, err := socketFile(domain, name)
	if err != nil {
		return nil, err
	}
	if err := connect(ctx, f, func(fd int) error { return unix.Connect(fd, sa) }); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// connect runs start (a non-blocking connect(2) on f's descriptor) and,
// when it is in progress (EINPROGRESS), waits in the poller until f is
// writable and reads the outcome from SO_ERROR; ctx's end (a deadline or a
// cancel) sets a past write deadline that ends the wait.
func connect(ctx context.Context, f *os.File, start func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	// Only once ctx is done (ctx.Err set) does the wait end, so that an
	// ended wait always reports ctx's error.
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(pastDeadline) })
	started := false
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		if !started {
			started = true
			cerr = start(int(fd))
			return !errors.Is(cerr, unix.EINPROGRESS) // in progress: wait until writable
		}
		var e int
		if e, cerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); cerr == nil && e != 0 {
			cerr = unix.Errno(e)
		}
		return true
	})
	if !stop() || ctx.Err() != nil {
		// ctx ended: its deadline may be set on f at any moment.
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	return f.SetWriteDeadline(noDeadline)
}

// LocalVsockCID is the guest's vsock CID now (the transport's, from
// IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock): a restored template's
// differs from the template's once QEMU's transport reset is through.
func LocalVsockCID() (uint32, error) {
	fd, err := unix.Open("/dev/vsock", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open /dev/vsock: %w", err)
	}
	defer unix.Close(fd)
	cid, err := unix.IoctlGetUint32(fd, unix.IOCTL_VM_SOCKETS_GET_LOCAL_CID)
	if err != nil {
		return 0, fmt.Errorf("IOCTL_VM_SOCKETS_GET_LOCAL_CID: %w", err)
	}
	return cid, nil
}

// ListenVsock listens on port of any local CID.
func ListenVsock(port uint32) (Listener, error) {
	ln, err := listenSocket(unix.AF_VSOCK, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}, fmt.Sprintf("vsock-listen:%d", port))
	if err != nil {
		return nil, fmt.Errorf("vsock listen on port %d: %w", port, err)
	}
	return ln, nil
}

// listenSocket binds a new socket of domain to sa and listens.
func listenSocket(domain int, sa unix.Sockaddr, name string) (Listener, error) {
	f, err := socketFile(domain, name)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			if err = unix.Bind(int(fd), sa); err == nil {
				err = unix.Listen(int(fd), 16)
			}
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return socketListener{f, new(atomic.Bool)}, nil
}

// socketListener accepts poller-backed connections.
type socketListener struct {
	f      *os.File
	closed *atomic.Bool
}

func (l socketListener) Accept() (io.ReadWriteCloser, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return !errors.Is(aerr, unix.EAGAIN)
	})
	if err == nil {
		err = aerr
	}
	if err != nil {
		if l.closed.Load() {
			return nil, fmt.Errorf("accept on %s: %w", l.f.Name(), os.ErrClosed)
		}
		return nil, err
	}
	return os.NewFile(uintptr(nfd), l.f.Name()+"-conn"), nil
}

func (l socketListener) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}
