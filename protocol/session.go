package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultLinger is how long Collect keeps reading after the Ack, by default,
// to make sure nothing follows the verdict.
const DefaultLinger = 2 * time.Second

// CollectOptions says where Collect forwards the session's output. Nil
// writers discard.
type CollectOptions struct {
	// Stdout receives the test's stdout chunks, live.
	Stdout io.Writer
	// Stderr receives the test's stderr chunks, live.
	Stderr io.Writer
	// Events receives each test2json Event line followed by "\n".
	Events io.Writer
	// Diag receives each init diagnostic line followed by "\n".
	Diag io.Writer
	// Linger bounds how long Collect keeps reading after it sent the Ack, to
	// catch frames after the verdict; the end of the stream ends it earlier
	// (the guest powers off). 0 means DefaultLinger; negative means do not
	// read after the Ack at all.
	Linger time.Duration
}

// Result is the outcome of a session as seen by the host.
type Result struct {
	// Pass is true only when the session was well-formed and the guest's
	// Verdict said pass.
	Pass bool
	// Hello is the guest's Hello (zero if none was received).
	Hello Hello
	// Verdict is the guest's verdict, nil when none was received or it did
	// not decode.
	Verdict *Verdict
	// Reason explains a failure: the session error, else the verdict's
	// reason. Empty on a pass.
	Reason string
	// Frames counts the frames received.
	Frames int
}

// ExitCode returns the test's exit code from the verdict, or -1 when there
// is no verdict.
func (r Result) ExitCode() int {
	if r.Verdict == nil {
		return -1
	}
	return r.Verdict.ExitCode
}

// Collect runs the host side of a session on rw: it reads the Hello, forwards
// output frames live to opts, reads the Verdict, sends the Ack and then reads
// on for opts.Linger to check that nothing follows.
//
// The error is non-nil when the session itself is broken: it wraps
// ErrNoVerdict (stream ended or ctx done before a verdict), ErrTruncated,
// ErrBadFrame, ErrFrameTooLarge, ErrUnknownFrame, ErrBadHello, ErrVersion,
// ErrUnexpectedFrame, ErrBadVerdict, ErrDuplicateVerdict or
// ErrFrameAfterVerdict; Result.Pass is then false. A well-formed failing
// verdict is not an error: Result.Pass is false and Result.Verdict says why.
//
// Collect may return while a goroutine is still blocked reading rw (context
// done, linger over); closing the transport releases it. If rw has a
// SetReadDeadline method, Collect sets a past deadline on return.
func Collect(ctx context.Context, rw io.ReadWriter, opts CollectOptions) (Result, error) {
	res, err := collect(ctx, rw, opts)
	if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Unix(1, 0))
	}
	switch {
	case err != nil:
		res.Pass = false
		res.Reason = err.Error()
	case res.Verdict.Pass:
		res.Pass = true
	default:
		res.Reason = res.Verdict.Reason
		if res.Reason == "" {
			res.Reason = fmt.Sprintf("test failed with exit code %d", res.Verdict.ExitCode)
		}
	}
	return res, err
}

type readResult struct {
	f   Frame
	err error
}

func collect(ctx context.Context, rw io.ReadWriter, opts CollectOptions) (Result, error) {
	var res Result
	frames := make(chan readResult)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		r := NewReader(rw)
		for {
			f, err := r.ReadFrame()
			select {
			case frames <- readResult{f, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var linger <-chan time.Time
	for {
		var rr readResult
		select {
		case rr = <-frames:
		case <-ctx.Done():
			if res.Verdict != nil {
				return res, nil
			}
			return res, fmt.Errorf("%w: %v after %d frames", ErrNoVerdict, ctx.Err(), res.Frames)
		case <-linger:
			return res, nil
		}
		if rr.err != nil {
			if res.Verdict != nil && !isDecodeError(rr.err) {
				return res, nil // EOF or transport gone after the verdict: the normal end
			}
			if errors.Is(rr.err, io.EOF) {
				return res, fmt.Errorf("%w: stream ended after %d frames", ErrNoVerdict, res.Frames)
			}
			return res, fmt.Errorf("after %d frames: %w", res.Frames, rr.err)
		}
		res.Frames++
		f := rr.f
		if res.Frames == 1 {
			if f.Type != FrameHello {
				return res, fmt.Errorf("%w: first frame is %v", ErrBadHello, f.Type)
			}
			h, err := DecodeHello(f.Payload)
			if err != nil {
				return res, err
			}
			res.Hello = h
			if h.Version != Version {
				return res, fmt.Errorf("%w: guest speaks %d, host %d", ErrVersion, h.Version, Version)
			}
			continue
		}
		if res.Verdict != nil {
			if f.Type == FrameVerdict {
				return res, fmt.Errorf("%w (frame %d)", ErrDuplicateVerdict, res.Frames)
			}
			return res, fmt.Errorf("%w: %v (frame %d)", ErrFrameAfterVerdict, f.Type, res.Frames)
		}
		switch f.Type {
		case FrameStdout:
			write(opts.Stdout, f.Payload, false)
		case FrameStderr:
			write(opts.Stderr, f.Payload, false)
		case FrameEvent:
			write(opts.Events, f.Payload, true)
		case FrameDiag:
			write(opts.Diag, f.Payload, true)
		case FrameVerdict:
			v, err := DecodeVerdict(f.Payload)
			if err != nil {
				return res, fmt.Errorf("frame %d: %w", res.Frames, err)
			}
			res.Verdict = &v
			// A stuck transport must not block Collect: the guest bounds its
			// wait for the Ack anyway.
			go func() { _ = NewWriter(rw).Ack() }()
			if opts.Linger < 0 {
				return res, nil
			}
			d := opts.Linger
			if d == 0 {
				d = DefaultLinger
			}
			t := time.NewTimer(d)
			defer t.Stop()
			linger = t.C
		default:
			return res, fmt.Errorf("%w: %v from the guest (frame %d)", ErrUnexpectedFrame, f.Type, res.Frames)
		}
	}
}

// isDecodeError reports whether err says the stream was garbled (as opposed
// to having ended).
func isDecodeError(err error) bool {
	for _, e := range []error{ErrBadFrame, ErrFrameTooLarge, ErrUnknownFrame, ErrTruncated} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func write(w io.Writer, p []byte, newline bool) {
	if w == nil {
		return
	}
	if newline {
		p = append(p[:len(p):len(p)], '\n')
	}
	_, _ = w.Write(p)
}

// Guest is the guest side of a session: it sends the Hello on creation, then
// output frames, then the Verdict, and waits for the host's Ack.
type Guest struct {
	rw io.ReadWriter
	w  *Writer
}

// NewGuest starts a session on rw by sending the Hello with the given agent
// string.
func NewGuest(rw io.ReadWriter, agent string) (*Guest, error) {
	g := &Guest{rw: rw, w: NewWriter(rw)}
	if err := g.w.Hello(agent); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	return g, nil
}

// Writer returns the session's frame Writer (safe for concurrent use).
func (g *Guest) Writer() *Writer { return g.w }

// Stdout returns an io.Writer sending Stdout frames.
func (g *Guest) Stdout() io.Writer { return g.w.Stream(FrameStdout) }

// Stderr returns an io.Writer sending Stderr frames.
func (g *Guest) Stderr() io.Writer { return g.w.Stream(FrameStderr) }

// Diag sends one diagnostic line.
func (g *Guest) Diag(line string) error { return g.w.Diag(line) }

// Event sends one test2json line.
func (g *Guest) Event(line []byte) error { return g.w.Event(line) }

// Finish sends the verdict and waits for the host's Ack; see SendVerdict.
func (g *Guest) Finish(ctx context.Context, v Verdict) error {
	return SendVerdict(ctx, g.rw, g.w, v)
}

// SendVerdict sends v with w onto rw and waits until the host's Ack arrives
// on rw or ctx is done (then it fails with ErrNoAck). Both the send and the
// wait are bounded by ctx, so a stuck transport never blocks the caller past
// it; a goroutine may stay blocked on rw until the transport closes. Nothing
// may be written to rw after SendVerdict.
func SendVerdict(ctx context.Context, rw io.ReadWriter, w *Writer, v Verdict) error {
	done := make(chan error, 1)
	go func() {
		if err := w.Verdict(v); err != nil {
			done <- fmt.Errorf("send verdict: %w", err)
			return
		}
		r := NewReader(rw)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				done <- fmt.Errorf("%w: %v", ErrNoAck, err)
				return
			}
			if f.Type != FrameAck {
				done <- fmt.Errorf("%w: %v from the host", ErrUnexpectedFrame, f.Type)
				return
			}
			if len(f.Payload) != 0 {
				done <- fmt.Errorf("%w: ack with %d payload bytes", ErrBadFrame, len(f.Payload))
				return
			}
			done <- nil
			return
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrNoAck, ctx.Err())
	}
}
