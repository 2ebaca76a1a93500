package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/u-root/u-root/pkg/cpio"
)

// ErrCorrupt reports input that is not a sequence of newc archives.
var ErrCorrupt = errors.New("not a newc cpio archive sequence")

// Concat writes the archives one after the other to dst, padding with zero
// bytes so every archive starts at a multiple of 4 bytes, as the kernel
// requires (it skips zero padding between archives). The inputs are copied
// verbatim: each should be a complete archive, e.g. written by
// Layer.WriteTo. Later archives override earlier ones in the guest.
func Concat(dst io.Writer, archives ...io.Reader) (int64, error) {
	var total int64
	for i, a := range archives {
		n, err := io.Copy(dst, a)
		total += n
		if err != nil {
			return total, fmt.Errorf("initramfs: concat archive %d: %w", i, err)
		}
		if pad := (4 - total%4) % 4; pad != 0 {
			m, err := dst.Write(make([]byte, pad))
			total += int64(m)
			if err != nil {
				return total, fmt.Errorf("initramfs: concat archive %d: %w", i, err)
			}
		}
	}
	return total, nil
}

// ReadArchives reads every record of one or more concatenated, uncompressed
// newc archives in r (size bytes), the way the kernel unpacks an initramfs:
// records are returned in archive order, trailers are dropped, and zero
// padding between archives is skipped. When a path occurs more than once,
// the last record is the one the guest sees. Record contents are section
// readers over r.
func ReadArchives(r io.ReaderAt, size int64) ([]cpio.Record, error) {
	var recs []cpio.Record
	off := int64(0)
	for {
		// Skip zero padding between archives.
		var b [1]byte
		for off < size {
			if _, err := r.ReadAt(b[:], off); err != nil {
				return recs, fmt.Errorf("initramfs: offset %d: %w", off, err)
			}
			if b[0] != 0 {
				break
			}
			off++
		}
		if off >= size {
			return recs, nil
		}
		if off%4 != 0 {
			return recs, fmt.Errorf("initramfs: %w: archive at offset %d is not 4-byte aligned", ErrCorrupt, off)
		}
		rr, ok := cpio.Newc.Reader(io.NewSectionReader(r, off, size-off)).(cpio.EOFReader)
		if !ok {
			return recs, fmt.Errorf("initramfs: unexpected cpio reader type")
		}
		for {
			rec, err := rr.RecordReader.ReadRecord()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return recs, fmt.Errorf("initramfs: %w: archive at offset %d: missing trailer: %w", ErrCorrupt, off, err)
			}
			if int64(rec.FilePos)+int64(rec.FileSize) > size-off {
				return recs, fmt.Errorf("initramfs: %w: %s at offset %d: truncated contents", ErrCorrupt, rec.Name, off+rec.RecPos)
			}
			if rec.Name == cpio.Trailer {
				off += rec.RecPos + int64(rec.RecLen)
				break
			}
			rec.RecPos += off
			rec.FilePos += off
			recs = append(recs, rec)
		}
	}
}

// Flatten returns, per path, the last record of recs: the view of the
// filesystem the kernel unpacks from concatenated archives.
func Flatten(recs []cpio.Record) map[string]cpio.Record {
	m := make(map[string]cpio.Record, len(recs))
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

// ReadArchivesBytes is ReadArchives over an in-memory image.
func ReadArchivesBytes(b []byte) ([]cpio.Record, error) {
	return ReadArchives(bytes.NewReader(b), int64(len(b)))
}
