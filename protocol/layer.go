package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Snapshot start. A template guest is booted with a GuestConfig whose
// Template is true: its init mounts what the shape needs, checks that its
// layer share is there, opens the channel, writes TemplateReady on it and
// waits. The host saves the guest there (QEMU migration to a file). A run
// restores a copy and writes one layer message on the channel: a
// LayerHeader, and the test layer a cold boot appends to its initrd
// (LayerHeader.Size bytes of newc archives), either after the header on
// the channel (LayerInline), in the file LayerShareFile of a read-only 9p
// share tagged GuestConfig.LayerShare (LayerShared: 9p moves 512 KiB per
// request where a virtio-serial port moves 4 KiB per round trip) or, on
// x86_64, at the start of the template's layer window (LayerInWindow):
// guest-physical memory the kernel never uses, which each restore backs
// with a file of its own, and which the guest mapped before it was saved
// (GuestConfig.LayerWindowBase; no request, no file system). The guest
// extracts the archives (ExtractNewc), sets its clock, mixes the seed into
// its random pool, reads its GuestConfig from ConfigPath as after a cold
// boot, and the session goes on over the same channel.

// TemplateReady is what a template guest writes on its channel when it
// waits for its test layer.
const TemplateReady = "RGVM template ready v2\n"

// ListenHello is what a template guest on a ChannelVsockListen channel
// writes on every connection it accepts: listenHelloPrefix and its vsock
// CID as 8 hex digits and a newline (ListenHelloSize bytes). The CID tells
// the host that the guest has taken the CID of its restore (QEMU's
// transport reset, which also breaks the connections the guest had): a
// connection answered with the template's CID is not kept.
const (
	listenHelloPrefix = "RGVM listening v1 cid="
	ListenHelloSize   = len(listenHelloPrefix) + 8 + 1
)

// ErrBadListenHello is wrapped by ReadListenHello's errors.
var ErrBadListenHello = errors.New("protocol: bad listen hello")

// WriteListenHello writes the ListenHello of a guest whose CID is cid.
func WriteListenHello(w io.Writer, cid uint32) error {
	_, err := fmt.Fprintf(w, "%s%08x\n", listenHelloPrefix, cid)
	return err
}

// ReadListenHello reads a ListenHello and returns the guest's CID.
func ReadListenHello(r io.Reader) (uint32, error) {
	b := make([]byte, ListenHelloSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadListenHello, err)
	}
	return DecodeListenHello(b)
}

// DecodeListenHello decodes the ListenHelloSize bytes of b.
func DecodeListenHello(b []byte) (uint32, error) {
	if len(b) != ListenHelloSize || !bytes.HasPrefix(b, []byte(listenHelloPrefix)) || b[len(b)-1] != '\n' {
		return 0, fmt.Errorf("%w: %q, want %q, a CID in 8 hex digits and a newline", ErrBadListenHello, b, listenHelloPrefix)
	}
	var cid uint32
	for _, c := range b[len(listenHelloPrefix) : len(b)-1] {
		switch {
		case '0' <= c && c <= '9':
			cid = cid<<4 | uint32(c-'0')
		case 'a' <= c && c <= 'f':
			cid = cid<<4 | uint32(c-'a'+10)
		default:
			return 0, fmt.Errorf("%w: %q: the CID must be 8 lower-case hex digits", ErrBadListenHello, b)
		}
	}
	return cid, nil
}

// layerMagic starts a layer message.
const layerMagic = "RGVMLAYR"

// LayerVersion is the version of the layer message.
const LayerVersion uint16 = 2

// LayerHeaderSize is the encoded size of a LayerHeader.
const LayerHeaderSize = len(layerMagic) + 2 + 2 + 8 + SeedSize + 8

// SeedSize is the size of LayerHeader.Seed.
const SeedSize = 32

// MaxLayerSize bounds LayerHeader.Size: the test binary, its runfiles and
// config.
const MaxLayerSize = 4 << 30

// ErrBadLayer is wrapped by every error decoding or extracting a layer.
var ErrBadLayer = errors.New("protocol: bad test layer")

// LayerVia says where a layer message's archives are.
type LayerVia uint16

const (
	// LayerInline: they follow the header on the channel.
	LayerInline LayerVia = 0
	// LayerShared: they are the file LayerShareFile of the guest's layer
	// share (GuestConfig.LayerShare), written before the header is sent.
	LayerShared LayerVia = 1
	// LayerInWindow: they are at the start of the template's layer window
	// (GuestConfig.LayerWindowBase), put there by the host before the
	// restore started.
	LayerInWindow LayerVia = 2
)

func (v LayerVia) valid() bool { return v == LayerInline || v == LayerShared || v == LayerInWindow }

func (v LayerVia) String() string {
	switch v {
	case LayerInline:
		return "inline"
	case LayerShared:
		return "shared"
	case LayerInWindow:
		return "window"
	}
	return fmt.Sprintf("LayerVia(%d)", uint16(v))
}

// LayerShareTag is the 9p mount tag of a template's layer share, and
// LayerShareFile the layer's file in it.
const (
	LayerShareTag  = "rgvm_layer"
	LayerShareFile = "layer"
)

// maxShareTag is the longest 9p mount tag QEMU takes.
const maxShareTag = 31

// LayerHeader precedes the archives of a layer message.
type LayerHeader struct {
	// Via says where the archives are.
	Via LayerVia
	// Now is the host's wall clock when it sent the layer: a restored guest
	// has the template's.
	Now time.Time
	// Seed is fresh entropy: every restore of a template starts with the
	// same random pool, which this makes differ.
	Seed [SeedSize]byte
	// Size is the length of the archives.
	Size int64
}

// EncodeLayerHeader encodes h.
func EncodeLayerHeader(h LayerHeader) ([]byte, error) {
	if h.Size < 0 || h.Size > MaxLayerSize {
		return nil, fmt.Errorf("%w: size %d not in [0, %d]", ErrBadLayer, h.Size, MaxLayerSize)
	}
	if !h.Via.valid() {
		return nil, fmt.Errorf("%w: %v: want inline, shared or window", ErrBadLayer, h.Via)
	}
	b := make([]byte, 0, LayerHeaderSize)
	b = append(b, layerMagic...)
	b = binary.BigEndian.AppendUint16(b, LayerVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Via))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Now.UnixNano()))
	b = append(b, h.Seed[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Size))
	return b, nil
}

// DecodeLayerHeader decodes the LayerHeaderSize bytes of p.
func DecodeLayerHeader(p []byte) (LayerHeader, error) {
	var h LayerHeader
	if len(p) != LayerHeaderSize {
		return h, fmt.Errorf("%w: header of %d bytes, want %d", ErrBadLayer, len(p), LayerHeaderSize)
	}
	if string(p[:len(layerMagic)]) != layerMagic {
		return h, fmt.Errorf("%w: no layer magic (got %q)", ErrBadLayer, clip(p[:len(layerMagic)]))
	}
	p = p[len(layerMagic):]
	if v := binary.BigEndian.Uint16(p); v != LayerVersion {
		return h, fmt.Errorf("%w: version %d, this init speaks %d", ErrBadLayer, v, LayerVersion)
	}
	if h.Via = LayerVia(binary.BigEndian.Uint16(p[2:])); !h.Via.valid() {
		return h, fmt.Errorf("%w: archives %v: want inline, shared or window", ErrBadLayer, h.Via)
	}
	p = p[4:]
	h.Now = time.Unix(0, int64(binary.BigEndian.Uint64(p)))
	copy(h.Seed[:], p[8:8+SeedSize])
	size := binary.BigEndian.Uint64(p[8+SeedSize:])
	if size > MaxLayerSize {
		return h, fmt.Errorf("%w: size %d over %d", ErrBadLayer, size, MaxLayerSize)
	}
	h.Size = int64(size)
	return h, nil
}

// LayerPayloadSize is the length of archives as a layer carries them.
func LayerPayloadSize(archives [][]byte) int64 {
	var n int64
	for _, a := range archives {
		n += int64(len(a)+3) &^ 3
	}
	return n
}

// WriteLayerPayload writes the archives of a layer as a layer message
// carries them (each padded to 4 bytes with zeros, as in an initrd) and
// returns their length.
func WriteLayerPayload(w io.Writer, archives ...[]byte) (int64, error) {
	var pad [3]byte
	for _, a := range archives {
		if _, err := w.Write(a); err != nil {
			return 0, fmt.Errorf("write layer: %w", err)
		}
		if _, err := w.Write(pad[:(4-len(a)%4)%4]); err != nil {
			return 0, fmt.Errorf("write layer: %w", err)
		}
	}
	return LayerPayloadSize(archives), nil
}

// LayerPayload is WriteLayerPayload's bytes.
func LayerPayload(archives ...[]byte) []byte {
	var b bytes.Buffer
	b.Grow(int(LayerPayloadSize(archives)))
	_, _ = WriteLayerPayload(&b, archives...)
	return b.Bytes()
}

// WriteLayer writes an inline layer message: h (Via and Size set here)
// and then the payload (WriteLayerPayload).
func WriteLayer(w io.Writer, h LayerHeader, archives ...[]byte) error {
	h.Via, h.Size = LayerInline, LayerPayloadSize(archives)
	hdr, err := EncodeLayerHeader(h)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.Write(hdr)
	_, _ = WriteLayerPayload(bw, archives...)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	return nil
}

// WriteLayerHeader writes the header of a layer message whose archives
// are not on w: h with Via LayerShared or LayerInWindow and Size the length
// of the payload (WriteLayerPayload) already in the share's LayerShareFile
// or at the start of the layer window.
func WriteLayerHeader(w io.Writer, h LayerHeader) error {
	if h.Via != LayerShared && h.Via != LayerInWindow {
		return fmt.Errorf("%w: a header alone is for a shared or window layer, not %v", ErrBadLayer, h.Via)
	}
	hdr, err := EncodeLayerHeader(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("write layer header: %w", err)
	}
	return nil
}

// ReadLayerHeader reads a layer message's header from r.
func ReadLayerHeader(r io.Reader) (LayerHeader, error) {
	p := make([]byte, LayerHeaderSize)
	if _, err := io.ReadFull(r, p); err != nil {
		return LayerHeader{}, fmt.Errorf("%w: reading the header: %w", ErrBadLayer, err)
	}
	return DecodeLayerHeader(p)
}

// ReadLayer reads an inline layer message from r and extracts its archives
// under root (ExtractNewc). It reads exactly the message, nothing after
// it. A shared layer is refused (ErrBadLayer): its archives are not on r.
func ReadLayer(r io.Reader, root string) (LayerHeader, error) {
	h, err := ReadLayerHeader(r)
	if err != nil {
		return h, err
	}
	return h, ExtractInlineLayer(r, h, root)
}

// ExtractInlineLayer extracts the h.Size bytes of archives that follow an
// inline header on r under root, reading exactly them.
func ExtractInlineLayer(r io.Reader, h LayerHeader, root string) error {
	if h.Via != LayerInline {
		return fmt.Errorf("%w: the archives are %v, not on the channel", ErrBadLayer, h.Via)
	}
	lr := &io.LimitedReader{R: r, N: h.Size}
	if err := ExtractNewc(bufio.NewReaderSize(lr, 64<<10), root); err != nil {
		return err
	}
	if lr.N != 0 { // archives end before the message: skip its padding
		if _, err := io.Copy(io.Discard, lr); err != nil {
			return fmt.Errorf("%w: %w", ErrBadLayer, err)
		}
	}
	return nil
}

// ExtractLayerBytes extracts a layer's archives held in memory (a shared
// layer's file, mapped) under root. They must be h.Size bytes. Each file
// is written from b in one call: under TCG every copy of the layer's
// bytes costs, and reading b through buffers would add two.
func ExtractLayerBytes(b []byte, h LayerHeader, root string) error {
	if int64(len(b)) != h.Size {
		return fmt.Errorf("%w: %d bytes of archives, the header says %d", ErrBadLayer, len(b), h.Size)
	}
	return ExtractNewc(&sliceReader{b: b}, root)
}

// The layer window (GuestConfig.LayerWindowBase and LayerWindowSize).
const (
	// LayerWindowAlign is the alignment of its base and size (a page).
	LayerWindowAlign = 4096
	// MaxLayerWindow bounds its size.
	MaxLayerWindow = 1 << 30
	// LayerWindowMagic is what a template guest writes at the start of its
	// window once it has mapped it: the host reads it from the window's
	// file after the save, which proves that the guest reaches the file's
	// bytes at that address (the kernel has /dev/mem, the range is the
	// file's) before any restore puts a layer there.
	LayerWindowMagic = "RGVM layer window v1\n"
)

// CheckLayerWindow checks a layer window: both zero (none), or a size up
// to MaxLayerWindow at a base, both LayerWindowAlign-aligned.
func CheckLayerWindow(base, size uint64) error {
	switch {
	case base == 0 && size == 0:
		return nil
	case size == 0 || size > MaxLayerWindow:
		return fmt.Errorf("layer window size %d: want 1 to %d bytes", size, MaxLayerWindow)
	case base == 0:
		return fmt.Errorf("layer window of %d bytes at address 0: want its guest-physical base address", size)
	case base%LayerWindowAlign != 0 || size%LayerWindowAlign != 0:
		return fmt.Errorf("layer window %#x+%#x: base and size must be multiples of %d", base, size, LayerWindowAlign)
	case base+size < base:
		return fmt.Errorf("layer window %#x+%#x: ends past the address space", base, size)
	}
	return nil
}

// CheckShareTag checks a 9p mount tag (GuestConfig.LayerShare).
func CheckShareTag(tag string) error {
	if tag == "" || len(tag) > maxShareTag {
		return fmt.Errorf("9p mount tag %q: want 1 to %d characters", tag, maxShareTag)
	}
	for _, r := range tag {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("9p mount tag %q: only letters, digits, '_', '-' and '.'", tag)
		}
	}
	return nil
}

// newc (the initramfs cpio format) as the kernel reads it: a 110-byte
// header of "070701" and 13 8-digit hex fields, the NUL-terminated name,
// padding to 4, the data, padding to 4; "TRAILER!!!" ends an archive, and
// zero bytes between archives are skipped.
const (
	newcMagic     = "070701"
	newcHeader    = 110
	newcTrailer   = "TRAILER!!!"
	maxNewcName   = 4096
	newcModeType  = 0o170000
	newcModeReg   = 0o100000
	newcModeDir   = 0o040000
	newcModeLink  = 0o120000
	newcPermsMask = 0o7777
)

// newcField indexes of the header's hex fields.
const (
	newcFieldMode     = 1
	newcFieldFileSize = 6
	newcFieldNameSize = 11
	newcFields        = 13
)

// ExtractNewc extracts concatenated newc archives from r under root:
// regular files (replacing what is there), directories and symbolic links.
// Names must be relative and stay under root ("." is root itself); other
// file types are refused. Errors wrap ErrBadLayer.
func ExtractNewc(r io.Reader, root string) error {
	dst, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadLayer, err)
	}
	defer dst.Close()
	br := &countingReader{r: r}
	for {
		name, mode, size, err := readNewcHeader(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if name == newcTrailer {
			continue
		}
		if err := extractEntry(dst, br, name, mode, size); err != nil {
			return err
		}
		if err := br.skip(pad4(br.n)); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadLayer, name, err)
		}
	}
}

// readNewcHeader skips the zero padding between archives and reads one
// header and its name; io.EOF at a clean end.
func readNewcHeader(br *countingReader) (name string, mode uint32, size int64, err error) {
	var h [newcHeader]byte
	for {
		if _, err := io.ReadFull(br, h[:4]); err != nil {
			if errors.Is(err, io.EOF) {
				return "", 0, 0, io.EOF
			}
			return "", 0, 0, fmt.Errorf("%w: %w", ErrBadLayer, err)
		}
		if string(h[:4]) != "\x00\x00\x00\x00" {
			break
		}
	}
	if _, err := io.ReadFull(br, h[4:]); err != nil {
		return "", 0, 0, fmt.Errorf("%w: truncated header: %w", ErrBadLayer, err)
	}
	if string(h[:6]) != newcMagic {
		return "", 0, 0, fmt.Errorf("%w: not a newc header at byte %d (%q)", ErrBadLayer, br.n-newcHeader, clip(h[:6]))
	}
	var f [newcFields]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return "", 0, 0, fmt.Errorf("%w: header field %d: %q", ErrBadLayer, i, clip(h[6+8*i:14+8*i]))
		}
		f[i] = uint32(v)
	}
	ns := f[newcFieldNameSize]
	if ns < 2 || ns > maxNewcName {
		return "", 0, 0, fmt.Errorf("%w: name size %d", ErrBadLayer, ns)
	}
	nb := make([]byte, ns)
	if _, err := io.ReadFull(br, nb); err != nil {
		return "", 0, 0, fmt.Errorf("%w: truncated name: %w", ErrBadLayer, err)
	}
	if nb[ns-1] != 0 || strings.IndexByte(string(nb[:ns-1]), 0) >= 0 {
		return "", 0, 0, fmt.Errorf("%w: name %q not NUL-terminated", ErrBadLayer, clip(nb))
	}
	if err := br.skip(pad4(br.n)); err != nil {
		return "", 0, 0, fmt.Errorf("%w: %w", ErrBadLayer, err)
	}
	return string(nb[:ns-1]), f[newcFieldMode], int64(f[newcFieldFileSize]), nil
}

// extractEntry writes one entry of size bytes from r at name under dst.
func extractEntry(dst *os.Root, r io.Reader, name string, mode uint32, size int64) error {
	p, err := cleanLayerPath(name)
	if err != nil {
		return err
	}
	perm := fs.FileMode(mode & newcPermsMask)
	fail := func(err error) error { return fmt.Errorf("%w: %s: %w", ErrBadLayer, name, err) }
	switch mode & newcModeType {
	case newcModeDir:
		if _, err := io.CopyN(io.Discard, r, size); err != nil {
			return fail(err)
		}
		if p == "." {
			return nil
		}
		if err := dst.MkdirAll(p, perm); err != nil {
			return fail(err)
		}
		return nil
	case newcModeLink:
		if size > maxNewcName {
			return fail(fmt.Errorf("link target of %d bytes", size))
		}
		target := make([]byte, size)
		if _, err := io.ReadFull(r, target); err != nil {
			return fail(err)
		}
		_ = dst.Remove(p)
		if err := dst.Symlink(string(target), p); err != nil {
			return fail(err)
		}
		return nil
	case newcModeReg:
		return extractFile(dst, r, p, perm, size, fail)
	}
	return fail(fmt.Errorf("file type %#o is not a file, directory or symbolic link", mode&newcModeType))
}

// extractFile writes a regular file (replacing one there) with its parents.
func extractFile(dst *os.Root, r io.Reader, p string, perm fs.FileMode, size int64, fail func(error) error) error {
	if d := path.Dir(p); d != "." {
		if err := dst.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	_ = dst.Remove(p)
	f, err := dst.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fail(err)
	}
	n, err := copyN(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("truncated data: %d of %d bytes", n, size)
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// cleanLayerPath checks an archive name: relative (a leading "./" or "/"
// is dropped, as the kernel does), clean, never above the root.
func cleanLayerPath(name string) (string, error) {
	p := strings.TrimLeft(strings.TrimPrefix(name, "./"), "/")
	if p == "" {
		p = "."
	}
	if !fs.ValidPath(p) {
		return "", fmt.Errorf("%w: name %q is not a clean relative path", ErrBadLayer, clip([]byte(name)))
	}
	return p, nil
}

// pad4 is the padding that brings offset n to a multiple of 4.
func pad4(n int64) int64 { return (4 - n%4) % 4 }

// countingReader counts the bytes read, for newc's alignment.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sliceReader reads a layer held in memory; copyN writes from it in
// place.
type sliceReader struct {
	b   []byte
	off int
}

func (s *sliceReader) Read(p []byte) (int, error) {
	if s.off >= len(s.b) {
		return 0, io.EOF
	}
	n := copy(p, s.b[s.off:])
	s.off += n
	return n, nil
}

// copyN copies n bytes of r to w: in one write from the layer itself when
// r reads a layer in memory.
func copyN(w io.Writer, r io.Reader, n int64) (int64, error) {
	if c, ok := r.(*countingReader); ok {
		if s, ok := c.r.(*sliceReader); ok {
			n = min(n, int64(len(s.b)-s.off))
			k, err := w.Write(s.b[s.off : s.off+int(n)])
			s.off += k
			c.n += int64(k)
			return int64(k), err
		}
	}
	return io.Copy(w, io.LimitReader(r, n))
}

// skip reads and drops n bytes.
func (c *countingReader) skip(n int64) error {
	if n == 0 {
		return nil
	}
	if _, err := io.CopyN(io.Discard, c, n); err != nil {
		return fmt.Errorf("truncated padding: %w", err)
	}
	return nil
}
