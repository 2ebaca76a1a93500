// Package proc runs the runner's helper processes (QEMU, the vhost-user
// vsock daemon) so that none outlives the runner: each is started with a
// parent-death signal (SIGKILL) in its own process group, its exit is
// observable as a channel, and Kill kills it by PID and waits for it.
package proc

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrNotStarted is returned by Start for a command that cannot start.
var ErrNotStarted = errors.New("process did not start")

// Process is a started helper process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error     // valid after done is closed
	end  time.Time // valid after done is closed
	once sync.Once
}

// Start starts cmd with a parent-death SIGKILL and its own process group,
// and reaps it in the background.
func Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	setDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotStarted, cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped (and, for
// commands with non-file outputs, its output copied).
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the exit error (nil for exit status 0); valid after Done.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// ExitTime returns when the process was reaped; waits for Done.
func (p *Process) ExitTime() time.Time {
	<-p.done
	return p.end
}

// ExitCode returns the exit code, -1 when killed by a signal; waits for Done.
func (p *Process) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL to the process group and the process, then waits
// until it is reaped. It is safe to call more than once and after exit.
func (p *Process) Kill() {
	p.once.Do(func() {
		if !p.Exited() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			_ = p.cmd.Process.Kill()
		}
	})
	<-p.done
}
