package runner

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// Bounds of dialling a listening guest (protocol.ChannelVsockListen).
const (
	// guestDialAttempt bounds one connect and the guest's hello. A connect
	// the guest answers before QEMU's transport reset gave it its new CID
	// never completes (the host's vhost-vsock drops the answer, sent from
	// the old CID): the attempt ends and the next one goes.
	guestDialAttempt = 500 * time.Millisecond
	// guestDialPause is the pause between attempts (the guest may not
	// listen yet, or not run yet).
	guestDialPause = 10 * time.Millisecond
)

// guestDialer is the listener of a vsock-listen channel: the guest
// listens and the host dials. Its first Accept dials the guest's port
// until the guest answers with the CID the run reserved for it
// (protocol.ListenHello): a restored template answers with the template's
// until QEMU's transport reset is through, and such a connection is not
// kept. Every stream travels on that one connection, so a later Accept
// waits for Close. The session's bound (or the template maker's) ends the
// dialling by closing it.
type guestDialer struct {
	cid, port uint32
	// dial connects to a guest port (the channel's dial).
	dial func(ctx context.Context, port uint32) (net.Conn, error)
	// attempt and pause override guestDialAttempt and guestDialPause.
	attempt, pause time.Duration

	once     sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	accepted bool
}

func (d *guestDialer) setup() {
	d.once.Do(func() { d.ctx, d.cancel = context.WithCancel(context.Background()) })
}

// Accept returns the guest's connection, its hello read.
func (d *guestDialer) Accept() (net.Conn, error) {
	d.setup()
	d.mu.Lock()
	again := d.accepted
	d.accepted = true
	d.mu.Unlock()
	if again {
		<-d.ctx.Done()
		return nil, net.ErrClosed
	}
	attempt, pause := orDuration(d.attempt, guestDialAttempt), orDuration(d.pause, guestDialPause)
	for {
		c, err := d.try(attempt)
		if err == nil {
			return c, nil
		}
		select {
		case <-d.ctx.Done():
			return nil, fmt.Errorf("%w (guest CID %d, port %d; last attempt: %v)", net.ErrClosed, d.cid, d.port, err)
		case <-time.After(pause):
		}
	}
}

// try makes one attempt: connect, read the hello, check the CID.
func (d *guestDialer) try(attempt time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, attempt)
	defer cancel()
	c, err := d.dial(ctx, d.port)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	cid, err := protocol.ReadListenHello(c)
	if !stop() {
		err = fmt.Errorf("no hello within %v: %w", attempt, ctx.Err())
	}
	switch {
	case err != nil:
	case cid != d.cid:
		err = fmt.Errorf("the guest answered from CID %d, not %d (its transport reset is not through)", cid, d.cid)
	default:
		return c, nil
	}
	c.Close()
	return nil, err
}

// Close ends the dialling and a waiting Accept.
func (d *guestDialer) Close() error {
	d.setup()
	d.cancel()
	return nil
}

// Addr names the guest's port.
func (d *guestDialer) Addr() net.Addr { return guestAddr{d.cid, d.port} }

type guestAddr struct{ cid, port uint32 }

func (a guestAddr) Network() string { return "vsock" }
func (a guestAddr) String() string  { return fmt.Sprintf("vsock:%d:%d", a.cid, a.port) }

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
