package runner

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// tailSize is how much of the console the runner keeps in memory.
const tailSize = 64 << 10

// PanicMarker is what a guest kernel panic prints on the console.
const PanicMarker = "Kernel panic - not syncing"

// console tees the guest console to a file (and a live writer) and keeps
// its tail in memory. It is safe for concurrent use.
type console struct {
	mu   sync.Mutex
	out  io.Writer // file, live mirror
	tail []byte
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out != nil {
		_, _ = c.out.Write(p)
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > tailSize {
		c.tail = append(c.tail[:0:0], c.tail[len(c.tail)-tailSize:]...)
	}
	return len(p), nil
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
