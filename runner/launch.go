package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
)

// stageLaunch is the one stage of a launcher's shutdown: the run.
const stageLaunch = "run"

// LaunchGrace is how long a launcher's run (invm) may go on after a signal
// began the shutdown: the guest's stacks (DefaultStacksGrace), then the
// run's teardown.
const LaunchGrace = DefaultStacksGrace + launchTeardownAllowance

// launchTeardownAllowance is the part of LaunchGrace left for the run's
// teardown and the launcher's reports after the stacks grace.
const launchTeardownAllowance = 5 * time.Second

// Launch runs run as the one task of a launcher process's shutdown
// (package lifecycle) and returns the process's exit code. A signal from
// sigs (lifecycle.NotifySignals) begins the shutdown: run's context ends
// (the guest test dumps its stacks, the run tears down) and run has grace
// more to return; past it, it is abandoned (its helpers die with the
// process) and the code is ExitTimeout. A panic in run is a fatal report,
// its stack in log: ExitInternal. Otherwise the code is run's.
func Launch(sigs <-chan os.Signal, grace time.Duration, log io.Writer, run func(ctx context.Context) int) int {
	sd, err := lifecycle.New(context.Background(), lifecycle.Options{
		Stages:  []lifecycle.Stage{{Name: stageLaunch, Deadline: grace}},
		Signals: sigs,
		Logf:    func(format string, a ...any) { fmt.Fprintf(log, "invm: "+format+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintln(log, "invm:", err)
		return ExitInternal
	}
	var code atomic.Int64
	sd.Subsystem(stageLaunch).Go("run", func(ctx context.Context) error {
		code.Store(int64(run(ctx)))
		sd.Cancel(nil)
		return nil
	})
	<-sd.Done()
	rep := sd.Drain()
	switch {
	case sd.Fatal() != nil:
		return ExitInternal
	case rep.Stages[0].Abandoned:
		fmt.Fprintf(log, "invm: the run did not end within %v of %v; exiting\n", grace, rep.Cause)
		return ExitTimeout
	}
	return int(code.Load())
}
