package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP is a QMP server on a unix socket: it greets, answers
// qmp_capabilities, query-status and quit (then SHUTDOWN and hang-up), and
// sends the events given to emit.
type fakeQMP struct {
	socket string
	emit   chan string // raw event names to send
	status string
	silent bool // never answers query-status
	done   chan struct{}
}

func startFake(t *testing.T, status string) *fakeQMP {
	t.Helper()
	f := &fakeQMP{socket: filepath.Join(t.TempDir(), "qmp.sock"), emit: make(chan string, 4), status: status, done: make(chan struct{})}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); <-f.done })
	go f.serve(ln)
	return f
}

func (f *fakeQMP) serve(ln net.Listener) {
	defer close(f.done)
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	send := func(format string, a ...any) { fmt.Fprintf(c, format+"\r\n", a...) }
	send(`{"QMP": {"version": {"qemu": {"micro": 2, "minor": 1, "major": 11}, "package": "fake"}, "capabilities": ["oob"]}}`)
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		// A JSON stream, like QEMU's parser: commands need no newline.
		dec := json.NewDecoder(c)
		for {
			var cmd struct {
				Execute   string
				Arguments struct {
					CommandLine string `json:"command-line"`
				}
			}
			if dec.Decode(&cmd) != nil {
				return
			}
			if cmd.Execute == "human-monitor-command" {
				cmd.Execute += " " + cmd.Arguments.CommandLine
			}
			cmds <- cmd.Execute
		}
	}()
	for {
		select {
		case name := <-f.emit:
			send(`{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": %q, "data": {"action": "pause", "reason": "guest-shutdown"}}`, name)
		case cmd, ok := <-cmds:
			if !ok {
				return
			}
			switch cmd {
			case "qmp_capabilities":
				send(`{"return": {}}`)
			case "query-status":
				if !f.silent {
					send(`{"return": {"status": %q, "running": true}}`, f.status)
				}
			case "human-monitor-command info registers":
				send(`{"return": "RAX=0000000000000000\r\nRIP=ffffffff81000000 RFL=00000002\r\n"}`)
			case "human-monitor-command info jit":
				send(`{"return": "Translation buffer state:\r\ngen code size       20605587/1073736704\r\nTB count            37757\r\n"}`)
			case "quit":
				send(`{"return": {}}`)
				send(`{"timestamp": {"seconds": 1700000001, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`)
				return
			default:
				send(`{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}}`, cmd)
			}
		}
	}
}

func attach(t *testing.T, socket string) Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := QEMU{}.Attach(ctx, socket, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func nextEvent(t *testing.T, m Monitor) Event {
	t.Helper()
	select {
	case e, ok := <-m.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestQMPStatusEventsQuit(t *testing.T) {
	f := startFake(t, "running")
	m := attach(t, f.socket)
	if v := m.(*QMP).Version(); v != "11.1.2" {
		t.Errorf("Version = %q", v)
	}
	ctx := context.Background()
	st, err := m.Status(ctx)
	if err != nil || st != "running" {
		t.Errorf("Status = %q, %v", st, err)
	}
	regs, err := m.(*QMP).HumanMonitor(ctx, "info registers")
	if err != nil || !strings.Contains(regs, "RIP=ffffffff81000000") {
		t.Errorf("HumanMonitor(info registers) = %q, %v", regs, err)
	}
	f.emit <- "GUEST_PANICKED"
	if e := nextEvent(t, m); e.Kind != EventPanic || e.Name != "GUEST_PANICKED" || e.Reason != "pause" || e.Time.Unix() != 1700000000 {
		t.Errorf("event %+v, want a panic", e)
	}
	f.emit <- "RESET"
	if e := nextEvent(t, m); e.Kind != EventReset || e.Reason != "guest-shutdown" {
		t.Errorf("event %+v, want a reset", e)
	}
	f.emit <- "BLOCK_JOB_READY"
	if e := nextEvent(t, m); e.Kind != EventOther {
		t.Errorf("event %+v, want other", e)
	}
	if err := m.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, m); e.Kind != EventShutdown || e.Reason != "host-qmp-quit" {
		t.Errorf("event %+v, want the quit's shutdown", e)
	}
	select { // the hang-up closes the events
	case _, ok := <-m.Events():
		if ok {
			t.Error("event after the hang-up")
		}
	case <-time.After(10 * time.Second):
		t.Error("events not closed after QEMU hung up")
	}
}

func TestQMPCommandError(t *testing.T) {
	f := startFake(t, "running")
	m := attach(t, f.socket).(*QMP)
	err := m.run(context.Background(), "no-such-command", nil, nil)
	if !errors.Is(err, ErrMonitor) || !strings.Contains(err.Error(), "has not been found") {
		t.Errorf("err = %v", err)
	}
}

func TestQMPStatusTimeout(t *testing.T) {
	f := startFake(t, "running")
	f.silent = true
	m := attach(t, f.socket)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Status(ctx); !errors.Is(err, ErrMonitor) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Status on a silent monitor = %v, want ErrMonitor and the deadline", err)
	}
}

func TestAttachGivesUp(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "never.sock")
	exited := make(chan struct{})
	close(exited)
	if _, err := (QEMU{}).Attach(context.Background(), socket, exited); !errors.Is(err, ErrAttach) || !strings.Contains(err.Error(), "exited first") {
		t.Errorf("Attach after the VM exited = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := (QEMU{}).Attach(ctx, socket, nil); !errors.Is(err, ErrAttach) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Attach with no server = %v", err)
	}
	// A server that never greets.
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "mute.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := (QEMU{}).Attach(ctx2, ln.Addr().String(), nil); !errors.Is(err, ErrAttach) {
		t.Errorf("Attach to a mute server = %v", err)
	}
}

func TestFor(t *testing.T) {
	for _, name := range []string{"", "qemu"} {
		if b, err := For(name); err != nil || b.Name() != "qemu" {
			t.Errorf("For(%q) = %v, %v", name, b, err)
		}
	}
	if _, err := For("cloud-hypervisor"); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("For(cloud-hypervisor) = %v", err)
	}
}

func TestTranslationBlocks(t *testing.T) {
	f := startFake(t, "running")
	m := attach(t, f.socket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := m.(*QMP).TranslationBlocks(ctx); n != 37757 || err != nil {
		t.Errorf("TranslationBlocks = %d, %v; want 37757", n, err)
	}
}

func TestParseTBCount(t *testing.T) {
	// QEMU 7.2's and 11's "info jit" (TCG), and what KVM answers.
	const tcg = "Translation buffer state:\ngen code size       24526995/1073736704\nTB count            42799\nTB avg target size  18 max=2048 bytes\n"
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{tcg, 42799, ""},
		{strings.ReplaceAll(tcg, "\n", "\r\n"), 42799, ""},
		{"TB count 0\n", 0, ""},
		{"JIT information is only available with accel=tcg\r\n", 0, "no TB count"},
		{"TB count            lots\n", 0, `TB count "lots"`},
		{"", 0, "no TB count"},
	} {
		n, err := ParseTBCount(tc.in)
		switch {
		case tc.err == "" && (err != nil || n != tc.want):
			t.Errorf("ParseTBCount(%q) = %d, %v; want %d", tc.in, n, err, tc.want)
		case tc.err != "" && (err == nil || !errors.Is(err, ErrMonitor) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseTBCount(%q) = %d, %v; want ErrMonitor with %q", tc.in, n, err, tc.err)
		}
	}
}
