package runner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
)

// fakeVM stands in for QEMU: a process that runs until exit is called
// (closing its stdin) or it is killed; what is written to console reaches
// the session's console as QEMU's output would.
type fakeVM struct {
	vm      *proc.Process
	stdin   io.WriteCloser
	console *console
}

func startFakeVM(t *testing.T, script string) *fakeVM {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeVM{stdin: in, console: &console{}}
	cmd.Stdout, cmd.Stderr = f.console, f.console
	if f.vm, err = proc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.vm.Kill)
	return f
}

// exit makes the fake VM exit by itself (the guest powered off).
func (f *fakeVM) exit() { f.stdin.Close() }

// guestFunc plays the guest on the session's listener.
type guestFunc func(t *testing.T, dial func() net.Conn, vm *fakeVM)

// runSession runs vmSession.run against a fake VM and a scripted guest.
func runSession(t *testing.T, o Options, script string, guest guestFunc) (protocol.SessionResult, error, *bytes.Buffer) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o.Log = &log
	o = o.WithDefaults()
	vm := startFakeVM(t, script)
	s := &vmSession{o: o, vm: vm.vm, con: vm.console}
	dial := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Error(err)
			return nil
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	go guest(t, dial, vm)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := s.run(ctx, ln)
	return res, err, &log
}

// verdictThen sends a verdict on one connection, waits for the Ack, then
// does after (power off, hang, panic...).
func verdictThen(v protocol.Verdict, after func(*fakeVM)) guestFunc {
	return func(t *testing.T, dial func() net.Conn, vm *fakeVM) {
		c := dial()
		if c == nil {
			return
		}
		g, err := protocol.NewGuest(c, "fake guest")
		if err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Finish(ctx, v); err != nil {
			t.Errorf("guest: %v", err)
		}
		c.Close()
		after(vm)
	}
}

// TestSessionAfterVerdict: a pass needs the guest's orderly power-off after
// the Ack; a guest that hangs, panics or whose QEMU fails after a passing
// verdict is an infrastructure failure (ErrAfterVerdict), never a pass.
func TestSessionAfterVerdict(t *testing.T) {
	pass := protocol.Verdict{Pass: true}
	fail := protocol.Verdict{ExitCode: 1, Reason: "test failed"}
	for _, tc := range []struct {
		name    string
		script  string
		verdict protocol.Verdict
		after   func(*fakeVM)
		wantErr error
		wantLog string
	}{
		{"orderly power-off", "cat >/dev/null", pass, (*fakeVM).exit, nil, ""},
		{"hangs after a pass", "cat >/dev/null", pass, func(*fakeVM) {}, ErrAfterVerdict, ""},
		{"panics after a pass", "cat >/dev/null", pass, func(vm *fakeVM) {
			_, _ = vm.console.Write([]byte("[    1.0] " + PanicMarker + ": Attempted to kill init!\n"))
			vm.exit()
		}, ErrAfterVerdict, ""},
		{"QEMU fails after a pass", "cat >/dev/null; exit 3", pass, (*fakeVM).exit, ErrAfterVerdict, ""},
		{"hangs after a failure: the failure stands", "cat >/dev/null", fail, func(*fakeVM) {}, nil, "did not power off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{PoweroffTimeout: 300 * time.Millisecond}
			res, err, log := runSession(t, o, tc.script, verdictThen(tc.verdict, tc.after))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v (log: %s)", err, tc.wantErr, log)
			}
			if err == nil && res.Pass != tc.verdict.Pass {
				t.Errorf("pass = %v, want %v", res.Pass, tc.verdict.Pass)
			}
			if err != nil {
				r := Result{Pass: res.Pass, Verdict: res.Verdict}
				if code := ExitCode(r, err); code != ExitAfterVerdict || !IsInfrastructure(r, err) {
					t.Errorf("exit code %d (want %d), infrastructure %v", code, ExitAfterVerdict, IsInfrastructure(r, err))
				}
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log %q lacks %q", log, tc.wantLog)
			}
		})
	}
}

// TestSessionChannelTimeoutNeedsHello: a connection that never speaks
// (what QEMU makes for virtio-serial before the guest boots) does not end
// the boot phase: ChannelTimeout still applies and blames the boot, not
// the test.
func TestSessionChannelTimeoutNeedsHello(t *testing.T) {
	o := Options{ChannelTimeout: 300 * time.Millisecond}
	res, err, log := runSession(t, o, "cat >/dev/null", func(t *testing.T, dial func() net.Conn, _ *fakeVM) {
		dial() // connected, silent: a hung boot behind virtio-serial
	})
	if !errors.Is(err, ErrNoChannel) {
		t.Fatalf("err = %v, want ErrNoChannel (log: %s)", err, log)
	}
	if r := (Result{Pass: res.Pass}); !IsInfrastructure(r, err) {
		t.Errorf("a boot that never reached init must be an infrastructure failure")
	}
}

// TestConsoleLogBounded: the console log keeps its head and its tail and
// says how much it dropped between them, however much the guest prints.
func TestConsoleLogBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"under the head", []string{"abc", "de"}, "abcde"},
		{"head and tail exactly", []string{"0123", "4567"}, "01234567"},
		{"dropped in the middle", []string{"0123456789", "abcdefghij"},
			"0123\n[rules_go_vm: 12 bytes of console output dropped here: the log keeps its first 4 and last 4 bytes]\nghij"},
		{"wrapping writes", []string{"0123", "abc", "defgh", "ij"},
			"0123\n[rules_go_vm: 6 bytes of console output dropped here: the log keeps its first 4 and last 4 bytes]\nghij"},
		{"many small writes", strings.Split("0123456789abcdefghij", ""),
			"0123\n[rules_go_vm: 12 bytes of console output dropped here: the log keeps its first 4 and last 4 bytes]\nghij"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var file bytes.Buffer
			con := &console{file: newHeadTail(&file, 4, 4)}
			for _, w := range tc.writes {
				_, _ = con.Write([]byte(w))
			}
			if err := con.Close(); err != nil {
				t.Fatal(err)
			}
			_, _ = con.Write([]byte("after close"))
			if file.String() != tc.want {
				t.Errorf("log %q, want %q", file.String(), tc.want)
			}
		})
	}
	// A flood: 64 MiB in 32 KiB writes keeps the ring at the tail's size.
	var file bytes.Buffer
	h := newHeadTail(&file, ConsoleHead, ConsoleTail)
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for range (64 << 20) / len(chunk) {
		_, _ = h.Write(chunk)
	}
	if cap(h.ring) > 2*ConsoleTail || file.Len() != ConsoleHead {
		t.Errorf("ring cap %d (tail %d), file %d bytes before Close (head %d)", cap(h.ring), ConsoleTail, file.Len(), ConsoleHead)
	}
	_ = h.Close()
	if max := ConsoleHead + ConsoleTail + 200; file.Len() > max {
		t.Errorf("console log of %d bytes, bound %d", file.Len(), max)
	}
}

// TestSessionBadHelloEndsBoot: a guest that speaks, but not a valid Hello
// (another protocol version), ends the boot phase at once with a bad
// session, not a channel timeout.
func TestSessionBadHelloEndsBoot(t *testing.T) {
	o := Options{ChannelTimeout: 10 * time.Second}
	_, err, log := runSession(t, o, "cat >/dev/null", func(t *testing.T, dial func() net.Conn, _ *fakeVM) {
		c := dial()
		if c == nil {
			return
		}
		p := protocol.EncodeHello(protocol.Hello{Version: protocol.Version + 1, Role: protocol.RoleControl})
		frame, err := protocol.AppendFrame(nil, protocol.FrameHello, p)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = c.Write(frame)
	})
	if !errors.Is(err, ErrBadSession) || !strings.Contains(err.Error(), "unsupported version") {
		t.Fatalf("err = %v, want ErrBadSession saying unsupported version (log: %s)", err, log)
	}
}

// TestFileRouter: the guest's coverage files land in Options.CoverageDir,
// its other output files in Options.OutputsDir; a file without a directory
// is dropped.
func TestFileRouter(t *testing.T) {
	for _, tc := range []struct {
		name              string
		outputs, coverage bool
		path              string
		want              string // file written, relative to the temp dir; "" = dropped
	}{
		{"output", true, true, "a/b.txt", "out/a/b.txt"},
		{"coverage", true, true, protocol.CoverageOutputDir + "/go_coverage.1.dat", "cov/go_coverage.1.dat"},
		{"coverage subdir", false, true, protocol.CoverageOutputDir + "/d/covmeta.x", "cov/d/covmeta.x"},
		{"coverage, no coverage dir", true, false, protocol.CoverageOutputDir + "/x.dat", ""},
		{"output, no outputs dir", false, true, "a.txt", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var r fileRouter
			if tc.outputs {
				r.outputs = filepath.Join(dir, "out")
			}
			if tc.coverage {
				r.coverage = filepath.Join(dir, "cov")
			}
			w, err := r.Create(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(w, "data"); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var got []string
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					got = append(got, rel)
				}
				return nil
			})
			want := []string{}
			if tc.want != "" {
				want = []string{tc.want}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("files %q, want %q", got, want)
			}
		})
	}
}
