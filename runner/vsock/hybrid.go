package vsock

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// DialGuest connects to port of the guest through the daemon's host-side
// socket (UDSPath(dir)) with the hybrid-vsock handshake of
// vhost-device-vsock and Firecracker: the host writes "CONNECT <port>\n"
// and the daemon answers "OK <host port>\n" once the guest accepted.
func DialGuest(ctx context.Context, dir string, port uint32) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", UDSPath(dir))
	if err != nil {
		return nil, fmt.Errorf("dial guest port %d: %w", port, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial guest port %d: %w", port, err)
	}
	br := bufio.NewReaderSize(c, 64)
	line, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dial guest port %d: no answer to CONNECT (is the guest listening?): %w", port, err)
	}
	if _, err := ParseConnectReply(line); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial guest port %d: %w", port, err)
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 { // the guest spoke first: keep its bytes
		b, _ := br.Peek(br.Buffered())
		return &prefixConn{Conn: c, prefix: append([]byte(nil), b...)}, nil
	}
	return c, nil
}

// ParseConnectReply parses the daemon's "OK <port>\n" answer.
func ParseConnectReply(line string) (uint32, error) {
	rest, ok := strings.CutPrefix(line, "OK ")
	if !ok || !strings.HasSuffix(rest, "\n") {
		return 0, fmt.Errorf("bad CONNECT reply %q", clip(line))
	}
	p, err := strconv.ParseUint(strings.TrimSuffix(rest, "\n"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad CONNECT reply %q", clip(line))
	}
	return uint32(p), nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
