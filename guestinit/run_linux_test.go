package guestinit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/invm/vfio"
	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// helperEnv selects a helper mode when the test binary re-executes itself
// as "the test" run by init.
const helperEnv = "GUESTINIT_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain is the program init runs in these tests.
func helperMain(mode string) int {
	switch mode {
	case "pass":
		wd, _ := os.Getwd()
		fmt.Printf("cwd=%s\n", wd)
		for _, kv := range os.Environ() {
			fmt.Printf("env %s\n", kv)
		}
		fmt.Print(strings.Repeat("0123456789abcdef", 20<<10)) // 320 KiB
		fmt.Println("\nend of stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		return 0
	case "fail":
		fmt.Println("--- FAIL: TestSomething")
		return 3
	case "crash":
		var m map[string]int
		m["x"] = 1 // panics: exit code 2
		return 0
	case "killed":
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		time.Sleep(time.Hour)
	case "leak":
		self, _ := os.Executable()
		c := exec.Command(self, "leaked-sleeper")
		c.Env = append(os.Environ(), helperEnv+"=sleep")
		c.Stdout = os.Stdout // holds the stdout pipe open too
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "outputs":
		dir := os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR")
		_ = os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		_ = os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha"), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "sub", "b.bin"), bytes.Repeat([]byte{7}, 100<<10), 0o644)
		_ = os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
		fmt.Println("outputs in", dir)
		return 0
	case "outputs-refused":
		dir := os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR")
		_ = os.WriteFile(filepath.Join(dir, "console.log"), []byte("mine"), 0o644)
		deep := filepath.Join(dir, strings.Repeat("d/", 40))
		_ = os.MkdirAll(deep, 0o755)
		_ = os.WriteFile(filepath.Join(deep, "f"), nil, 0o644)
		_ = os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("kept"), 0o644)
		return 0
	case "coverage":
		// Coverage data written, then a failing exit: it comes back all
		// the same.
		dir := os.Getenv("COVDIR")
		_ = os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		_ = os.WriteFile(filepath.Join(dir, "go_coverage.1.dat"), []byte("SF:a.go\nDA:1,1\nend_of_record\n"), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "sub", "covcounters.x"), []byte("counters"), 0o644)
		_ = os.WriteFile(filepath.Join(os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR"), "ok.txt"), []byte("kept"), 0o644)
		return 3
	case "outputs-coverage-name":
		dir := filepath.Join(os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR"), protocol.CoverageOutputDir)
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, "fake.dat"), []byte("SF:x\n"), 0o644)
		return 0
	case "abort-init":
		// A child holds the pipes too; then the test tells its init (here
		// the test process) to abort, with its output still in the pipe.
		self, _ := os.Executable()
		c := exec.Command(self, "abort-child")
		c.Env = append(os.Environ(), helperEnv+"=sleep")
		c.Stdout = os.Stdout
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Print(strings.Repeat("abcdefghijklmnop", 4<<10)) // 64 KiB
		fmt.Println("\nlast words before the abort")
		_ = unix.Kill(os.Getppid(), unix.SIGABRT)
		time.Sleep(time.Hour)
	case "stacks":
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "sleep", "hang":
		time.Sleep(time.Hour)
	case "signal":
		c := make(chan os.Signal, 1)
		signal.Notify(c, unix.SIGUSR1)
		fmt.Println("ready")
		select {
		case s := <-c:
			fmt.Printf("got %v\n", s)
			return 0
		case <-time.After(time.Minute):
			return 1
		}
	}
	return 99
}

// hostMode says how the fake host behaves.
type hostMode int

const (
	hostCollect hostMode = iota // protocol.Collect: reads, acks
	hostNoAck                   // reads everything, never acks
)

type outcome struct {
	res       protocol.SessionResult
	err       error  // from Collect
	stdout    string // forwarded stdout
	stderr    string
	diag      string
	console   string
	channel   protocol.Channel // what init opened
	mounter   *fakeMounter
	poweredOn bool // PowerOff never called
	runErr    error
	syncs     int
	dir       string // the test's working directory
	noAckSeen bool   // hostNoAck: the verdict arrived
	outputs   string // where the host wrote the test's output files
	aborted   bool   // Init.Abort was called
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	on func(string) // called with everything so far after each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	all := s.b.String()
	s.mu.Unlock()
	if s.on != nil {
		s.on(all)
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runInit runs a whole Init (fake mounter, fake power-off, unix sockets as
// channel, the test binary itself as the test) against a fake host.
func runInit(t *testing.T, mode string, cfgText string, host hostMode, onStdout func(string)) outcome {
	return runInitStacks(t, mode, cfgText, host, onStdout, nil)
}

// runInitStacks is runInit with a host that asks for stacks when stacks
// closes.
func runInitStacks(t *testing.T, mode string, cfgText string, host hostMode, onStdout func(string), stacks <-chan struct{}) outcome {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var bind func(string) (vfio.Binding, error)
	if cfgText == "" {
		cfg := protocol.GuestConfig{
			Path:          self,
			Dir:           dir,
			Env:           []string{helperEnv + "=" + mode, "EXTRA=yes"},
			Timeout:       protocol.Duration(time.Minute),
			KillGrace:     protocol.Duration(time.Second),
			AckTimeout:    protocol.Duration(10 * time.Second),
			Channel:       protocol.Channel{Kind: protocol.ChannelVsock, Port: 4242},
			HugePageSizes: []string{"2M"},
		}
		switch mode {
		case "vfio-panic":
			// Init itself panics before the test (in a hook it calls).
			cfg.VFIONICs = []string{"0000:00:10.0"}
			cfg.Env[0] = helperEnv + "=pass"
			bind = func(string) (vfio.Binding, error) { panic("bind exploded") }
		case "vfio-pass", "vfio-fail":
			// Init binds two NICs before the test; the second one fails
			// in vfio-fail.
			cfg.VFIONICs = []string{"0000:00:10.0", "0000:00:11.0"}
			cfg.Env[0] = helperEnv + "=pass"
			bind = func(a string) (vfio.Binding, error) {
				if mode == "vfio-fail" && a == "0000:00:11.0" {
					return vfio.Binding{}, fmt.Errorf("vfio: %s: %w; the guest's PCI NICs: 0000:00:10.0 (e1000)", a, vfio.ErrNoDevice)
				}
				return vfio.Binding{PCIAddress: a, PreviousDriver: "e1000", Group: 3, NoIOMMU: true, Node: "/dev/vfio/noiommu-3"}, nil
			}
		case "coverage":
			cfg.CoverageDir = filepath.Join(dir, "coverage")
			cfg.Env = append(cfg.Env, "COVDIR="+cfg.CoverageDir)
		case "hang":
			cfg.Timeout = protocol.Duration(300 * time.Millisecond)
			cfg.KillGrace = protocol.Duration(300 * time.Millisecond)
		}
		if host == hostNoAck {
			cfg.AckTimeout = protocol.Duration(200 * time.Millisecond)
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfgText = string(b)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "host.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := outcome{dir: dir, outputs: t.TempDir()}
	var console, stdout, stderr, diag syncBuffer
	stdout.on = onStdout
	o.mounter = &fakeMounter{}
	o.poweredOn = true
	var openMu sync.Mutex // Open runs once per stream, concurrently
	in := &Init{
		ConfigPath: cfgPath,
		Mounter:    o.mounter,
		BaseMounts: BaseMounts,
		ProcRoot:   "/proc",
		Clock:      realClock{sinceBoot: func() time.Duration { return 0 }},
		Sleep:      time.Sleep,
		Open: func(_ context.Context, ch protocol.Channel) (io.ReadWriteCloser, error) {
			openMu.Lock()
			o.channel = ch
			openMu.Unlock()
			return net.Dial("unix", sock)
		},
		OutputsDir:   filepath.Join(dir, "outputs"),
		Sync:         func() { o.syncs++ },
		PowerOff:     func() error { o.poweredOn = false; return nil },
		Console:      &console,
		Subreaper:    true,
		SetupTimeout: time.Minute,
		BindVFIO:     bind,
	}
	if mode == "abort-init" {
		in.Abort = func() { o.aborted = true }
	}
	if mode == "setup-hang" {
		// The host never answers and Open ignores its deadline: only the
		// run's watchdog ends the run.
		hang := make(chan struct{})
		defer close(hang)
		in.SetupTimeout = 300 * time.Millisecond
		in.Open = func(context.Context, protocol.Channel) (io.ReadWriteCloser, error) {
			<-hang
			return nil, errors.New("released")
		}
	}
	var noAck atomic.Bool
	hostDone := make(chan struct{})
	go func() {
		defer close(hostDone)
		switch host {
		case hostCollect:
			opts := protocol.CollectOptions{Stdout: &stdout, Stderr: &stderr, Diag: &diag, Files: protocol.DirSink{Dir: o.outputs}}
			if stacks != nil {
				opts.Stacks = stacks
			}
			o.res, o.err = protocol.CollectStreams(context.Background(), ln, opts)
		case hostNoAck:
			var wg sync.WaitGroup
			for {
				c, err := ln.Accept()
				if err != nil {
					wg.Wait()
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					r := protocol.NewReader(c)
					for {
						f, err := r.ReadFrame()
						if err != nil {
							return
						}
						if f.Type == protocol.FrameVerdict {
							noAck.Store(true)
						}
					}
				}()
			}
		}
	}()
	o.runErr = in.Run()
	if host == hostNoAck || mode == "setup-hang" {
		ln.Close()
	}
	<-hostDone
	o.noAckSeen = noAck.Load()
	o.stdout, o.stderr, o.diag, o.console = stdout.String(), stderr.String(), diag.String(), console.String()
	if t.Failed() || testing.Verbose() {
		t.Logf("console:\n%s\ndiag:\n%s", o.console, o.diag)
	}
	return o
}

// checkShutdown asserts init tore down and powered off.
func checkShutdown(t *testing.T, o outcome) {
	t.Helper()
	if o.runErr != nil {
		t.Errorf("Run = %v", o.runErr)
	}
	if o.poweredOn {
		t.Errorf("PowerOff not called")
	}
	if o.syncs != 2 {
		t.Errorf("%d syncs, want 2 (before and after unmounting)", o.syncs)
	}
	if n, m := len(o.mounter.filter("umount")), len(o.mounter.filter("mount")); n != m || n == 0 {
		t.Errorf("%d mounts, %d unmounts", m, n)
	}
}

func TestRunPass(t *testing.T) {
	t.Setenv("HOST_ONLY_SECRET", "leak")
	o := runInit(t, "pass", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil || !o.res.Pass {
		t.Fatalf("Collect: pass=%v err=%v reason=%q", o.res.Pass, o.err, o.res.Reason)
	}
	if o.channel.Port != 4242 {
		t.Errorf("opened %+v", o.channel)
	}
	for _, want := range []string{"env IN_VM=1\n", "env EXTRA=yes\n", "env TMPDIR=/tmp\n", "cwd=" + o.dir + "\n", "\nend of stdout\n"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if strings.Contains(o.stdout, "HOST_ONLY_SECRET") {
		t.Errorf("host environment leaked into the test")
	}
	if !strings.Contains(o.stdout, strings.Repeat("0123456789abcdef", 20<<10)) {
		t.Errorf("stdout incomplete: %d bytes", len(o.stdout))
	}
	if o.stderr != "to stderr\n" {
		t.Errorf("stderr %q", o.stderr)
	}
	if !strings.Contains(o.diag, "test exited: exit code 0") {
		t.Errorf("diag %q", o.diag)
	}
	if got := o.mounter.filter("mount"); got[len(got)-1] != "/dev/hugepages-2M" {
		t.Errorf("mounts %q", got)
	}
}

// TestRunAbortedInit: a test that tells init to abort (SIGABRT: a Go PID
// 1 crashes, and the kernel panics) has its processes killed and all it
// wrote forwarded before init aborts, however little the pumps had read.
func TestRunAbortedInit(t *testing.T) {
	o := runInit(t, "abort-init", "", hostCollect, nil)
	if !o.aborted {
		t.Fatal("init did not abort")
	}
	if want := strings.Repeat("abcdefghijklmnop", 4<<10) + "\nlast words before the abort\n"; o.stdout != want {
		t.Errorf("stdout: %d bytes ending %q, want the test's %d", len(o.stdout), o.stdout[max(0, len(o.stdout)-40):], len(want))
	}
	if v := o.res.Verdict; o.res.Pass || v == nil || !strings.Contains(o.res.Reason, "init received SIGABRT") {
		t.Errorf("verdict %+v, reason %q: want a failure naming SIGABRT", v, o.res.Reason)
	}
	if ps, err := (ProcTable{Root: "/proc"}).Descendants(os.Getpid()); err != nil || len(ps) != 0 {
		t.Errorf("left over: %v %v", ps, err)
	}
}

func TestRunFailures(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		exit   int
		signal string
		reason []string
	}{
		{"fail", 3, "", []string{"test exited with code 3"}},
		{"crash", 2, "", []string{"exited with code 2"}},
		{"killed", -1, "SIGKILL", []string{"killed by SIGKILL"}},
		{"leak", 0, "", []string{"left running after the test exited", "leaked-sleeper"}},
		{"hang", 2, "", []string{"timed out after 300ms"}},
		{"nonexistent-mode", 99, "", []string{"exited with code 99"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			o := runInit(t, tc.mode, "", hostCollect, nil)
			checkShutdown(t, o)
			if o.err != nil {
				t.Fatalf("Collect error %v (a failing test is a well-formed FAIL verdict)", o.err)
			}
			v := o.res.Verdict
			if o.res.Pass || v == nil || v.Pass {
				t.Fatalf("passed: %+v", o.res)
			}
			if v.ExitCode != tc.exit || v.Signal != tc.signal {
				t.Errorf("exit %d signal %q, want %d %q", v.ExitCode, v.Signal, tc.exit, tc.signal)
			}
			for _, r := range tc.reason {
				if !strings.Contains(o.res.Reason, r) {
					t.Errorf("reason %q lacks %q", o.res.Reason, r)
				}
			}
			if tc.mode == "leak" {
				if len(v.Leaked) != 1 || !strings.Contains(v.Leaked[0], "leaked-sleeper") {
					t.Errorf("leaked %q", v.Leaked)
				}
				// It was killed and reaped: nothing of ours is left.
				if ps, err := (ProcTable{Root: "/proc"}).Descendants(os.Getpid()); err != nil || len(ps) != 0 {
					t.Errorf("left over: %v %v", ps, err)
				}
			}
		})
	}
}

func TestRunForwardsSignals(t *testing.T) {
	var once sync.Once
	o := runInit(t, "signal", "", hostCollect, func(out string) {
		if strings.Contains(out, "ready\n") {
			once.Do(func() { _ = unix.Kill(os.Getpid(), unix.SIGUSR1) })
		}
	})
	checkShutdown(t, o)
	if !o.res.Pass || !strings.Contains(o.stdout, "got user defined signal 1") {
		t.Fatalf("pass=%v reason=%q stdout=%q", o.res.Pass, o.res.Reason, o.stdout)
	}
}

func TestRunOutputs(t *testing.T) {
	o := runInit(t, "outputs", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil || !o.res.Pass {
		t.Fatalf("pass=%v err=%v reason=%q", o.res.Pass, o.err, o.res.Reason)
	}
	if !strings.Contains(o.stdout, "outputs in "+filepath.Join(o.dir, "outputs")) {
		t.Errorf("TEST_UNDECLARED_OUTPUTS_DIR not set: %q", o.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(o.outputs, "a.txt")); err != nil || string(b) != "alpha" {
		t.Errorf("a.txt: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(o.outputs, "sub", "b.bin")); err != nil || !bytes.Equal(b, bytes.Repeat([]byte{7}, 100<<10)) {
		t.Errorf("sub/b.bin: %d bytes, %v", len(b), err)
	}
	if _, err := os.Lstat(filepath.Join(o.outputs, "link")); err == nil {
		t.Errorf("a symlink was shipped")
	}
	if o.res.Files != 2 {
		t.Errorf("%d files", o.res.Files)
	}
}

// TestRunOutputsRefused: files the host would refuse (a reserved name, a
// path too deep) fail the test with a reason naming them and the fix; the
// session stays well-formed (not an infrastructure failure) and the other
// files arrive.
func TestRunOutputsRefused(t *testing.T) {
	o := runInit(t, "outputs-refused", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil {
		t.Fatalf("session error %v: a refused file must fail the test, not the session", o.err)
	}
	if o.res.Pass {
		t.Fatalf("passed although two output files were not saved")
	}
	for _, want := range []string{`"console.log" not sent`, "runner's own file", "rename it", "levels deep"} {
		if !strings.Contains(o.res.Reason, want) {
			t.Errorf("reason %q lacks %q", o.res.Reason, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(o.outputs, "ok.txt")); err != nil || string(b) != "kept" {
		t.Errorf("ok.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(o.outputs, "console.log")); err == nil {
		t.Errorf("the reserved console.log was shipped")
	}
}

// TestRunCoverage: init makes GuestConfig.CoverageDir before the test and
// sends its files below protocol.CoverageOutputDir after it, also when the
// test failed (a crashing test's flushed coverage still comes back).
func TestRunCoverage(t *testing.T) {
	o := runInit(t, "coverage", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil || o.res.Pass || o.res.ExitCode() != 3 {
		t.Fatalf("pass=%v exit=%d err=%v, want a failing verdict with exit code 3", o.res.Pass, o.res.ExitCode(), o.err)
	}
	for name, want := range map[string]string{
		protocol.CoverageOutputDir + "/go_coverage.1.dat": "SF:a.go\nDA:1,1\nend_of_record\n",
		protocol.CoverageOutputDir + "/sub/covcounters.x": "counters",
		"ok.txt": "kept",
	} {
		if b, err := os.ReadFile(filepath.Join(o.outputs, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	if o.res.Files != 3 {
		t.Errorf("%d files, want 3", o.res.Files)
	}
}

// TestRunOutputsCoverageName: a test's own output below the coverage
// prefix is refused (it would pass for coverage on the host), naming it.
func TestRunOutputsCoverageName(t *testing.T) {
	o := runInit(t, "outputs-coverage-name", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil || o.res.Pass {
		t.Fatalf("pass=%v err=%v: want a failing verdict", o.res.Pass, o.err)
	}
	if want := "reserved for the test's coverage files"; !strings.Contains(o.res.Reason, want) {
		t.Errorf("reason %q lacks %q", o.res.Reason, want)
	}
	if o.res.Files != 0 {
		t.Errorf("%d files sent", o.res.Files)
	}
}

func TestRunStacksRequest(t *testing.T) {
	stacks := make(chan struct{})
	var once sync.Once
	o := runInitStacks(t, "stacks", "", hostCollect, func(out string) {
		if strings.Contains(out, "ready\n") {
			once.Do(func() { close(stacks) })
		}
	}, stacks)
	checkShutdown(t, o)
	if o.err != nil || o.res.Pass {
		t.Fatalf("pass=%v err=%v", o.res.Pass, o.err)
	}
	if !strings.Contains(o.res.Reason, "asked for the test's goroutine stacks") || !strings.Contains(o.stderr, "goroutine ") {
		t.Errorf("reason %q, stderr %q", o.res.Reason, o.stderr)
	}
}

// TestRunVFIONICs: init binds the config's vfio_nics before the test and
// reports each binding; a NIC that does not bind fails the test (a
// well-formed FAIL verdict naming the NIC and why), which never runs.
func TestRunVFIONICs(t *testing.T) {
	o := runInit(t, "vfio-pass", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil || !o.res.Pass {
		t.Fatalf("pass=%v err=%v reason=%q", o.res.Pass, o.err, o.res.Reason)
	}
	for _, want := range []string{"vfio: 0000:00:10.0: e1000 -> vfio-pci, IOMMU group 3 (no-IOMMU), /dev/vfio/noiommu-3", "vfio: 0000:00:11.0: e1000 -> vfio-pci"} {
		if !strings.Contains(o.diag, want) {
			t.Errorf("diag lacks %q", want)
		}
	}
	o = runInit(t, "vfio-fail", "", hostCollect, nil)
	checkShutdown(t, o)
	if o.err != nil || o.res.Pass || o.res.Verdict == nil {
		t.Fatalf("pass=%v err=%v (want a well-formed FAIL verdict)", o.res.Pass, o.err)
	}
	want := "vfio_nics: binding NIC 0000:00:11.0 to vfio-pci before the test failed: vfio: 0000:00:11.0: no such PCI device; the guest's PCI NICs: 0000:00:10.0 (e1000)"
	if o.res.Reason != want {
		t.Errorf("reason %q, want %q", o.res.Reason, want)
	}
	if strings.Contains(o.stdout, "end of stdout") {
		t.Errorf("the test ran after a failed binding")
	}
}

func TestRunNoAck(t *testing.T) {
	o := runInit(t, "pass", "", hostNoAck, nil)
	checkShutdown(t, o) // powered off anyway, after the bounded wait
	if !o.noAckSeen {
		t.Errorf("host never saw the verdict")
	}
	if !strings.Contains(o.console, "not acknowledged") {
		t.Errorf("console %q lacks the missing ack", o.console)
	}
}

func TestRunBadConfig(t *testing.T) {
	o := runInit(t, "", `{"path": "relative"}`, hostCollect, nil)
	checkShutdown(t, o)
	if o.channel != protocol.DefaultChannel() {
		t.Errorf("channel %+v, want the default", o.channel)
	}
	if o.err != nil || o.res.Pass || !strings.Contains(o.res.Reason, "guest config") {
		t.Fatalf("pass=%v err=%v reason=%q", o.res.Pass, o.err, o.res.Reason)
	}
}

func TestRunRequiresPID1(t *testing.T) {
	in := Linux()
	if err := in.Run(); !errors.Is(err, ErrNotPID1) {
		t.Fatalf("Run = %v, want ErrNotPID1", err)
	}
}

// TestRunFatalEnds: a panic in init and the run's watchdog end the run
// through the same shutdown as a test's own end: a FAIL verdict saying why
// (a panic with its stack) when the host is there, the streams closed, the
// mounts torn down, power-off; a run stuck in setup is abandoned after
// TestStopDeadline and reported.
func TestRunFatalEnds(t *testing.T) {
	t.Run("panic", func(t *testing.T) {
		o := runInit(t, "vfio-panic", "", hostCollect, nil)
		checkShutdown(t, o)
		if o.err != nil || o.res.Pass || o.res.Verdict == nil {
			t.Fatalf("pass=%v err=%v: want a well-formed FAIL verdict", o.res.Pass, o.err)
		}
		for _, want := range []string{"init panic: bind exploded", "guestinit.(*session).bindVFIO"} {
			if !strings.Contains(o.res.Reason, want) {
				t.Errorf("reason %q lacks %q", o.res.Reason, want)
			}
		}
		if strings.Contains(o.stdout, "end of stdout") {
			t.Errorf("the test ran after init panicked")
		}
	})
	t.Run("setup watchdog", func(t *testing.T) {
		o := runInit(t, "setup-hang", "", hostNoAck, nil)
		checkShutdown(t, o)
		for _, want := range []string{"FAIL: watchdog: init setup did not finish in time", "test abandoned after", "tasks still running: main"} {
			if !strings.Contains(o.console, want) {
				t.Errorf("console lacks %q", want)
			}
		}
	})
}
