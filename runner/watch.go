package runner

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
)

// Bounds of the VM monitor's work.
const (
	// attachTimeout bounds connecting to the monitor after the start.
	attachTimeout = 10 * time.Second
	// eventDrain is how long a classification waits, after the VM exited,
	// for its last monitor events (a panic event precedes the exit).
	eventDrain = 500 * time.Millisecond
	// quitTimeout bounds a graceful quit before the kill.
	quitTimeout = 2 * time.Second
	// queryTimeout bounds one monitor query.
	queryTimeout = 2 * time.Second
)

// vmWatch follows a started VM over its monitor: it records a guest panic
// and can quit the VM gracefully. Without a monitor (attach failed) it
// reports nothing and the console markers remain; a nil *vmWatch (no
// monitor asked for) likewise.
type vmWatch struct {
	log  io.Writer
	done chan struct{} // closed when the monitor's events end
	mu   sync.Mutex
	mon  vmm.Monitor
	gp   bool
}

// watchVM attaches to the VM's monitor in the background: a task of
// tasks (the teardown's vm stage, which ends it by closing the monitor;
// nil: a plain goroutine).
func watchVM(ctx context.Context, tasks *lifecycle.Subsystem, b vmm.Backend, socket string, exited <-chan struct{}, log io.Writer) *vmWatch {
	w := &vmWatch{log: log, done: make(chan struct{})}
	watch := func() {
		defer close(w.done)
		actx, cancel := context.WithTimeout(ctx, attachTimeout)
		mon, err := b.Attach(actx, socket, exited)
		cancel()
		if err != nil {
			select {
			case <-exited: // the boot failure says why
			default:
				fmt.Fprintf(log, "invm: warning: no VM monitor (%v): a guest panic is only seen on the console\n", err)
			}
			return
		}
		w.mu.Lock()
		w.mon = mon
		w.mu.Unlock()
		for e := range mon.Events() {
			if e.Kind == vmm.EventPanic {
				fmt.Fprintf(log, "invm: guest panicked (%s, action %s)\n", e.Name, e.Reason)
				w.mu.Lock()
				w.gp = true
				w.mu.Unlock()
			}
		}
	}
	if tasks == nil {
		go watch()
		return w
	}
	tasks.Go("monitor", func(context.Context) error {
		watch()
		return nil
	})
	return w
}

// panicked reports whether the monitor saw a guest panic; once the VM has
// exited it first waits (briefly) for the monitor's last events.
func (w *vmWatch) panicked(exited bool) bool {
	if w == nil {
		return false
	}
	if exited {
		select {
		case <-w.done:
		case <-time.After(eventDrain):
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gp
}

// translations returns QEMU's TCG translation block count, 0 (and a
// warning in the log) when the monitor cannot tell.
func (w *vmWatch) translations(ctx context.Context) int64 {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	mon := w.mon
	w.mu.Unlock()
	q, ok := mon.(interface {
		TranslationBlocks(context.Context) (int64, error)
	})
	if !ok {
		fmt.Fprintln(w.log, "invm: warning: no translation block count (no QEMU monitor)")
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	n, err := q.TranslationBlocks(ctx)
	if err != nil {
		fmt.Fprintf(w.log, "invm: warning: no translation block count: %v\n", err)
	}
	return n
}

// quit asks a still running VM to exit over the monitor (bounded), then
// closes the monitor; the caller kills the process after.
func (w *vmWatch) quit(vm *proc.Process) {
	if w == nil {
		return
	}
	w.mu.Lock()
	mon := w.mon
	w.mu.Unlock()
	if mon == nil {
		return
	}
	if !vm.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
		if mon.Quit(ctx) == nil {
			select {
			case <-vm.Done():
			case <-ctx.Done():
			}
		}
		cancel()
	}
	mon.Close()
}
