package guestinit

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// fakeConn records its Close.
type fakeConn struct {
	io.ReadWriter
	closed *atomic.Int32
}

func (c fakeConn) Close() error { c.closed.Add(1); return nil }

func TestDial(t *testing.T) {
	errRefused := errors.New("connection refused")
	vsockCh := protocol.DefaultChannel()
	serialCh := protocol.Channel{Kind: protocol.ChannelSerial, Device: "/dev/vport0p1"}
	tests := []struct {
		name string
		ch   protocol.Channel
		// failControl / failData make the control stream's / every
		// data stream's Open fail.
		failControl, failData bool
		wantOpens             int32
		wantData              int
		wantStreamErrs        int
		wantClosed            int32
	}{
		{name: "vsock: control and every data stream", ch: vsockCh, wantOpens: 5, wantData: 4},
		{name: "vsock: data streams fail, they travel on the control stream", ch: vsockCh, failData: true, wantOpens: 5, wantStreamErrs: 4},
		{name: "vsock: no control stream, the opened data streams are closed", ch: vsockCh, failControl: true, wantOpens: 5, wantClosed: 4},
		{name: "serial: one port", ch: serialCh, wantOpens: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opens, closed atomic.Int32
			var mu sync.Mutex
			var seen []protocol.Channel
			in := &Init{
				// The control stream's context is the one with the long
				// deadline.
				OpenTimeout: time.Hour,
				Open: func(ctx context.Context, ch protocol.Channel) (io.ReadWriteCloser, error) {
					opens.Add(1)
					mu.Lock()
					seen = append(seen, ch)
					mu.Unlock()
					dl, _ := ctx.Deadline()
					control := time.Until(dl) > time.Minute
					if control && tc.failControl || !control && tc.failData {
						return nil, errRefused
					}
					return fakeConn{closed: &closed}, nil
				},
			}
			s := &session{in: in}
			d := <-s.dial(tc.ch)
			if got := opens.Load(); got != tc.wantOpens {
				t.Errorf("%d Opens, want %d", got, tc.wantOpens)
			}
			for _, ch := range seen {
				if ch != tc.ch {
					t.Errorf("opened %+v, want %+v", ch, tc.ch)
				}
			}
			if tc.failControl {
				if !errors.Is(d.err, errRefused) || len(d.data) != 0 {
					t.Errorf("got err %v and %d data streams, want the control's error and none", d.err, len(d.data))
				}
			} else if d.err != nil || d.conn == nil {
				t.Fatalf("control stream: %v", d.err)
			}
			if len(d.data) != tc.wantData || len(d.streamErrs) != tc.wantStreamErrs {
				t.Errorf("%d data streams and %d stream errors, want %d and %d", len(d.data), len(d.streamErrs), tc.wantData, tc.wantStreamErrs)
			}
			for _, r := range protocol.DataRoles {
				if _, ok := d.data[r]; ok && d.streamErrs[r] != nil {
					t.Errorf("%v is both open and failed", r)
				}
			}
			if got := closed.Load(); got != tc.wantClosed {
				t.Errorf("%d connections closed, want %d", got, tc.wantClosed)
			}
		})
	}
}
