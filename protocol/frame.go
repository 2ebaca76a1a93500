package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Version is the protocol version this package speaks. A Hello carrying any
// other version fails the session with ErrVersion. Version 2 added streams
// (Hello roles, FrameEnd), FrameFile and FrameRequest.
const Version uint16 = 2

// Size limits. Every decoded frame is checked against them before its payload
// is allocated.
const (
	// HeaderSize is the size of a frame header in bytes.
	HeaderSize = 12
	// MaxPayload is the largest payload of any frame type (1 MiB).
	MaxPayload = 1 << 20
	// MaxChunk is the largest Stdout or Stderr chunk (32 KiB). Writers split
	// larger writes into several frames.
	MaxChunk = 32 << 10
	// MaxEvent is the largest Event payload: one test2json line (1 MiB).
	MaxEvent = MaxPayload
	// MaxDiag is the largest Diag payload (16 KiB); longer lines are cut.
	MaxDiag = 16 << 10
	// MaxVerdict is the largest encoded Verdict (64 KiB).
	MaxVerdict = 64 << 10
	// MaxAgent is the largest agent string in a Hello (256 bytes).
	MaxAgent = 256
	// MaxReason is the longest Verdict.Reason a Writer sends (8 KiB); longer
	// reasons are cut.
	MaxReason = 8 << 10
	// MaxPath is the longest output file path in a File frame (1 KiB).
	MaxPath = 1 << 10
	// MaxFileChunk is the largest data part of a File frame (32 KiB).
	MaxFileChunk = MaxChunk
)

// Frame magic bytes: "VM".
const (
	magic0 = 0x56
	magic1 = 0x4D
)

// FrameType identifies the kind of a frame.
type FrameType uint8

// Frame types. Values are part of the wire format: never reuse
// or renumber them.
const (
	// FrameHello opens a session (guest → host): magic and version.
	FrameHello FrameType = 1
	// FrameStdout carries a chunk of the test's standard output.
	FrameStdout FrameType = 2
	// FrameStderr carries a chunk of the test's standard error.
	FrameStderr FrameType = 3
	// FrameEvent carries one test2json JSON line.
	FrameEvent FrameType = 4
	// FrameDiag carries one diagnostic line of the guest init.
	FrameDiag FrameType = 5
	// FrameVerdict carries the final Verdict (JSON).
	FrameVerdict FrameType = 6
	// FrameAck (host → guest) acknowledges the verdict.
	FrameAck FrameType = 7
	// FrameEnd (guest → host) ends a data stream cleanly: everything the
	// guest had for it was sent. Empty payload.
	FrameEnd FrameType = 8
	// FrameFile (guest → host) carries a chunk of one of the test's output
	// files (see EncodeFileChunk).
	FrameFile FrameType = 9
	// FrameRequest (host → guest) asks the guest init for something (see
	// Request), on the control stream.
	FrameRequest FrameType = 10
)

var frameNames = map[FrameType]string{
	FrameHello:   "hello",
	FrameStdout:  "stdout",
	FrameStderr:  "stderr",
	FrameEvent:   "event",
	FrameDiag:    "diag",
	FrameVerdict: "verdict",
	FrameAck:     "ack",
	FrameEnd:     "end",
	FrameFile:    "file",
	FrameRequest: "request",
}

// String returns the lower-case name of t, or "type(N)" for unknown types.
func (t FrameType) String() string {
	if s, ok := frameNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Known reports whether t is a frame type of this protocol version.
func (t FrameType) Known() bool {
	_, ok := frameNames[t]
	return ok
}

// MaxPayloadFor returns the payload size limit of frame type t (0 for
// unknown types and for Ack, which has no payload).
func MaxPayloadFor(t FrameType) int {
	switch t {
	case FrameHello:
		return helloFixed + MaxAgent
	case FrameStdout, FrameStderr:
		return MaxChunk
	case FrameEvent:
		return MaxEvent
	case FrameDiag:
		return MaxDiag
	case FrameVerdict:
		return MaxVerdict
	case FrameFile:
		return 2 + MaxPath + MaxFileChunk
	case FrameRequest:
		return 1
	}
	return 0
}

// Sentinel errors. Errors returned by this package wrap one of them (use
// errors.Is).
var (
	// ErrBadFrame: a frame is garbled (bad magic, flags or checksum).
	ErrBadFrame = errors.New("protocol: bad frame")
	// ErrFrameTooLarge: a frame declares a payload above its size limit.
	ErrFrameTooLarge = errors.New("protocol: frame too large")
	// ErrUnknownFrame: a frame type this version does not know.
	ErrUnknownFrame = errors.New("protocol: unknown frame type")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("protocol: truncated frame")
	// ErrBadHello: the first frame is not a well-formed Hello.
	ErrBadHello = errors.New("protocol: bad hello")
	// ErrVersion: the peer speaks another protocol version.
	ErrVersion = errors.New("protocol: unsupported version")
	// ErrUnexpectedFrame: a well-formed frame that is not allowed at this
	// point of the session (e.g. a second Hello, an Ack from the guest).
	ErrUnexpectedFrame = errors.New("protocol: unexpected frame")
	// ErrBadVerdict: the Verdict payload is malformed or inconsistent.
	ErrBadVerdict = errors.New("protocol: bad verdict")
	// ErrNoVerdict: the stream ended (or the context expired) before a Verdict.
	ErrNoVerdict = errors.New("protocol: no verdict")
	// ErrDuplicateVerdict: a second Verdict followed the first.
	ErrDuplicateVerdict = errors.New("protocol: duplicate verdict")
	// ErrFrameAfterVerdict: a frame followed the Verdict.
	ErrFrameAfterVerdict = errors.New("protocol: frame after verdict")
	// ErrNoAck: the host did not acknowledge the verdict in time.
	ErrNoAck = errors.New("protocol: verdict not acknowledged")
	// ErrClosed: the Writer failed earlier or was closed; nothing more is sent.
	ErrClosed = errors.New("protocol: writer closed")
	// ErrStream: a stream broke the stream rules (unknown or duplicate role,
	// a frame type its role does not carry, a frame after its End, an end
	// without End, a declared stream that never ended).
	ErrStream = errors.New("protocol: bad stream")
	// ErrBadFile: an output file chunk is malformed, names a path outside
	// the outputs directory, or exceeds the size limits.
	ErrBadFile = errors.New("protocol: bad output file")
)

// Frame is one decoded frame.
type Frame struct {
	// Type is the frame type.
	Type FrameType
	// Payload is the frame payload; a Reader allocates it per frame, so it
	// stays valid after the next ReadFrame.
	Payload []byte
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// AppendFrame appends the encoding of a frame of type t with payload p to
// dst. It fails with ErrUnknownFrame or ErrFrameTooLarge if the frame would
// not decode.
func AppendFrame(dst []byte, t FrameType, p []byte) ([]byte, error) {
	if !t.Known() {
		return dst, fmt.Errorf("encode %v: %w", t, ErrUnknownFrame)
	}
	if len(p) > MaxPayloadFor(t) {
		return dst, fmt.Errorf("encode %v: %d bytes > %d: %w", t, len(p), MaxPayloadFor(t), ErrFrameTooLarge)
	}
	var h [HeaderSize]byte
	h[0], h[1], h[2], h[3] = magic0, magic1, byte(t), 0
	binary.BigEndian.PutUint32(h[4:8], uint32(len(p)))
	crc := crc32.Update(crc32.Checksum(h[:8], crcTable), crcTable, p)
	binary.BigEndian.PutUint32(h[8:12], crc)
	dst = append(dst, h[:]...)
	return append(dst, p...), nil
}

// Reader decodes frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	err error
}

// NewReader returns a Reader decoding frames from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// ReadFrame reads and checks the next frame. At a clean end of stream
// between frames it returns io.EOF; an end inside a frame is ErrTruncated.
// Decode errors are sticky: after one, every call returns it again (the
// stream cannot be resynchronised).
func (r *Reader) ReadFrame() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.readFrame()
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *Reader) readFrame() (Frame, error) {
	var h [HeaderSize]byte
	n, err := io.ReadFull(r.r, h[:])
	switch {
	case err == io.EOF:
		return Frame{}, io.EOF
	case err == io.ErrUnexpectedEOF:
		return Frame{}, fmt.Errorf("header: %d of %d bytes: %w", n, HeaderSize, ErrTruncated)
	case err != nil:
		return Frame{}, fmt.Errorf("read header: %w", err)
	}
	if h[0] != magic0 || h[1] != magic1 {
		return Frame{}, fmt.Errorf("magic %#02x%02x: %w", h[0], h[1], ErrBadFrame)
	}
	t := FrameType(h[2])
	if h[3] != 0 {
		return Frame{}, fmt.Errorf("%v: flags %#02x: %w", t, h[3], ErrBadFrame)
	}
	size := binary.BigEndian.Uint32(h[4:8])
	if !t.Known() {
		return Frame{}, fmt.Errorf("%v: %w", t, ErrUnknownFrame)
	}
	if limit := MaxPayloadFor(t); size > uint32(limit) {
		return Frame{}, fmt.Errorf("%v: %d bytes > %d: %w", t, size, limit, ErrFrameTooLarge)
	}
	p := make([]byte, size)
	if n, err := io.ReadFull(r.r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("%v payload: %d of %d bytes: %w", t, n, size, ErrTruncated)
		}
		return Frame{}, fmt.Errorf("read %v payload: %w", t, err)
	}
	crc := crc32.Update(crc32.Checksum(h[:8], crcTable), crcTable, p)
	if got := binary.BigEndian.Uint32(h[8:12]); got != crc {
		return Frame{}, fmt.Errorf("%v: checksum %#08x, want %#08x: %w", t, got, crc, ErrBadFrame)
	}
	return Frame{Type: t, Payload: p}, nil
}
