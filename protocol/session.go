package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Defaults of CollectOptions fields left zero.
const (
	// DefaultLinger is how long Collect keeps reading the control stream
	// after the Ack, by default, to make sure nothing follows the verdict.
	DefaultLinger = 2 * time.Second
	// DefaultDrainTimeout bounds the wait, after the verdict, for every
	// declared data stream to end.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultMaxFileBytes bounds the total size of the output files.
	DefaultMaxFileBytes = 256 << 20
	// DefaultMaxFiles bounds the number of output files plus the
	// directories they need (see OutputTally).
	DefaultMaxFiles = 1000
	// AckWriteTimeout bounds how long Collect waits for its Ack to be
	// written before it returns (and its connections close).
	AckWriteTimeout = time.Second
	// MaxStreams is the most connections one session may open: the control
	// stream and one per data role.
	MaxStreams = 5
)

// FileSink receives the test's output files (see DirSink).
type FileSink interface {
	// Create creates the output file at the relative, already checked path
	// name (ValidOutputPath); it fails if the file exists.
	Create(name string) (io.WriteCloser, error)
}

// CollectOptions says where Collect forwards the session's output. Nil
// writers discard.
type CollectOptions struct {
	// Stdout receives the test's stdout chunks, live.
	Stdout io.Writer
	// Stderr receives the test's stderr chunks, live. Stdout and Stderr are
	// written from the same goroutine.
	Stderr io.Writer
	// Events receives each test2json Event line followed by "\n".
	Events io.Writer
	// Diag receives each init diagnostic line followed by "\n".
	Diag io.Writer
	// Files receives the test's output files; nil checks and discards them.
	Files FileSink
	// MaxFileBytes and MaxFiles bound the output files (MaxFiles counts
	// their directories too, see OutputTally); 0 means
	// DefaultMaxFileBytes and DefaultMaxFiles. Going over fails the session
	// with ErrBadFile.
	MaxFileBytes int64
	MaxFiles     int
	// Linger bounds how long Collect keeps reading after it sent the Ack, to
	// catch frames after the verdict; the end of the stream ends it earlier
	// (the guest powers off). 0 means DefaultLinger; negative means do not
	// read after the Ack at all.
	Linger time.Duration
	// DrainTimeout bounds the wait for the declared data streams to end
	// after the verdict; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Stacks, when it becomes ready (closed) before the verdict, makes the
	// host send RequestStacks to the guest once.
	Stacks <-chan struct{}
	// OnHello, if set, is called once, when the first stream's Hello has
	// been accepted: the guest init is up and speaking. (A connection alone
	// says less: with virtio-serial, QEMU connects before the guest boots.)
	OnHello func(Hello)
	// OnVerdict, if set, is called as soon as a well-formed verdict arrives,
	// before the data streams are drained and before the Ack.
	OnVerdict func(Verdict)
	// BeforeAck, if set, runs after the verdict and the drain and before
	// the Ack (the guest stays up until it returns), e.g. for a debug shell.
	BeforeAck func()
}

// SessionResult is the outcome of a session as seen by the host (the
// collector's result; the runner's whole run is runner.Result).
type SessionResult struct {
	// Pass is true only when the session was well-formed and the guest's
	// Verdict said pass.
	Pass bool
	// Hello is the guest's control Hello (zero if none was received).
	Hello Hello
	// Verdict is the guest's verdict, nil when none was received or it did
	// not decode.
	Verdict *Verdict
	// Reason explains a failure: the session error, else the verdict's
	// reason. Empty on a pass.
	Reason string
	// Frames counts the frames received on all streams.
	Frames int
	// Files and FileBytes count the output files received.
	Files     int
	FileBytes int64
}

// ExitCode returns the test's exit code from the verdict, or -1 when there
// is no verdict.
func (r SessionResult) ExitCode() int {
	if r.Verdict == nil {
		return -1
	}
	return r.Verdict.ExitCode
}

// Acceptor yields the guest's connections; a net.Listener is one, with C
// net.Conn. (The package does not import net: the guest init links it, and
// package net's initialisers cost every guest boot.)
type Acceptor[C io.ReadWriteCloser] interface {
	Accept() (C, error)
}

// Collect runs the host side of a one-connection session on rw: every frame
// travels on the control stream (the guest's Hello declares no data
// streams). See CollectStreams for the rules; the caller owns rw.
func Collect(ctx context.Context, rw io.ReadWriter, opts CollectOptions) (SessionResult, error) {
	conns := make(chan io.ReadWriter, 1)
	conns <- rw
	res, err := collect(ctx, conns, opts, true)
	if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Unix(1, 0))
	}
	return finishResult(res, err)
}

// CollectStreams runs the host side of a session whose streams arrive on
// ln: it accepts up to MaxStreams connections, reads each one's Hello and
// then every stream concurrently, forwarding output live to opts; it
// reads the Verdict from the control stream, waits (at most
// opts.DrainTimeout) for every data stream the control Hello declared to
// end with End, runs opts.BeforeAck, sends the Ack and reads the control
// stream on for opts.Linger to check that nothing follows.
//
// The error is non-nil when the session itself is broken: it wraps
// ErrNoVerdict (streams ended or ctx done before a verdict), ErrTruncated,
// ErrBadFrame, ErrFrameTooLarge, ErrUnknownFrame, ErrBadHello, ErrVersion,
// ErrUnexpectedFrame, ErrBadVerdict, ErrDuplicateVerdict,
// ErrFrameAfterVerdict, ErrStream or ErrBadFile; SessionResult.Pass is then
// false. A well-formed failing verdict is not an error: SessionResult.Pass is
// false and SessionResult.Verdict says why.
//
// CollectStreams closes every connection it accepted before it returns;
// the caller closes ln (which ends the accepting goroutine).
func CollectStreams[C io.ReadWriteCloser](ctx context.Context, ln Acceptor[C], opts CollectOptions) (SessionResult, error) {
	conns := make(chan io.ReadWriter)
	var mu sync.Mutex
	var accepted []C
	stop := make(chan struct{})
	go func() {
		for range MaxStreams + 1 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
			select {
			case conns <- c:
			case <-stop:
				c.Close()
				return
			}
		}
	}()
	res, err := collect(ctx, conns, opts, false)
	close(stop)
	mu.Lock()
	for _, c := range accepted {
		c.Close()
	}
	mu.Unlock()
	return finishResult(res, err)
}

func finishResult(res SessionResult, err error) (SessionResult, error) {
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

// event is what a stream goroutine tells the collector's loop.
type event struct {
	stream *stream
	kind   eventKind
	hello  Hello
	frame  Frame
	err    error
}

type eventKind int

const (
	evHello eventKind = iota // hello decoded (err set if bad)
	evFrame                  // a control-stream frame
	evEnd                    // a data stream ended with End
	evErr                    // a stream failed or ended without End
)

// stream is one accepted connection.
type stream struct {
	rw       io.ReadWriter
	role     Role
	frames   int
	accepted chan struct{} // closed when the loop accepted the Hello
}

// collector is the host-side state of one Collect (the protocol's
// session, seen from the host).
type collector struct {
	opts     CollectOptions
	single   bool
	events   chan event
	done     chan struct{}
	control  *stream
	controlW *Writer // host → guest frames (Ack, Request), one Writer so they never interleave
	roles    map[Role]*stream
	ended    map[Role]bool
	declared Streams
	files    *fileState
	framesMu sync.Mutex
	frames   int
	// sinkMu is held (read) while a stream goroutine writes to a sink and
	// (write) when the session ends, so nothing is written to the caller's
	// writers after Collect returned.
	sinkMu      sync.RWMutex
	over        bool
	controlGone bool
	hello       bool // OnHello was called
}

// helloSeen calls OnHello for the session's first accepted Hello.
func (s *collector) helloSeen(h Hello) {
	if !s.hello && s.opts.OnHello != nil {
		s.hello = true
		s.opts.OnHello(h)
	}
}

func (s *collector) send(e event) bool {
	select {
	case s.events <- e:
		return true
	case <-s.done:
		return false
	}
}

func (s *collector) countFrame() {
	s.framesMu.Lock()
	s.frames++
	s.framesMu.Unlock()
}

// read runs one stream: its Hello, then its frames. Data streams forward
// their frames themselves (so each stream is read concurrently and a slow
// sink holds up only its own stream); control frames go to the loop.
func (s *collector) read(st *stream) {
	r := NewReader(st.rw)
	f, err := r.ReadFrame()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: stream closed before its hello", ErrNoVerdict)
		}
		s.send(event{stream: st, kind: evHello, err: err})
		return
	}
	s.countFrame()
	if f.Type != FrameHello {
		s.send(event{stream: st, kind: evHello, err: fmt.Errorf("%w: first frame is %v", ErrBadHello, f.Type)})
		return
	}
	h, err := DecodeHello(f.Payload)
	if err == nil && h.Version != Version {
		err = fmt.Errorf("%w: guest speaks %d, host %d", ErrVersion, h.Version, Version)
	}
	if err == nil && s.single && h.Role != RoleControl {
		err = fmt.Errorf("%w: %v stream on a one-connection session", ErrStream, h.Role)
	}
	if err == nil && s.single && h.Streams != 0 {
		err = fmt.Errorf("%w: one-connection session declares streams %#02x", ErrStream, uint8(h.Streams))
	}
	st.role = h.Role
	if !s.send(event{stream: st, kind: evHello, hello: h, err: err}) || err != nil {
		return
	}
	select {
	case <-st.accepted:
	case <-s.done:
		return
	}
	if h.Role == RoleControl {
		for {
			f, err := r.ReadFrame()
			if err != nil {
				s.send(event{stream: st, kind: evErr, err: err})
				return
			}
			s.countFrame()
			if !s.send(event{stream: st, kind: evFrame, frame: f}) {
				return
			}
		}
	}
	for {
		f, err := r.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: %v stream ended without End after %d frames", ErrStream, st.role, st.frames)
			}
			s.send(event{stream: st, kind: evErr, err: err})
			return
		}
		s.countFrame()
		st.frames++
		switch {
		case f.Type == FrameEnd:
			if len(f.Payload) != 0 {
				s.send(event{stream: st, kind: evErr, err: fmt.Errorf("%w: end with %d payload bytes", ErrBadFrame, len(f.Payload))})
				return
			}
			if !s.send(event{stream: st, kind: evEnd}) {
				return
			}
			// Nothing may follow End; the end of the connection is normal.
			if f, err := r.ReadFrame(); err == nil {
				s.send(event{stream: st, kind: evErr, err: fmt.Errorf("%w: %v after the end of the %v stream", ErrStream, f.Type, st.role)})
			} else if isDecodeError(err) {
				s.send(event{stream: st, kind: evErr, err: fmt.Errorf("after the end of the %v stream: %w", st.role, err)})
			}
			return
		case st.role.Carries(f.Type):
			if err := s.forward(f); err != nil {
				s.send(event{stream: st, kind: evErr, err: err})
				return
			}
		default:
			s.send(event{stream: st, kind: evErr, err: fmt.Errorf("%w: %v on the %v stream", ErrUnexpectedFrame, f.Type, st.role)})
			return
		}
	}
}

// forward delivers a data frame to its sink.
func (s *collector) forward(f Frame) error {
	s.sinkMu.RLock()
	defer s.sinkMu.RUnlock()
	if s.over {
		return nil
	}
	switch f.Type {
	case FrameStdout:
		write(s.opts.Stdout, f.Payload, false)
	case FrameStderr:
		write(s.opts.Stderr, f.Payload, false)
	case FrameEvent:
		write(s.opts.Events, f.Payload, true)
	case FrameDiag:
		write(s.opts.Diag, f.Payload, true)
	case FrameFile:
		return s.files.chunk(f.Payload)
	}
	return nil
}

func collect(ctx context.Context, conns <-chan io.ReadWriter, opts CollectOptions, single bool) (res SessionResult, err error) {
	s := &collector{
		opts: opts, single: single,
		events: make(chan event), done: make(chan struct{}),
		roles: map[Role]*stream{}, ended: map[Role]bool{},
		files: newFileState(opts),
	}
	defer func() {
		close(s.done)
		s.sinkMu.Lock()
		s.over = true
		s.sinkMu.Unlock()
		if ferr := s.files.close(); ferr != nil && err == nil {
			err = ferr
		}
		s.framesMu.Lock()
		res.Frames = s.frames
		s.framesMu.Unlock()
		res.Files, res.FileBytes = s.files.tally.Files, s.files.tally.Bytes
	}()
	nstreams := 0
	stacksSent := false
	var drain, linger <-chan time.Time
	acked := false
	var ackSent chan struct{}
	defer func() {
		// The connections close when Collect returns: let the Ack out first,
		// a stuck transport for a bounded time only.
		if ackSent != nil {
			select {
			case <-ackSent:
			case <-time.After(AckWriteTimeout):
			}
		}
	}()
	ack := func() {
		if acked {
			return
		}
		acked = true
		if opts.BeforeAck != nil {
			opts.BeforeAck()
		}
		// A stuck transport must not block Collect: the guest bounds its
		// wait for the Ack anyway.
		ackSent = make(chan struct{})
		go func(w *Writer) { _ = w.Ack(); close(ackSent) }(s.controlW)
		if opts.Linger < 0 {
			linger = closedTime
			return
		}
		d := opts.Linger
		if d == 0 {
			d = DefaultLinger
		}
		t := time.NewTimer(d)
		linger = t.C
	}
	allEnded := func() bool {
		for _, r := range DataRoles {
			if s.declared.Has(r) && !s.ended[r] {
				return false
			}
		}
		return true
	}
	pending := func() []Role {
		var p []Role
		for _, r := range DataRoles {
			if s.declared.Has(r) && !s.ended[r] {
				p = append(p, r)
			}
		}
		return p
	}
	for {
		var stacks <-chan struct{} // asked for once the control stream is up
		if s.control != nil && !stacksSent && res.Verdict == nil {
			stacks = opts.Stacks
		}
		select {
		case c := <-conns:
			nstreams++
			if nstreams > MaxStreams {
				return res, fmt.Errorf("%w: more than %d connections", ErrStream, MaxStreams)
			}
			go s.read(&stream{rw: c, accepted: make(chan struct{})})
			continue
		case <-stacks:
			stacksSent = true
			go func(w *Writer) { _ = w.Request(RequestStacks) }(s.controlW)
			continue
		case <-ctx.Done():
			if res.Verdict != nil && acked {
				return res, nil
			}
			if res.Verdict != nil {
				return res, fmt.Errorf("%w: %v while streams %v had not ended", ErrStream, ctx.Err(), pending())
			}
			return res, fmt.Errorf("%w: %v", ErrNoVerdict, ctx.Err())
		case <-drain:
			return res, fmt.Errorf("%w: streams %v did not end within %v of the verdict", ErrStream, pending(), orDefault(opts.DrainTimeout, DefaultDrainTimeout))
		case <-linger:
			return res, nil
		case e := <-s.events:
			if err := s.handle(e, &res); err != nil {
				return res, err
			}
		}
		if res.Verdict != nil && !acked && allEnded() {
			drain = nil
			ack()
		}
		if s.controlGone && acked {
			return res, nil
		}
		if res.Verdict != nil && !acked && drain == nil {
			t := time.NewTimer(orDefault(opts.DrainTimeout, DefaultDrainTimeout))
			defer t.Stop()
			drain = t.C
		}
	}
}

var closedTime = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

// handle applies one stream event to the session; a non-nil error ends it.
func (s *collector) handle(e event, res *SessionResult) error {
	st := e.stream
	switch e.kind {
	case evHello:
		if e.err != nil {
			return e.err
		}
		if e.hello.Role == RoleControl {
			if s.control != nil {
				return fmt.Errorf("%w: second control stream", ErrStream)
			}
			s.control = st
			s.controlW = NewWriter(st.rw)
			res.Hello = e.hello
			s.declared = e.hello.Streams
			for r := range s.roles {
				if !s.declared.Has(r) {
					return fmt.Errorf("%w: %v stream not declared by the control hello", ErrStream, r)
				}
			}
			close(st.accepted)
			s.helloSeen(e.hello)
			return nil
		}
		if s.roles[e.hello.Role] != nil {
			return fmt.Errorf("%w: second %v stream", ErrStream, e.hello.Role)
		}
		if s.control != nil && !s.declared.Has(e.hello.Role) {
			return fmt.Errorf("%w: %v stream not declared by the control hello", ErrStream, e.hello.Role)
		}
		s.roles[e.hello.Role] = st
		close(st.accepted)
		s.helloSeen(e.hello)
		return nil
	case evEnd:
		s.ended[st.role] = true
		return nil
	case evErr:
		if st.role == RoleControl && res.Verdict != nil && !isDecodeError(e.err) {
			// EOF or transport gone after the verdict: the normal end once
			// the data streams ended too.
			s.controlGone = true
			return nil
		}
		if st.role == RoleControl && errors.Is(e.err, io.EOF) {
			return fmt.Errorf("%w: control stream ended", ErrNoVerdict)
		}
		if st.role == RoleControl {
			return fmt.Errorf("control stream: %w", e.err)
		}
		return fmt.Errorf("%v stream: %w", st.role, e.err)
	}
	// evFrame: control stream.
	f := e.frame
	if res.Verdict != nil {
		if f.Type == FrameVerdict {
			return fmt.Errorf("%w", ErrDuplicateVerdict)
		}
		return fmt.Errorf("%w: %v", ErrFrameAfterVerdict, f.Type)
	}
	switch role := s.declared.CarriedBy(f.Type); {
	case f.Type == FrameVerdict:
		v, err := DecodeVerdict(f.Payload)
		if err != nil {
			return err
		}
		res.Verdict = &v
		if s.opts.OnVerdict != nil {
			s.opts.OnVerdict(v)
		}
		return nil
	case role == RoleControl:
		return s.forward(f)
	default:
		return fmt.Errorf("%w: %v from the guest on the control stream", ErrUnexpectedFrame, f.Type)
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

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
