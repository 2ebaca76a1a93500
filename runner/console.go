package runner

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// tailSize is how much of the console the runner keeps in memory.
const tailSize = 64 << 10

// Bounds of the console log file: its first ConsoleHead and last
// ConsoleTail bytes are kept, what lies between is dropped and counted.
const (
	ConsoleHead = 4 << 20
	ConsoleTail = 4 << 20
)

// headTail writes the first head bytes through to w, keeps the last tail
// bytes after them in memory, and on Close writes a line saying how much
// was dropped, then that tail. A guest printing without end costs the
// host at most head+tail bytes of disk and tail bytes of memory. It is
// not safe for concurrent use (the console serialises its writes).
type headTail struct {
	w          io.Writer
	head, tail int
	written    int    // bytes written through
	ring       []byte // the tail (a ring once full: oldest byte at start)
	start      int
	dropped    int64
}

func newHeadTail(w io.Writer, head, tail int) *headTail {
	return &headTail{w: w, head: head, tail: tail}
}

func (h *headTail) Write(p []byte) (int, error) {
	n := len(p)
	if room := h.head - h.written; room > 0 {
		k := min(room, len(p))
		if _, err := h.w.Write(p[:k]); err != nil {
			return 0, err
		}
		h.written += k
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if len(p) >= h.tail {
		// The write alone fills the tail.
		h.dropped += int64(len(h.ring) + len(p) - h.tail)
		h.ring = append(h.ring[:0], p[len(p)-h.tail:]...)
		h.start = 0
		return n, nil
	}
	if len(h.ring) < h.tail {
		// Still filling: append what fits, wrap the rest.
		k := min(h.tail-len(h.ring), len(p))
		h.ring = append(h.ring, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		// Full: overwrite the oldest bytes.
		k := copy(h.ring[h.start:], p)
		h.dropped += int64(k)
		h.start = (h.start + k) % h.tail
		p = p[k:]
	}
	return n, nil
}

// Close writes the kept tail (after a line counting the dropped bytes).
func (h *headTail) Close() error {
	if h.dropped > 0 {
		if _, err := fmt.Fprintf(h.w, "\n[rules_go_vm: %d bytes of console output dropped here: the log keeps its first %d and last %d bytes]\n",
			h.dropped, h.head, h.tail); err != nil {
			return err
		}
	}
	if _, err := h.w.Write(h.ring[h.start:]); err != nil {
		return err
	}
	_, err := h.w.Write(h.ring[:h.start])
	return err
}

// PanicMarker is what a guest kernel panic prints on the console.
const PanicMarker = "Kernel panic - not syncing"

// console tees the guest console to a bounded log file (and a live
// writer) and keeps its tail in memory. It is safe for concurrent use.
type console struct {
	mu   sync.Mutex
	file *headTail // the console log; nil once closed (or never)
	live io.Writer // a live mirror (invm -verbose), or nil
	tail []byte
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file != nil {
		_, _ = c.file.Write(p)
	}
	if c.live != nil {
		_, _ = c.live.Write(p)
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > tailSize {
		c.tail = append(c.tail[:0:0], c.tail[len(c.tail)-tailSize:]...)
	}
	return len(p), nil
}

// Close ends the console log (writing its kept tail); later output is
// still kept in memory and mirrored, but no longer logged.
func (c *console) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil {
		return nil
	}
	err := c.file.Close()
	c.file = nil
	return err
}

// Tail returns the last n lines kept.
func (c *console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return TailLines(string(bytes.ReplaceAll(c.tail, []byte("\r\n"), []byte("\n"))), n)
}

func (c *console) Contains(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Contains(c.tail, []byte(s))
}

// TailLines returns the last n lines of s.
func TailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
