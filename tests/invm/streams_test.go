package invm

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// TestOutputsShipped: files the test writes to $TEST_UNDECLARED_OUTPUTS_DIR
// in the guest arrive in -outputs-dir on the host, byte for byte.
func TestOutputsShipped(t *testing.T) {
	needEnv(t)
	t.Parallel()
	out := filepath.Join(t.TempDir(), "outputs")
	state := filepath.Join(t.TempDir(), "state")
	o := runInvm(t, state, nil, "-outputs-dir", out, env.payload, "-test.run=^TestOutputs$")
	if o.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", o.code, o.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "report.txt")); err != nil || string(b) != "PAYLOAD-OUTPUT\n" {
		t.Errorf("report.txt: %q %v", b, err)
	}
	b, err := os.ReadFile(filepath.Join(out, "sub", "big.bin"))
	if err != nil || len(b) != 3<<20 {
		t.Fatalf("big.bin: %d bytes, %v", len(b), err)
	}
	for i, c := range b {
		if c != byte(i%251) {
			t.Fatalf("big.bin differs at %d", i)
		}
	}
	assertClean(t, state)
}

// TestFloodThenVerdict: 32 MiB of output, then a pass: every byte arrives
// and the verdict is the test's.
func TestFloodThenVerdict(t *testing.T) {
	needEnv(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	lines := 0
	o := runInvm(t, state, func(line string) {
		if len(line) == 1023 {
			lines++
		}
	}, env.payload, "-test.run=^TestFlood$")
	if o.code != 0 || lines != 32*1024 {
		t.Fatalf("exit %d, %d full lines (want %d)\nstderr:\n%s", o.code, lines, 32*1024, o.stderr)
	}
	assertClean(t, state)
}

// TestTransports runs the same pass over each transport this host can
// offer; a forced transport the host lacks fails as a usage error naming
// the fix, never silently falls back.
func TestTransports(t *testing.T) {
	needEnv(t)
	_, vhostErr := os.OpenFile("/dev/vhost-vsock", os.O_RDWR, 0)
	for _, tr := range []string{"vhost-user-vsock", "virtio-serial", "vhost-vsock"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "state")
			o := runInvm(t, state, nil, "-verbose", "-transport", tr, env.payload, "-test.run=^TestPass$", "-test.v")
			if tr == "vhost-vsock" && vhostErr != nil {
				if o.code != runner.ExitUsage || !strings.Contains(o.stderr, "/dev/vhost-vsock is not usable") {
					t.Fatalf("no /dev/vhost-vsock here: exit %d, want %d with the reason\nstderr:\n%s", o.code, runner.ExitUsage, o.stderr)
				}
				return
			}
			if o.code != 0 || !strings.Contains(o.stdout, "--- PASS: TestPass") || !strings.Contains(o.stderr, "invm: transport "+tr+" (") {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.stdout, o.stderr)
			}
			assertClean(t, state)
		})
	}
}

// TestGuestLocalCID: in a real guest on vhost-device-vsock, the init's
// LocalVsockCID (the CID a template listening on kernel vhost-vsock
// announces, which the host checks after a restore) is the daemon's guest
// CID. Kernel vhost-vsock itself is not on this machine.
func TestGuestLocalCID(t *testing.T) {
	needEnv(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	o := runInvm(t, state, nil, "-start", "cold", "-transport", "vhost-user-vsock", "-env", fmt.Sprintf("INVMTEST_WANT_CID=%d", vsock.DefaultGuestCID),
		env.payload, "-test.run=^TestLocalVsockCID$", "-test.v")
	if o.code != 0 || !strings.Contains(o.stdout, fmt.Sprintf("guest vsock CID %d", vsock.DefaultGuestCID)) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.stdout, o.stderr)
	}
	assertClean(t, state)
}

// TestCommandInGuest runs a command in the booted guest after the test
// (the debug path of invm -command / -shell).
func TestCommandInGuest(t *testing.T) {
	needEnv(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	o := runInvm(t, state, nil, "-command", runner.GuestDir+"/"+filepath.Base(env.payload)+" -test.run=^TestPass$ -test.v",
		env.payload, "-test.run=^TestFail$")
	if o.code != 1 {
		t.Errorf("exit %d, want the test's 1", o.code)
	}
	for _, w := range []string{"PAYLOAD failing on purpose", "--- PASS: TestPass", "[invm: exit status 0]"} {
		if !strings.Contains(o.stdout+o.stderr, w) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, o.stdout, o.stderr)
		}
	}
	assertClean(t, state)
}

// TestCountTranslations: -count-translations puts QEMU's translation block
// count at the verdict into the timings line under TCG (a Linux boot makes
// tens of thousands), and nothing under KVM.
func TestCountTranslations(t *testing.T) {
	needEnv(t)
	t.Parallel()
	o := runInvm(t, "", nil, "-verbose", "-count-translations", env.payload, "-test.run=^TestPass$")
	if o.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", o.code, o.stderr)
	}
	m := regexp.MustCompile(`; (\d+) translation blocks at the verdict`).FindStringSubmatch(o.stderr)
	switch {
	case strings.Contains(o.stderr, "invm: accelerator kvm"):
		if m != nil {
			t.Errorf("a translation block count under KVM: %s", m[0])
		}
	case m == nil:
		t.Errorf("no translation block count in the timings line:\n%s", o.stderr)
	default:
		if n, _ := strconv.Atoi(m[1]); n < 10000 {
			t.Errorf("%d translation blocks at the verdict: a boot makes tens of thousands", n)
		}
	}
}

// TestSIGTERMStacks: SIGTERM to invm (Bazel's timeout) gets the test's
// goroutine stacks from the guest, then an orderly stop within 15 s.
func TestSIGTERMStacks(t *testing.T) {
	needEnv(t)
	t.Parallel()
	vmSlots <- struct{}{}
	defer func() { <-vmSlots }()
	state := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(env.invm, invmArgs("-state-dir", state,
		env.payload, "-test.run=^TestStacks$", "-test.v")...)
	cmd.Dir = t.TempDir()
	var stdout, stderr syncBuf
	var sent time.Time
	var once sync.Once
	stdout.on = func(all string) {
		if strings.Contains(all, "PAYLOAD-READY-FOR-SIGTERM") {
			once.Do(func() { sent = time.Now(); _ = cmd.Process.Signal(syscall.SIGTERM) })
		}
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("invm did not end\nstderr:\n%s", stderr.String())
	}
	if sent.IsZero() {
		t.Fatalf("the payload never got ready\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if d := time.Since(sent); d > 15*time.Second {
		t.Errorf("stopped %v after SIGTERM, want within 15 s", d)
	}
	all := stdout.String() + stderr.String()
	for _, w := range []string{"SIGQUIT", "payloadBlockedHere", "asked for the test's goroutine stacks"} {
		if !strings.Contains(all, w) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, stdout.String(), stderr.String())
		}
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit 0 after SIGTERM")
	}
	assertClean(t, state)
}

// syncBuf is a concurrency-safe buffer calling on with everything so far.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	on func(string)
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, _ := s.b.Write(p)
	all := s.b.String()
	s.mu.Unlock()
	if s.on != nil {
		s.on(all)
	}
	return n, nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKillAtRandomPoint kills the vsock daemon or QEMU at a random moment
// of a run (boot, test, verdict): every run must end as an infrastructure
// failure (never a pass, never the test's own code), in bounded time, with
// nothing left behind.
func TestKillAtRandomPoint(t *testing.T) {
	needEnv(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	// The daemon only exists on a cold boot over vhost-user-vsock; QEMU is
	// killed in the default start (a restored template where it applies).
	for _, k := range []struct {
		victim string
		args   []string
	}{
		{"vhost-device-vsock", []string{"-start", "cold", "-transport", "vhost-user-vsock"}},
		{"qemu-system", []string{"-v"}},
	} {
		victim := k.victim
		for range 3 {
			delay := time.Duration(rng.Int64N(int64(8 * time.Second)))
			t.Run(victim+"/"+delay.Round(time.Millisecond).String(), func(t *testing.T) {
				t.Parallel()
				state := filepath.Join(t.TempDir(), "state")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				killed := make(chan bool, 1)
				go func() {
					select {
					case <-time.After(delay):
					case <-ctx.Done():
						killed <- false
						return
					}
					// Retry until the process exists (the run may still be
					// before the daemon's or QEMU's start).
					for range 600 {
						if killMatching(victim, state) {
							killed <- true
							return
						}
						select {
						case <-ctx.Done():
							killed <- false
							return
						case <-time.After(50 * time.Millisecond):
						}
					}
					killed <- false
				}()
				o := runInvm(t, state, nil, append(k.args, env.payload, "-test.run=^TestWaitForKill$")...)
				cancel()
				if !<-killed {
					t.Fatalf("found no %s of the run to kill after %v (exit %d)", victim, delay, o.code)
				}
				// A restore killed before its guest spoke is retried as a cold
				// boot in the same run (documented, TestSnapshotFallback): its
				// pass is right, and the log must say so.
				if o.code == 0 && strings.Contains(o.stderr, "snapshot start failed before the guest spoke") {
					t.Logf("killed a restore before its guest spoke: the run fell back to a cold boot and passed")
				} else if o.code == 0 || o.code < 64 || o.code > 75 {
					t.Errorf("exit %d after killing %s at %v, want an infrastructure failure (64..75)\nstderr:\n%s", o.code, victim, delay, o.stderr)
				}
				if o.elapsed > 2*time.Minute {
					t.Errorf("took %v", o.elapsed)
				}
				assertClean(t, state)
			})
		}
	}
}

// killMatching SIGKILLs the process named name whose command line mentions
// state; it reports whether it found one.
func killMatching(name, state string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		argv0, _, _ := bytes.Cut(b, []byte{0})
		// By executable name: the state path holds the test's name, which
		// holds the victim's name too.
		// Not a QEMU making the run's snapshot template (its sockets are
		// template-*.sock in the state directory): killing that one makes
		// the run boot cold, and the test pass; the victim is the test's VM.
		// Nor the KVM canary (no initrd: a run's VM boots one or restores
		// a template, -incoming).
		if strings.Contains(filepath.Base(string(argv0)), name) && bytes.Contains(b, []byte(state)) &&
			!bytes.Contains(b, []byte("template-qmp.sock")) &&
			(name != "qemu-system" || bytes.Contains(b, []byte("\x00-initrd\x00")) || bytes.Contains(b, []byte("\x00-incoming\x00"))) {
			var pid int
			if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				return true
			}
		}
	}
	return false
}
