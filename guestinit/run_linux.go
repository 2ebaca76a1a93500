package guestinit

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// Signal is one entry of the signal table.
type Signal struct {
	// Sig is the signal init catches and forwards to the test.
	Sig syscall.Signal
	// Fail marks the run as failed when init receives it.
	Fail bool
}

// Signals is the table of signals init forwards to the test process.
// SIGPIPE is deliberately absent: init would get it for its own writes to a
// closed channel.
var Signals = []Signal{
	{unix.SIGTERM, true},
	{unix.SIGINT, true},
	{unix.SIGQUIT, true},
	{unix.SIGALRM, true},
	{unix.SIGHUP, false},
	{unix.SIGUSR1, false},
	{unix.SIGUSR2, false},
	{unix.SIGWINCH, false},
}

// testPrep is what RunTest needs of the guest before a test that depends
// on nothing of the test's config: init a child subreaper, /dev/null, the
// output pipes, the outputs directory and the signal forwarding. A session
// makes it before a template waits (prepareTest), so that a restore does not
// run that code again: under TCG every code path a restore runs costs its
// first translation (~15 ms for these on x86_64, measured with a probe).
type testPrep struct {
	devnull                *os.File
	outR, outW, errR, errW *os.File
	outDir                 string
	sigc                   chan os.Signal
	abortc                 chan os.Signal
	fatal                  map[os.Signal]bool
	// err is what could not be made; RunTest fails the test with it.
	err error
}

// prepareTest makes a testPrep; what fails is in its err.
func (in *Init) prepareTest() *testPrep {
	p := &testPrep{outDir: in.OutputsDir}
	if p.outDir == "" {
		p.outDir = OutputsDir
	}
	var err error
	if in.Subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			p.err = fmt.Errorf("set child subreaper: %w", err)
			return p
		}
	}
	if p.devnull, err = os.Open(os.DevNull); err != nil {
		p.err = fmt.Errorf("open %s: %w", os.DevNull, err)
		return p
	}
	if p.outR, p.outW, err = os.Pipe(); err != nil {
		p.err = fmt.Errorf("stdout pipe: %w", err)
		return p
	}
	if p.errR, p.errW, err = os.Pipe(); err != nil {
		p.err = fmt.Errorf("stderr pipe: %w", err)
		return p
	}
	if err := os.MkdirAll(p.outDir, 0o777); err != nil {
		p.err = fmt.Errorf("create the outputs directory: %w", err)
		return p
	}
	// A signal that comes before the test starts waits in sigc and is
	// forwarded to the test (and fails it, if fatal) once it runs.
	p.sigc = make(chan os.Signal, 8)
	p.fatal = map[os.Signal]bool{}
	for _, s := range Signals {
		signal.Notify(p.sigc, s.Sig)
		p.fatal[s.Sig] = s.Fail
	}
	p.abortc = make(chan os.Signal, 1)
	signal.Notify(p.abortc, unix.SIGABRT)
	return p
}

// close releases what p holds (a test that never ran).
func (p *testPrep) close() {
	if p.sigc != nil {
		signal.Stop(p.sigc)
		signal.Stop(p.abortc)
	}
	for _, f := range []*os.File{p.devnull, p.outR, p.outW, p.errR, p.errW} {
		if f != nil {
			f.Close()
		}
	}
}

// RunTest runs the test described by cfg (defaults applied), streams its
// stdout and stderr into g, and returns the verdict: it waits for the test
// to exit (forwarding Signals, enforcing cfg.Timeout with SIGQUIT then
// SIGKILL), names and kills the processes left alive, reaps all children
// until ECHILD and drains the output. It never sends the verdict itself.
// started is when init started (for Timings.Setup).
func (in *Init) RunTest(cfg protocol.GuestConfig, g *protocol.Guest, started time.Time) protocol.Verdict {
	return in.runTest(cfg, g, started, in.prepareTest())
}

// runTest is RunTest with what prep made (released when it returns).
func (in *Init) runTest(cfg protocol.GuestConfig, g *protocol.Guest, started time.Time, prep *testPrep) protocol.Verdict {
	var fails []string
	fail := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	diagf := in.diagf
	if diagf == nil {
		diagf = func(string, ...any) {}
	}
	v := protocol.Verdict{ExitCode: -1}

	finish := func() protocol.Verdict {
		v.Pass = len(fails) == 0 && v.ExitCode == 0 && v.Signal == "" && len(v.Leaked) == 0
		v.Reason = strings.Join(fails, "; ")
		return v
	}

	self := os.Getpid()
	defer prep.close()
	if prep.err != nil {
		fail("%v", prep.err)
		return finish()
	}
	outR, errR, outW, errW, outDir := prep.outR, prep.errR, prep.outW, prep.errW, prep.outDir
	sigc, fatal, abortc := prep.sigc, prep.fatal, prep.abortc
	if cfg.CoverageDir != "" {
		if err := os.MkdirAll(cfg.CoverageDir, 0o777); err != nil {
			fail("create the coverage directory: %v", err)
			return finish()
		}
	}
	cmd := &exec.Cmd{
		Path:   cfg.Path,
		Args:   append([]string{cfg.Path}, cfg.Args...),
		Env:    TestEnv(append(append([]string(nil), cfg.Env...), EnvOutputsDir+"="+outDir)),
		Dir:    cfg.Dir,
		Stdin:  prep.devnull,
		Stdout: outW,
		Stderr: errW,
	}

	testStart := in.Clock.Now()
	v.Timings.Setup = testStart.Sub(started)
	err := cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		fail("start test: %v", err)
		return finish()
	}
	pid := cmd.Process.Pid
	diagf("test started: pid %d: %s", pid, strings.Join(cmd.Args, " "))

	// Pumps: the test's pipes to frames, live.
	pumpErr := make(chan error, 2)
	pump := func(r *os.File, w io.Writer, name string) {
		defer r.Close()
		_, err := io.Copy(w, r)
		if err != nil {
			err = fmt.Errorf("forward test %s: %w", name, err)
		}
		pumpErr <- err
	}
	go pump(outR, g.Stdout(), "stdout")
	go pump(errR, g.Stderr(), "stderr")

	// Reaper: the only caller of wait in this process from here on.
	exited := make(chan unix.WaitStatus, 1)
	allReaped := make(chan struct{})
	go func() {
		defer close(allReaped)
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(-1, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil { // ECHILD: nothing left
				return
			}
			if wpid == pid {
				exited <- ws
			}
		}
	}()

	timeout := time.NewTimer(time.Duration(cfg.Timeout))
	defer timeout.Stop()
	var kill <-chan time.Time
	var ws unix.WaitStatus
	reqs := g.Requests()
wait:
	for {
		select {
		case ws = <-exited:
			break wait
		case req := <-reqs:
			if req == protocol.RequestStacks {
				fail("the host was stopped and asked for the test's goroutine stacks")
				diagf("host request: SIGQUIT to the test (stacks), SIGKILL in %v", time.Duration(cfg.KillGrace))
				_ = unix.Kill(pid, unix.SIGQUIT)
				if kill == nil {
					kill = time.After(time.Duration(cfg.KillGrace))
				}
			}
		case <-abortc:
			// PID 1 told to abort (a Go init's runtime crashes at once, and
			// the kernel panics with it): it does, but after the test's
			// processes are gone and what they wrote is forwarded, so that
			// the host has it all and the crash goes to the test that ran.
			_ = in.killAll(self)
			drainPumps(pumpErr, DrainTimeout)
			in.abort()
			fail("init received SIGABRT")
			return finish()
		case s := <-sigc:
			diagf("forwarding %v to the test", s)
			if fatal[s] {
				fail("init received %v", s)
			}
			_ = unix.Kill(pid, s.(syscall.Signal))
		case <-timeout.C:
			fail("test timed out after %v", time.Duration(cfg.Timeout))
			diagf("timeout: SIGQUIT to the test, SIGKILL in %v", time.Duration(cfg.KillGrace))
			_ = unix.Kill(pid, unix.SIGQUIT)
			kill = time.After(time.Duration(cfg.KillGrace))
		case <-kill:
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	testEnd := in.Clock.Now()
	v.Timings.Test = testEnd.Sub(testStart)
	switch {
	case ws.Exited():
		v.ExitCode = ws.ExitStatus()
		if v.ExitCode != 0 {
			fail("test exited with code %d", v.ExitCode)
		}
	case ws.Signaled():
		v.Signal = unix.SignalName(ws.Signal())
		fail("test killed by %s", v.Signal)
	}
	diagf("test exited: %v", describeStatus(ws))

	// Leftovers: a process alive after the test exited is a failure.
	leaked, err := in.leftovers(self, allReaped)
	if err != nil {
		fail("check for leaked processes: %v", err)
	}
	if len(leaked) > 0 {
		for _, p := range leaked {
			v.Leaked = append(v.Leaked, p.String())
		}
		fail("%d process(es) left running after the test exited: %s", len(leaked), strings.Join(v.Leaked, ", "))
		if err := in.killAll(self); err != nil {
			fail("kill leaked processes: %v", err)
		}
	}
	select {
	case <-allReaped:
	case <-time.After(ReapTimeout):
		fail("children not reaped after %v", ReapTimeout)
	}
	errs, ended := drainPumps(pumpErr, DrainTimeout)
	for _, err := range errs {
		fail("%v", err)
	}
	if ended < 2 {
		fail("test output not drained after %v", DrainTimeout)
		outR.Close()
		errR.Close()
		for ; ended < 2; ended++ {
			if err := <-pumpErr; err != nil {
				fail("%v", err)
			}
		}
	}
	shipped := make(chan []string, 1)
	go func() {
		// One tally: the host counts the outputs and the coverage files
		// against the same limits.
		var tally protocol.OutputTally
		problems := shipOutputs(g, outDir, "", &tally, diagf)
		if cfg.CoverageDir != "" {
			problems = append(problems, shipOutputs(g, cfg.CoverageDir, protocol.CoverageOutputDir, &tally, diagf)...)
		}
		shipped <- problems
	}()
	select {
	case problems := <-shipped:
		fails = append(fails, problems...)
	case <-time.After(OutputsTimeout):
		fail("output files not sent within %v", OutputsTimeout)
	}
	v.Timings.Teardown = in.Clock.Now().Sub(testEnd)
	return finish()
}

// drainPumps waits, within timeout, for both output pumps to end (their
// pipes' write ends closed) and returns how many ended and their errors.
func drainPumps(pumpErr <-chan error, timeout time.Duration) (errs []error, ended int) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for ended < 2 {
		select {
		case err := <-pumpErr:
			ended++
			if err != nil {
				errs = append(errs, err)
			}
		case <-t.C:
			return errs, ended
		}
	}
	return errs, ended
}

// abort ends init as its runtime ends a Go program told to abort (a stack
// dump on the console, exit status 2: the kernel panics, "Attempted to
// kill init!"), or calls Init.Abort when set (tests).
func (in *Init) abort() {
	if in.Abort != nil {
		in.Abort()
		return
	}
	signal.Reset(unix.SIGABRT)
	_ = unix.Kill(os.Getpid(), unix.SIGABRT)
	time.Sleep(AbortTimeout)
	os.Exit(2)
}

// AbortTimeout bounds init's wait for its runtime's abort (a stack dump
// on the console) before it exits itself.
const AbortTimeout = 10 * time.Second

// OutputsTimeout bounds sending the test's output files to the host.
const OutputsTimeout = 60 * time.Second

// shipOutputs sends the regular files below dir to the host, within the
// host's limits and rules (tally: names, depth, reserved names, files and
// directories, bytes); it returns the problems (files skipped, send errors)
// as failure reasons, each naming the file and why. A prefix (the coverage
// files: protocol.CoverageOutputDir) goes before every path; without one,
// a path starting with protocol.CoverageOutputDir is refused, so the test's
// own outputs never pass for coverage.
func shipOutputs(g *protocol.Guest, dir, prefix string, tally *protocol.OutputTally, diagf func(string, ...any)) []string {
	var problems []string
	what := "outputs"
	if prefix != "" {
		what = "coverage"
	}
	files, bytes := tally.Files, tally.Bytes
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if prefix != "" {
			rel = prefix + "/" + rel
		} else if first, _, _ := strings.Cut(rel, "/"); first == protocol.CoverageOutputDir {
			problems = append(problems, fmt.Sprintf("outputs: %q not sent: %s/ is reserved for the test's coverage files; rename it", rel, protocol.CoverageOutputDir))
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() {
			diagf("outputs: %s skipped (not a regular file)", rel)
			return nil
		}
		if err := tally.Add(rel, info.Size()); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q not sent: %v", what, rel, err))
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			return nil
		}
		defer f.Close()
		if _, err := g.File(rel, io.LimitReader(f, info.Size())); err != nil {
			problems = append(problems, fmt.Sprintf("%s: send %s: %v", what, rel, err))
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", what, err))
	}
	if n := tally.Files - files; n > 0 {
		diagf("%s: %d file(s), %d bytes sent", what, n, tally.Bytes-bytes)
	}
	return problems
}

// leftovers returns the descendants of self still alive LeakSettle after
// the test exited. Init is PID 1 (or a child subreaper), so whatever the
// test left running is, or descends from, a child of init: once the reaper
// finds no child at all (reaped is closed), nothing is left, and the /proc
// scan (30-100 ms under TCG, measured) is only done when something is.
func (in *Init) leftovers(self int, reaped <-chan struct{}) ([]Process, error) {
	settle := time.NewTimer(LeakSettle)
	defer settle.Stop()
	select {
	case <-reaped:
		return nil, nil
	case <-settle.C:
	}
	return ProcTable{Root: in.ProcRoot}.Descendants(self)
}

// killAll sends SIGKILL to every descendant of self until none is left
// (they may fork while being killed), at most 10 rounds.
func (in *Init) killAll(self int) error {
	pt := ProcTable{Root: in.ProcRoot}
	for range 10 {
		ps, err := pt.Descendants(self)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return nil
		}
		for _, p := range ps {
			_ = unix.Kill(p.PID, unix.SIGKILL)
		}
		in.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("processes keep appearing")
}

func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit code %d", ws.ExitStatus())
	case ws.Signaled():
		s := "killed by " + unix.SignalName(ws.Signal())
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}
