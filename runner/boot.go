package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
)

// bootedVM is a started VM (the boot phase's product): the hypervisor
// process, its console and error output, and the monitor watch.
type bootedVM struct {
	proc    *proc.Process
	con     *console
	logFile *os.File
	stderr  *lockedBuffer
	// watch follows the monitor; nil without one (Options.NoMonitor).
	watch *vmWatch
	// start is when the hypervisor was started.
	start time.Time
	// halted makes halt run once.
	halted sync.Once
}

// monitorSocket is the VM monitor's socket in the state directory.
func monitorSocket(state string) string { return filepath.Join(state, "qmp.sock") }

// vmDescription is the VM to boot: the plan's shape with the chosen
// accelerator, the kernel, the prepared initrd, channel device and monitor
// socket (none with Options.NoMonitor), and the kernel command line's
// additions; for a snapshot start, the template's state (and no initrd: a
// restore needs none). It is pure.
func vmDescription(p *runPlan, pr *prepared) vmm.VM {
	o := p.o
	vm := p.shape
	vm.Accel, vm.Kernel, vm.Initrd = pr.accel.Accel, o.Kernel, pr.initrd
	vm.Channel, vm.Monitor = pr.ch.device, monitorSocket(pr.state)
	vm.Quiet, vm.Cmdline = !o.Verbose, o.ExtraCmdline
	if o.NoMonitor {
		vm.Monitor = ""
	}
	if pr.restore != nil {
		t := pr.restore.tmpl
		vm = restoreVM(vm, t.Meta.Format, t.RAM())
		vm.Initrd, vm.Restore, vm.LayerShare = "", t.State(), pr.restore.share
		if t.Meta.LayerWindowMiB > 0 {
			vm.LayerWindow = vmm.LayerWindow{File: pr.restore.window, MiB: t.Meta.LayerWindowMiB}
		}
	}
	return vm
}

// boot is the boot phase: the backend's command line for vmDescription
// (res.CommandLine is the reproducer), the console log, the hypervisor
// process (it dies with the runner) and, with a monitor, its watch. On
// error the VM it returns (if any) holds what it got to, for the run's
// teardown.
func boot(ctx context.Context, p *runPlan, pr *prepared, res *Result) (*bootedVM, error) {
	o := p.o
	vm := p.lower(vmDescription(p, pr))
	pr.removeLater(monitorSocket(pr.state))
	args, err := p.backend.Args(vm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	res.CommandLine = pr.ch.daemonCmd + qemu.CommandLine(o.QEMU, args)
	b := &bootedVM{stderr: &lockedBuffer{}}
	if err := b.openConsole(o, pr); err != nil {
		return b, err
	}
	cmd := exec.Command(o.QEMU, args...)
	cmd.Stdout, cmd.Stderr = b.con, io.MultiWriter(b.stderr, b.con)
	cmd.ExtraFiles = vm.Files()
	b.start = o.Now()
	if b.proc, err = proc.Start(cmd); err != nil {
		b.proc = nil
		return b, fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	if vm.Monitor != "" {
		b.watch = watchVM(ctx, pr.vmTasks, p.backend, vm.Monitor, b.proc.Done(), o.Log)
	}
	return b, nil
}

// openConsole creates the console log (Options.ConsoleLog, else
// console.log in the state directory, removed unless the directory is
// kept), keeping its head and tail, mirrored to the log when verbose.
func (b *bootedVM) openConsole(o Options, pr *prepared) error {
	path := o.ConsoleLog
	if path == "" {
		path = filepath.Join(pr.state, "console.log")
		if !pr.keep {
			pr.removeLater(path)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%w: console log: %w", ErrInternal, err)
	}
	b.logFile = f
	b.con = &console{file: newHeadTail(f, ConsoleHead, ConsoleTail)}
	if o.Verbose {
		b.con.live = o.Log
	}
	return nil
}

// closeConsole closes the console, then its log file.
func (b *bootedVM) closeConsole() {
	if b.con == nil {
		return
	}
	b.con.Close()
	b.logFile.Close()
}

// record puts the console's tail and QEMU's error output into res.
func (b *bootedVM) record(res *Result) {
	if b.con == nil {
		return
	}
	res.ConsoleTail = b.con.Tail(ConsoleTailLines)
	res.QEMUStderr = strings.TrimSpace(b.stderr.String())
}

// halt ends the VM (the teardown's vm stage; once): it asks the VM to quit
// over the monitor, kills what is left and closes the console.
func (b *bootedVM) halt() {
	b.halted.Do(func() {
		if b.proc != nil {
			b.watch.quit(b.proc)
			b.proc.Kill()
		}
		b.closeConsole()
	})
}

// lockedBuffer is a concurrency-safe bytes buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) < tailSize {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
