package vsock

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseConnectReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"OK 1073741824\n", 1073741824, true},
		{"OK 5\n", 5, true},
		{"OK 5", 0, false},
		{"ERR\n", 0, false},
		{"OK -1\n", 0, false},
		{"OK 99999999999\n", 0, false},
		{"", 0, false},
	} {
		got, err := ParseConnectReply(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %d, %v", tc.in, got, err)
		}
	}
}

// FuzzParseConnectReply: whatever parses is exactly "OK <port>\n".
func FuzzParseConnectReply(f *testing.F) {
	f.Add("OK 1024\n")
	f.Add("OK \n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseConnectReply(s)
		if err == nil && s != "OK "+strconv.FormatUint(uint64(p), 10)+"\n" && s != "OK +"+strconv.FormatUint(uint64(p), 10)+"\n" && !strings.HasPrefix(s, "OK 0") {
			t.Fatalf("accepted %q as %d", s, p)
		}
	})
}

// TestDialGuest runs the handshake against a fake daemon socket.
func TestDialGuest(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", UDSPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "CONNECT 1025\n" {
			_, _ = c.Write([]byte("ERR\n"))
			return
		}
		_, _ = c.Write([]byte("OK 1073741824\nhello from the guest"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialGuest(ctx, dir, 1025)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	if string(b) != "hello from the guest" {
		t.Errorf("got %q", b)
	}
	if _, err := DialGuest(ctx, filepath.Join(dir, "nope"), 1); err == nil {
		t.Errorf("dial without a daemon worked")
	}
	_ = os.Remove(UDSPath(dir))
}
