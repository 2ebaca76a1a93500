package runner

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// GuestBusybox is where ShellBusybox lands in the guest.
const GuestBusybox = "/bin/busybox"

// DebugDialTimeout bounds connecting to the guest's debug server.
const DebugDialTimeout = 10 * time.Second

// ErrNoBusybox: -shell needs a static busybox and none was found.
var ErrNoBusybox = errors.New("no static busybox for the shell")

// FindBusybox returns a static busybox for the guest arch: explicit if
// set, else /bin/busybox when it is static (Debian's busybox-static).
func FindBusybox(explicit string) (string, error) {
	cands := []string{explicit}
	if explicit == "" {
		cands = []string{"/bin/busybox", "/usr/bin/busybox"}
	}
	var why []string
	for _, p := range cands {
		if err := CheckStatic(p); err != nil {
			why = append(why, err.Error())
			continue
		}
		if f, err := elf.Open(p); err == nil {
			f.Close()
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (%v): the guest has no shell of its own; install a static busybox "+
		"(apt-get download busybox-static && dpkg-deb -x busybox-static_*.deb DIR) and pass -shell-busybox DIR/bin/busybox, "+
		"or run a guest binary with -command", ErrNoBusybox, why)
}

// runDebug runs o.Command in the guest over the debug connection, with the
// host's Stdin as input (raw mode when Shell and a terminal) and Stdout as
// output; the guest waits for the Ack until it returns.
func (s *vmSession) runDebug() {
	o := s.o
	ctx, cancel := context.WithTimeout(context.Background(), DebugDialTimeout)
	c, err := s.dialGuest(ctx, protocol.DefaultDebugPort)
	cancel()
	if err != nil {
		fmt.Fprintf(o.Log, "invm: debug: %v\n", err)
		return
	}
	defer c.Close()
	req := protocol.DebugRequest{Argv: o.Command, TTY: o.Shell}
	in := o.Stdin
	if in == nil {
		in = os.Stdin
	}
	if f, ok := in.(*os.File); ok && o.Shell {
		if rows, cols, ok := termSize(f); ok {
			req.Rows, req.Cols = rows, cols
		}
		if restore, err := makeRaw(f); err == nil {
			defer restore()
		}
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(o.Log, "invm: debug: %v\n", err)
		return
	}
	fmt.Fprintf(o.Log, "invm: debug: running %q in the guest (it powers off when this ends)\r\n", o.Command)
	done := make(chan struct{})
	defer close(done)
	go func() {
		// The run's bounds hold here too: the host timeout or a stop ends
		// the command.
		select {
		case <-s.ctx.Done():
			c.Close()
		case <-done:
		}
	}()
	// No half-close at the end of the input: vhost-device-vsock turns it
	// into a full close and the command's output would be lost (with
	// -command < /dev/null, at once). The command ends on its own, or at
	// the run's timeout.
	go func() { _, _ = io.Copy(c, in) }()
	_, _ = io.Copy(o.Stdout, c)
}

// dialGuest connects to a vsock port of the guest over the transport.
func (s *vmSession) dialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	if s.dial == nil {
		return nil, fmt.Errorf("the %s transport cannot connect to the guest", s.transport)
	}
	return s.dial(ctx, port)
}
