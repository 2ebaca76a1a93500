// Package userland checks the guest's userland: the loopback interface up,
// as on a host, and a static busybox whose
// applets (runner.GuestApplets) are on the test's PATH, as tests that exec
// a few tools expect (golang.org/x/sys/unix's TestPidfd runs `sleep`).
package userland

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestMain(m *testing.M) { invm.Main(m) }

func TestAppletsOnPath(t *testing.T) {
	invm.Require(t)
	for _, name := range []string{"sh", "sleep", "true", "false", "cat", "ip", "grep", "sed", "awk", "ps", "kill", "mount"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Errorf("%s is not on PATH: %v", name, err)
		}
	}
}

func TestCommands(t *testing.T) {
	invm.Require(t)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"sh", "-c", "echo hello | cat | tr a-z A-Z"}, "HELLO\n"},
		{[]string{"sleep", "0.01"}, ""},
		{[]string{"true"}, ""},
		{[]string{"sh", "-c", "ip -o link show lo | grep -o 'lo:'"}, "lo:\n"},
		{[]string{"sh", "-c", "seq 3 | sort -r | xargs echo"}, "3 2 1\n"},
	} {
		out, err := exec.Command(tc.cmd[0], tc.cmd[1:]...).CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("%s: %q, %v; want %q", strings.Join(tc.cmd, " "), out, err, tc.want)
		}
	}
	// A failing command fails: the exit status comes back.
	if err := exec.Command("false").Run(); err == nil {
		t.Error("false succeeded")
	}
}

// TestLoopback: the loopback interface is up, with 127.0.0.1 and ::1, as on
// the host where go test runs (servers on localhost are common in tests).
func TestLoopback(t *testing.T) {
	invm.Require(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen on %s: %v", addr, err)
			continue
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Errorf("dial %s: %v", ln.Addr(), err)
			ln.Close()
			continue
		}
		b, err := io.ReadAll(c)
		c.Close()
		ln.Close()
		if err != nil || string(b) != "hello" {
			t.Errorf("read from %s: %q, %v; want \"hello\"", ln.Addr(), b, err)
		}
	}
}
