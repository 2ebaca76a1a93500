package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
)

// The stages of a run's teardown, in the order they drain. Every return
// of Run, from any phase, takes this one path; each stage releases what
// its phase made, if the run got that far.
const (
	// stageVM stops the VM (boot): a graceful quit over the monitor, then
	// the kill and reaping of QEMU's process group, the console closed;
	// the monitor's watch (a task of this stage) ends with it.
	stageVM = "vm"
	// stageChannel releases the channel's host side (prepare): the vsock
	// daemon killed by PID and its sockets removed, the vhost-vsock
	// device, the listener.
	stageChannel = "channel"
	// stageState removes the run's files (initrd, console log, monitor
	// socket, unless the state directory is kept) and the temporary state
	// directory with its lock.
	stageState = "state"
)

// Deadlines of a run's teardown stages. A stage that overruns (a process
// that cannot be reaped, a file system that hangs) is abandoned with a
// warning in the log, and the next stage starts: Run returns within their
// sum plus lifecycle.WatchdogSlack whatever happens.
const (
	// vmStopDeadline bounds stopping the VM: quitTimeout for the graceful
	// quit, then killDeadline for the kill and reaping.
	vmStopDeadline = quitTimeout + killDeadline
	// channelCloseDeadline bounds releasing the channel: the daemon's kill
	// and reaping, closing sockets.
	channelCloseDeadline = killDeadline
	// stateRemoveDeadline bounds removing the run's files and directory.
	stateRemoveDeadline = 5 * time.Second
	// killDeadline bounds a SIGKILL and the reaping of what it killed.
	killDeadline = 3 * time.Second
)

// teardown is a run's one shutdown path (package lifecycle): the phases
// register what they made, and drain releases it in stage order. Its root
// context also ends the run on a fatal report (a panic in a tracked task).
type teardown struct {
	sd  *lifecycle.Shutdown
	log io.Writer

	mu  sync.Mutex
	vms []*bootedVM
	pr  *prepared
}

// stages is the run's teardown, as data: the stages in order, with their
// deadlines and what stopping each does.
func (t *teardown) stages() []lifecycle.Stage {
	return []lifecycle.Stage{
		{Name: stageVM, Deadline: vmStopDeadline, Stop: t.stopVMs},
		{Name: stageChannel, Deadline: channelCloseDeadline, Stop: t.closeChannel},
		{Name: stageState, Deadline: stateRemoveDeadline, Stop: t.removeState},
	}
}

// newTeardown returns the run's teardown and the run's context: ctx, also
// ended (with the report as its cause) by a fatal report.
func newTeardown(ctx context.Context, log io.Writer) (*teardown, context.Context, func(), error) {
	t := &teardown{log: log}
	// The teardown is not a child of ctx's end: a run stopped from outside
	// still has its stacks grace before Run drains.
	sd, err := lifecycle.New(context.WithoutCancel(ctx), lifecycle.Options{
		Stages: t.stages(),
		Logf:   func(format string, a ...any) { fmt.Fprintf(log, "invm: "+format+"\n", a...) },
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	t.sd = sd
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(sd.Context(), func() { cancel(sd.Cause()) })
	return t, ctx, func() { stop(); cancel(nil) }, nil
}

// setPrepared registers what prepare made (also after a failed prepare:
// what it got to).
func (t *teardown) setPrepared(pr *prepared) {
	if pr == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pr = pr
	pr.vmTasks = t.sd.Subsystem(stageVM)
}

// addVM registers a booted (or half-booted) VM.
func (t *teardown) addVM(b *bootedVM) {
	if b == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.vms = append(t.vms, b)
}

// drain runs the teardown; a stage that overran or failed is a warning.
func (t *teardown) drain() {
	rep := t.sd.Drain()
	if err := rep.Err(); err != nil {
		fmt.Fprintf(t.log, "invm: warning: teardown: %v\n", rep)
	}
}

// stopVMs is the vm stage's Stop: every VM registered, the latest first.
func (t *teardown) stopVMs(context.Context) error {
	t.mu.Lock()
	vms := append([]*bootedVM(nil), t.vms...)
	t.mu.Unlock()
	for i := len(vms) - 1; i >= 0; i-- {
		vms[i].halt()
	}
	return nil
}

// closeChannel is the channel stage's Stop.
func (t *teardown) closeChannel(context.Context) error {
	t.mu.Lock()
	pr := t.pr
	t.mu.Unlock()
	if pr != nil && pr.ch != nil {
		pr.ch.close()
	}
	return nil
}

// removeState is the state stage's Stop.
func (t *teardown) removeState(context.Context) error {
	t.mu.Lock()
	pr := t.pr
	t.mu.Unlock()
	if pr == nil {
		return nil
	}
	for _, f := range pr.cleanups {
		os.Remove(f)
	}
	if pr.releaseState != nil {
		pr.releaseState()
	}
	return nil
}
