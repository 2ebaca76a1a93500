package runner

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// TestGuestDialer: the dialler keeps trying until the guest answers with
// the run's CID, dropping connections that fail, that answer from the
// template's CID or garbage, or that never answer; the first good one is
// the only one.
func TestGuestDialer(t *testing.T) {
	type answer struct {
		dialErr error
		hello   string // written by the guest; "" writes nothing
	}
	hello := func(cid uint32) string {
		var b strings.Builder
		_ = protocol.WriteListenHello(&b, cid)
		return b.String()
	}
	answers := []answer{
		{dialErr: errors.New("connection reset")}, // not listening yet
		{hello: hello(10)},                        // the template's CID: the reset is not through
		{hello: "garbage, not a hello at all...."},
		{}, // silent: the attempt's bound ends it
		{hello: hello(20)},
	}
	var ports []uint32
	var served []net.Conn
	d := &guestDialer{cid: 20, port: protocol.TemplateListenPort, attempt: 50 * time.Millisecond, pause: time.Millisecond,
		dial: func(ctx context.Context, port uint32) (net.Conn, error) {
			ports = append(ports, port)
			a := answers[len(ports)-1]
			if a.dialErr != nil {
				return nil, a.dialErr
			}
			host, guest := net.Pipe()
			served = append(served, host)
			go func() {
				if a.hello != "" {
					_, _ = io.WriteString(guest, a.hello)
				}
				_, _ = io.Copy(io.Discard, guest) // until the host closes
			}()
			return host, nil
		}}
	c, err := d.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != len(answers) || c != served[len(served)-1] {
		t.Fatalf("%d dials, accepted conn %d of %d: want the last of %d", len(ports), len(served), len(served), len(answers))
	}
	for _, p := range ports {
		if p != protocol.TemplateListenPort {
			t.Errorf("dialled port %d, want %d", p, protocol.TemplateListenPort)
		}
	}
	for i, conn := range served[:len(served)-1] {
		if _, err := conn.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("dropped conn %d: write = %v, want it closed", i, err)
		}
	}
	// Every stream travels on the one connection: a second Accept waits
	// for Close.
	second := make(chan error, 1)
	go func() { _, err := d.Accept(); second <- err }()
	select {
	case err := <-second:
		t.Fatalf("second Accept returned %v before Close", err)
	case <-time.After(20 * time.Millisecond):
	}
	d.Close()
	if err := <-second; !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept after Close = %v, want net.ErrClosed", err)
	}
	c.Close()
}

// TestGuestDialerClosed: a guest that never answers leaves Accept
// dialling until Close, whose error names the CID and the last attempt.
func TestGuestDialerClosed(t *testing.T) {
	d := &guestDialer{cid: 77, port: 9, attempt: 10 * time.Millisecond, pause: time.Millisecond,
		dial: func(ctx context.Context, port uint32) (net.Conn, error) { return nil, errors.New("no such guest") }}
	got := make(chan error, 1)
	go func() { _, err := d.Accept(); got <- err }()
	time.Sleep(30 * time.Millisecond)
	d.Close()
	select {
	case err := <-got:
		if !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "guest CID 77, port 9") || !strings.Contains(err.Error(), "no such guest") {
			t.Errorf("Accept = %v, want net.ErrClosed naming the CID, port and last attempt", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not end after Close")
	}
}
