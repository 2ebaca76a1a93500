package proc

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

func TestExitCode(t *testing.T) {
	p, err := Start(exec.Command("sh", "-c", "exit 7"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ExitCode(); got != 7 {
		t.Errorf("ExitCode = %d, want 7", got)
	}
	if !p.Exited() || p.ExitTime().IsZero() {
		t.Error("not marked exited")
	}
	p.Kill() // after exit: no-op
}

func TestKillGroup(t *testing.T) {
	// The shell's child sleeps too: killing the group ends both, and Done
	// closes even though the child holds the output pipe.
	cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60")
	var out captured
	cmd.Stdout = &out
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Kill()
	p.Kill()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Kill took %v", d)
	}
	if p.ExitCode() != -1 {
		t.Errorf("ExitCode = %d, want -1 (signal)", p.ExitCode())
	}
}

func TestStartError(t *testing.T) {
	if _, err := Start(exec.Command("/nonexistent/binary")); !errors.Is(err, ErrNotStarted) {
		t.Errorf("err = %v, want ErrNotStarted", err)
	}
}

type captured struct{ b []byte }

func (c *captured) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }
