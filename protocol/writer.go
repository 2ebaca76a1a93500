package protocol

import (
	"fmt"
	"io"
	"sync"
)

// Writer encodes frames onto a stream. It is safe for concurrent use: every
// frame goes out in one Write call under a lock, so frames from several
// goroutines (stdout and stderr pumps, diagnostics) never interleave.
// Write errors are sticky: after one, every method returns an error wrapping
// ErrClosed.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer encoding frames onto w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteFrame sends one frame of type t with payload p.
func (w *Writer) WriteFrame(t FrameType, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	buf, err := AppendFrame(w.buf[:0], t, p)
	if err != nil {
		return err // the caller's mistake; the stream is still fine
	}
	w.buf = buf
	if _, err := w.w.Write(buf); err != nil {
		w.err = fmt.Errorf("%w: write %v: %v", ErrClosed, t, err)
		return w.err
	}
	if cap(w.buf) > 2*(HeaderSize+MaxChunk) {
		w.buf = nil // do not keep a big event or verdict buffer around
	}
	return nil
}

// Hello sends the Hello frame of a stream of role r for Version; streams
// is the set of data streams (control stream only).
func (w *Writer) Hello(r Role, streams Streams, agent string) error {
	return w.WriteFrame(FrameHello, EncodeHello(Hello{Version: Version, Role: r, Streams: streams, Agent: agent}))
}

// End ends a data stream: after it, every write fails with ErrClosed
// (a late writer never puts a frame after the End).
func (w *Writer) End() error {
	err := w.WriteFrame(FrameEnd, nil)
	w.mu.Lock()
	if w.err == nil {
		w.err = fmt.Errorf("%w: stream ended", ErrClosed)
	}
	w.mu.Unlock()
	return err
}

// Request sends a request to the guest (host side, control stream).
func (w *Writer) Request(r Request) error {
	return w.WriteFrame(FrameRequest, []byte{byte(r)})
}

// File sends the file read from r as output file name (relative path, see
// ValidOutputPath), in chunks of MaxFileChunk bytes (one empty chunk for an
// empty file). It returns the number of bytes sent.
func (w *Writer) File(name string, r io.Reader) (int64, error) {
	if err := ValidOutputPath(name); err != nil {
		return 0, err
	}
	buf := make([]byte, MaxFileChunk)
	var n int64
	for first := true; ; first = false {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 || first {
			p, err := EncodeFileChunk(FileChunk{Path: name, Data: buf[:m]})
			if err != nil {
				return n, err
			}
			if err := w.WriteFrame(FrameFile, p); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("read output file %s: %w", name, rerr)
		}
	}
}

// Verdict sends v.
func (w *Writer) Verdict(v Verdict) error {
	p, err := EncodeVerdict(v)
	if err != nil {
		return err
	}
	return w.WriteFrame(FrameVerdict, p)
}

// Event sends one test2json line (a trailing newline is dropped).
func (w *Writer) Event(line []byte) error {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return w.WriteFrame(FrameEvent, line)
}

// Diag sends one diagnostic line, cut to MaxDiag bytes.
func (w *Writer) Diag(line string) error {
	return w.WriteFrame(FrameDiag, []byte(truncateUTF8(line, MaxDiag)))
}

// Ack sends the verdict acknowledgement (host side).
func (w *Writer) Ack() error {
	return w.WriteFrame(FrameAck, nil)
}

// Stream returns an io.Writer that sends everything written to it as frames
// of type t (FrameStdout or FrameStderr), split into chunks of at most
// MaxChunk bytes.
func (w *Writer) Stream(t FrameType) io.Writer {
	return streamWriter{w: w, t: t}
}

// Err returns the sticky write error, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

type streamWriter struct {
	w *Writer
	t FrameType
}

func (s streamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := p
		if len(c) > MaxChunk {
			c = c[:MaxChunk]
		}
		if err := s.w.WriteFrame(s.t, c); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}
