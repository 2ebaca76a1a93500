package guestinit

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The vsock dial and listen code is socket-family agnostic below the
// address; these tests drive it over AF_UNIX and a socket pair on the host
// (the VM tests drive it over AF_VSOCK).

// listenUnix listens on a new unix socket; it is closed with the test.
func listenUnix(t *testing.T) (Listener, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := listenSocket(unix.AF_UNIX, &unix.SockaddrUnix{Name: sock}, "test-listen")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, sock
}

func TestSocketListenDialRoundTrip(t *testing.T) {
	ln, sock := listenUnix(t)
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- string(b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialSocket(ctx, unix.AF_UNIX, &unix.SockaddrUnix{Name: sock}, "test-dial")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if s := <-got; s != "hello" {
		t.Fatalf("server got %q", s)
	}
}

func TestSocketCloseWakesAccept(t *testing.T) {
	ln, _ := listenUnix(t)
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake Accept")
	}
}

func TestSocketListenInUse(t *testing.T) {
	_, sock := listenUnix(t)
	if _, err := listenSocket(unix.AF_UNIX, &unix.SockaddrUnix{Name: sock}, "b"); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("second listen: %v, want EADDRINUSE", err)
	}
}

func TestSocketDialRefused(t *testing.T) {
	_, err := dialSocket(context.Background(), unix.AF_UNIX, &unix.SockaddrUnix{Name: filepath.Join(t.TempDir(), "none")}, "x")
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("dial to no socket: %v, want ENOENT", err)
	}
}

// TestConnectInProgress drives connect's wait: the "connect" reports
// EINPROGRESS on one end of a socket pair whose send buffer is full, so the
// poller waits for writability until the context ends (deadline, cancel)
// or the peer drains it (success).
func TestConnectInProgress(t *testing.T) {
	full := func(t *testing.T) (*os.File, *os.File) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := unix.Write(fds[0], make([]byte, 64<<10)); err != nil {
				if errors.Is(err, unix.EAGAIN) {
					break
				}
				t.Fatal(err)
			}
		}
		a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}
	inProgress := func(int) error { return unix.EINPROGRESS }

	f, _ := full(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := connect(ctx, f, inProgress); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v, want context.DeadlineExceeded", err)
	}

	f, _ = full(t)
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := connect(ctx, f, inProgress); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v, want context.Canceled", err)
	}

	f, peer := full(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = io.Copy(io.Discard, peer) // drains until the test closes it
	}()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := connect(ctx, f, inProgress); err != nil {
		t.Errorf("writable after EINPROGRESS: %v, want success", err)
	}
	if err := connect(context.Background(), f, func(int) error { return unix.ECONNREFUSED }); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("refused at once: %v", err)
	}
}
