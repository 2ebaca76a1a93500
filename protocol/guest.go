package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// DiagQueue is how many diagnostic lines a Guest buffers for a slow host;
// more are dropped (and counted), so diagnostics never block init.
const DiagQueue = 256

// Guest is the guest side of a session: a control stream and, optionally,
// one stream per data role. It sends the Hellos on creation, then output
// frames, then the Verdict, and waits for the host's Ack. Host requests
// (RequestStacks) arrive on Requests.
type Guest struct {
	ctrl    io.ReadWriter
	cw      *Writer
	streams map[Role]*Writer // data role → its writer (cw when on control)
	closers []io.Closer      // the data streams' connections

	diagMu   sync.Mutex // guards diagQ's closing
	diagEnd  bool
	diagQ    chan string
	diagDone chan struct{}
	dropped  atomic.Int64

	reqs   chan Request
	acked  chan struct{}
	rerr   chan error // the control reader's end (nil = acked)
	ending sync.Once
}

// NewGuest starts a one-connection session on rw: every frame travels on
// it.
func NewGuest(rw io.ReadWriter, agent string) (*Guest, error) {
	return NewGuestStreams(rw, nil, agent)
}

// NewGuestStreams starts a session whose control stream is ctrl and whose
// data roles in data have their own streams (a role missing from data
// travels on ctrl). It sends each data stream's Hello, then the control
// Hello declaring them, and starts reading the control stream for the
// host's Ack and requests. The Guest closes the data streams when they
// end; the caller closes ctrl.
func NewGuestStreams(ctrl io.ReadWriter, data map[Role]io.ReadWriteCloser, agent string) (*Guest, error) {
	g := &Guest{
		ctrl: ctrl, cw: NewWriter(ctrl), streams: map[Role]*Writer{},
		diagQ: make(chan string, DiagQueue), diagDone: make(chan struct{}),
		reqs: make(chan Request, 4), acked: make(chan struct{}), rerr: make(chan error, 1),
	}
	var declared Streams
	for _, r := range DataRoles {
		c, ok := data[r]
		if !ok {
			g.streams[r] = g.cw
			continue
		}
		w := NewWriter(c)
		if err := w.Hello(r, 0, agent); err != nil {
			g.closeData()
			c.Close()
			return nil, fmt.Errorf("send %v hello: %w", r, err)
		}
		g.streams[r] = w
		g.closers = append(g.closers, c)
		declared |= StreamsOf(r)
	}
	if err := g.cw.Hello(RoleControl, declared, agent); err != nil {
		g.closeData()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	go g.readControl()
	go g.pumpDiag()
	return g, nil
}

func (g *Guest) closeData() {
	for _, c := range g.closers {
		c.Close()
	}
}

// readControl reads the host's frames: requests until the Ack.
func (g *Guest) readControl() {
	r := NewReader(g.ctrl)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			g.rerr <- err
			return
		}
		switch f.Type {
		case FrameAck:
			if len(f.Payload) != 0 {
				g.rerr <- fmt.Errorf("%w: ack with %d payload bytes", ErrBadFrame, len(f.Payload))
				return
			}
			close(g.acked)
			return
		case FrameRequest:
			req, err := DecodeRequest(f.Payload)
			if err != nil {
				g.rerr <- err
				return
			}
			select {
			case g.reqs <- req:
			default: // the same request is already pending
			}
		default:
			g.rerr <- fmt.Errorf("%w: %v from the host", ErrUnexpectedFrame, f.Type)
			return
		}
	}
}

// Requests delivers the host's requests.
func (g *Guest) Requests() <-chan Request { return g.reqs }

// Writer returns the control stream's frame Writer (safe for concurrent
// use).
func (g *Guest) Writer() *Writer { return g.cw }

// Stream returns the Writer of data role r (the control Writer when r has
// no stream of its own).
func (g *Guest) Stream(r Role) *Writer { return g.streams[r] }

// Stdout returns an io.Writer sending Stdout frames.
func (g *Guest) Stdout() io.Writer { return g.streams[RoleOutput].Stream(FrameStdout) }

// Stderr returns an io.Writer sending Stderr frames.
func (g *Guest) Stderr() io.Writer { return g.streams[RoleOutput].Stream(FrameStderr) }

// Diag queues one diagnostic line; it never blocks: when DiagQueue lines
// wait already, the line is dropped and counted (see Dropped).
func (g *Guest) Diag(line string) error {
	g.diagMu.Lock()
	defer g.diagMu.Unlock()
	if g.diagEnd {
		return ErrClosed
	}
	select {
	case g.diagQ <- line:
		return nil
	default:
		g.dropped.Add(1)
		return errDiagDropped
	}
}

var errDiagDropped = errors.New("protocol: diagnostic dropped (queue full)")

// Dropped returns how many diagnostic lines Diag dropped.
func (g *Guest) Dropped() int64 { return g.dropped.Load() }

func (g *Guest) pumpDiag() {
	defer close(g.diagDone)
	w := g.streams[RoleDiag]
	for line := range g.diagQ {
		if err := w.Diag(line); err != nil {
			for range g.diagQ { // drain so Diag callers never block
			}
			return
		}
	}
}

// Event sends one test2json line.
func (g *Guest) Event(line []byte) error { return g.streams[RoleEvents].Event(line) }

// File sends one output file (see Writer.File).
func (g *Guest) File(name string, r io.Reader) (int64, error) {
	return g.streams[RoleFiles].File(name, r)
}

// endStreams ends the diagnostics queue and every data stream; it returns
// a channel closed once everything that travels on the control stream was
// flushed (data streams of their own end in the background, so a stuck one
// never delays the verdict).
func (g *Guest) endStreams() <-chan struct{} {
	flushed := make(chan struct{})
	g.ending.Do(func() {
		g.diagMu.Lock()
		g.diagEnd = true
		close(g.diagQ)
		g.diagMu.Unlock()
		onCtrl := g.streams[RoleDiag] == g.cw
		go func() {
			<-g.diagDone
			if onCtrl {
				close(flushed)
			}
			for _, r := range DataRoles {
				if w := g.streams[r]; w != g.cw {
					go func(w *Writer) { _ = w.End() }(w)
				}
			}
		}()
		if !onCtrl {
			close(flushed)
		}
	})
	return flushed
}

// Finish ends the data streams, sends the verdict on the control stream
// and waits until the host's Ack arrives or ctx is done (then it fails with
// ErrNoAck). Everything is bounded by ctx, so a stuck transport never
// blocks the caller past it; a goroutine may stay blocked on a stream until
// the transport closes. Nothing may be sent after Finish.
func (g *Guest) Finish(ctx context.Context, v Verdict) error {
	select {
	case <-g.endStreams():
	case <-ctx.Done():
		return fmt.Errorf("%w: %v (flushing diagnostics)", ErrNoAck, ctx.Err())
	}
	sent := make(chan error, 1)
	go func() { sent <- g.cw.Verdict(v) }()
	select {
	case err := <-sent:
		if err != nil {
			return fmt.Errorf("send verdict: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("%w: %v (sending the verdict)", ErrNoAck, ctx.Err())
	}
	select {
	case <-g.acked:
		return nil
	case err := <-g.rerr:
		if errors.Is(err, ErrUnexpectedFrame) || errors.Is(err, ErrBadFrame) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrNoAck, err)
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrNoAck, ctx.Err())
	}
}

// Close closes the data streams (the caller closes the control stream).
func (g *Guest) Close() error {
	g.closeData()
	return nil
}
