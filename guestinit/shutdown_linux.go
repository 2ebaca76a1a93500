package guestinit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// The stages of init's shutdown, in the order they drain (teardown). Every
// end of a run takes this one path: the test's own end, the watchdog, a
// panic in init.
const (
	// stageTest is init's run up to the verdict (session.main). On a fatal
	// end it kills what the test left; the stage then waits for main.
	stageTest = "test"
	// stageVerdict sends the verdict and waits for the host's Ack.
	stageVerdict = "verdict"
	// stageStreams closes the debug listener (ending its server), the data
	// streams and the control stream.
	stageStreams = "streams"
	// stageMounts syncs, unmounts in reverse order and syncs again.
	stageMounts = "mounts"
)

// Deadlines of init's shutdown stages. A stage that overruns is abandoned
// (reported on the console) and the next one starts; the whole shutdown
// is bounded by their sum plus lifecycle.WatchdogSlack, after which init
// powers off whatever is still running.
const (
	// TestStopDeadline bounds, on a fatal end, killing what the test left
	// and waiting for init's own run (stuck, perhaps) to return.
	TestStopDeadline = time.Second
	// VerdictSlack is added to the Ack timeout (GuestConfig.AckTimeout)
	// for the verdict stage.
	VerdictSlack = time.Second
	// StreamsCloseDeadline bounds closing the streams.
	StreamsCloseDeadline = time.Second
	// MountsTeardownDeadline bounds the syncs and the unmounts (with their
	// EBUSY retries).
	MountsTeardownDeadline = 10 * time.Second
)

// errSetupWatchdog is the fatal report of init's run watchdog.
var errSetupWatchdog = errors.New("watchdog: init setup did not finish in time")

// teardown is init's shutdown, as data: the stages in order with their
// deadlines and what stopping each does.
func (s *session) teardown() []lifecycle.Stage {
	return []lifecycle.Stage{
		{Name: stageTest, Deadline: TestStopDeadline, Stop: s.stopTest},
		{Name: stageVerdict, Deadline: time.Duration(s.ack.Load()) + VerdictSlack, Stop: s.sendVerdict},
		{Name: stageStreams, Deadline: StreamsCloseDeadline, Stop: s.closeStreams},
		{Name: stageMounts, Deadline: MountsTeardownDeadline, Stop: s.unmount},
	}
}

// Run is the whole life of PID 1. In the guest it ends in power-off and
// does not return; it returns ErrNotPID1 when RequirePID1 is violated, and
// otherwise the power-off error (nil with a fake PowerOff).
//
// The run is the test stage's one task (session.main); it ends the run
// when it has a verdict. The run's watchdog (SetupTimeout until the test
// starts, then the test's bounds) and a panic in init are fatal reports
// that end it early with a FAIL verdict. Either way the stages of teardown
// drain in order, then init powers off.
func (in *Init) Run() error {
	if in.RequirePID1 && os.Getpid() != 1 {
		return fmt.Errorf("%w (pid %d)", ErrNotPID1, os.Getpid())
	}
	s := &session{in: in, start: in.Clock.Now(), boot: in.Clock.SinceBoot()}
	s.ack.Store(int64(protocol.DefaultAckTimeout))
	in.diagf = s.diagf
	cfg, cfgErr := protocol.ReadConfig(in.ConfigPath)
	if cfgErr == nil {
		s.verbose.Store(cfg.Verbose)
		s.ack.Store(int64(cfg.AckTimeout))
	}
	sd, err := lifecycle.New(context.Background(), lifecycle.Options{
		Stages: s.teardown(),
		Logf:   func(format string, a ...any) { s.console("guestinit: "+format, a...) },
	})
	if err != nil {
		return err // a bad stage table: a bug, caught by the host tests
	}
	s.sd = sd
	wd := time.AfterFunc(orDefault(in.SetupTimeout, SetupTimeout), func() { sd.ReportFatal(errSetupWatchdog) })
	sd.Subsystem(stageTest).Go("main", func(context.Context) error {
		v := s.main(cfg, cfgErr, wd)
		s.verdict.Store(&v)
		sd.Cancel(nil)
		return nil
	})
	<-sd.Done()
	wd.Stop()
	if rep := sd.Drain(); rep.Err() != nil {
		s.console("guestinit: %v", rep)
	}
	offErr := in.PowerOff()
	if offErr != nil {
		s.console("guestinit: power off: %v", offErr)
	}
	return offErr
}

// fatalEnd reports whether the run ended by a fatal report (not with
// main's verdict).
func (s *session) fatalEnd() bool {
	return !errors.Is(s.sd.Cause(), lifecycle.ErrStopped) || s.verdict.Load() == nil
}

// finalVerdict is main's verdict, or on a fatal end a FAIL verdict saying
// why (a panic with its stack).
func (s *session) finalVerdict() protocol.Verdict {
	if !s.fatalEnd() {
		return *s.verdict.Load()
	}
	v := protocol.Verdict{ExitCode: -1, Reason: fatalReason(s.sd.Cause())}
	v.Timings.Boot = s.boot
	return v
}

// fatalReason is the verdict's reason for the fatal report err.
func fatalReason(err error) string {
	var fe *lifecycle.FatalError
	var pe *lifecycle.PanicError
	if errors.As(err, &fe) && errors.As(fe.Err, &pe) {
		return fmt.Sprintf("init panic: %v\n%s", pe.Value, fe.Stack)
	}
	if errors.As(err, &fe) && fe.Subsystem == "" {
		return fe.Err.Error()
	}
	return err.Error()
}

// stopTest is the test stage's Stop: on a fatal end, kill what the test
// left (after its own end, RunTest already did).
func (s *session) stopTest(context.Context) error {
	if !s.fatalEnd() {
		return nil
	}
	return s.in.killAll(os.Getpid())
}

// sendVerdict is the verdict stage's Stop: send the verdict and wait for
// the Ack, at most the Ack timeout.
func (s *session) sendVerdict(ctx context.Context) error {
	v := s.finalVerdict()
	if g := s.guest.Load(); g != nil {
		s.sent.Store(true)
		ctx, cancel := context.WithTimeout(ctx, time.Duration(s.ack.Load()))
		err := g.Finish(ctx, v)
		cancel()
		if err != nil {
			s.console("guestinit: %v", err)
		}
	}
	if !v.Pass {
		s.console("guestinit: FAIL: %s", v.Reason)
	}
	return nil
}

// closeStreams is the streams stage's Stop.
func (s *session) closeStreams(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.debugLn != nil {
		_ = s.debugLn.Close()
	}
	if s.data != nil {
		_ = s.data.Close()
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	return nil
}

// unmount is the mounts stage's Stop: sync, unmount, sync.
func (s *session) unmount(context.Context) error {
	in := s.in
	s.mu.Lock()
	ms := s.mounted
	s.mu.Unlock()
	if in.Sync != nil {
		in.Sync()
	}
	if ms != nil {
		if err := ms.Teardown(); err != nil {
			s.console("guestinit: %v", err)
		}
	}
	if in.Sync != nil {
		in.Sync()
	}
	return nil
}
