package vsock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestNaming(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SocketPath("/run/x"), "/run/x/vhost.sock"},
		{UDSPath("/run/x"), "/run/x/vsock"},
		{PortPath("/run/x", 1024), "/run/x/vsock_1024"},
		{PortPath("/run/x", 4294967295), "/run/x/vsock_4294967295"},
		{LogPath("/run/x"), "/run/x/daemon.log"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	got := Args("/d", 3)
	if len(got) != 2 || got[0] != "--vm" || got[1] != "guest-cid=3,socket=/d/vhost.sock,uds-path=/d/vsock" {
		t.Errorf("Args = %q", got)
	}
}

func TestFindDaemon(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(noexec, []byte(""), 0o644)
	onPath := func(string) (string, error) { return "/usr/bin/" + DaemonName, nil }
	notOnPath := func(string) (string, error) { return "", exec.ErrNotFound }
	for _, tc := range []struct {
		name      string
		look      func(string) (string, error)
		fallbacks []string
		want      string
		err       error
	}{
		{"PATH first", onPath, []string{exe}, "/usr/bin/" + DaemonName, nil},
		{"fallback", notOnPath, []string{filepath.Join(dir, "missing"), noexec, exe}, exe, nil},
		{"none", notOnPath, []string{noexec}, "", ErrNoDaemon},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindDaemon(tc.look, tc.fallbacks)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("FindDaemon = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestStartStop runs the real daemon when it is installed: ready, Listen,
// killed by Stop, files removed.
func TestStartStop(t *testing.T) {
	bin, err := FindDaemon(exec.LookPath, DaemonFallbacks)
	if err != nil {
		t.Skipf("no daemon: %v", err)
	}
	dir := t.TempDir()
	ln, err := Listen(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := Start(context.Background(), Config{Binary: bin, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d.Exited() {
		t.Fatal("daemon exited right after start")
	}
	pid := d.Pid()
	d.Stop()
	d.Stop()
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("daemon not reaped")
	}
	if _, err := os.Stat(filepath.Join("/proc", itoa(pid))); err == nil {
		t.Errorf("daemon %d still alive", pid)
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}

// TestStartFails: a daemon that exits at once is ErrNotReady.
func TestStartFails(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), Config{Binary: "/bin/false", Dir: dir, ReadyTimeout: 2 * time.Second})
	if !errors.Is(err, ErrNotReady) {
		t.Errorf("err = %v, want ErrNotReady", err)
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
