package vmm

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors.
var (
	// ErrUnknownBackend reports a backend name without an implementation.
	ErrUnknownBackend = errors.New("unknown VM backend")
	// ErrAttach reports a monitor that could not be reached or greeted.
	ErrAttach = errors.New("cannot attach to the VM monitor")
	// ErrMonitor reports a failed monitor command.
	ErrMonitor = errors.New("VM monitor command failed")
)

// Backend boots VMs with one hypervisor.
type Backend interface {
	// Name is the backend's name (the go_vm_test `backend` value).
	Name() string
	// Args returns the hypervisor's arguments (without the binary) for
	// vm, with its monitor socket at vm.Monitor; the process inherits
	// vm.Files().
	Args(vm VM) ([]string, error)
	// Machine returns the machine type vm boots (vm.Machine, else the
	// backend's choice for its devices), or why vm cannot boot on it.
	Machine(vm VM) (string, error)
	// LayerWindow returns the guest-physical address of vm's layer window
	// (vm.LayerWindow.MiB of it), or why vm cannot have one there.
	LayerWindow(vm VM) (uint64, error)
	// Attach connects to the monitor socket of a VM whose process was just
	// started; exited closes when that process exits (Attach then gives
	// up). It retries until ctx ends.
	Attach(ctx context.Context, socket string, exited <-chan struct{}) (Monitor, error)
}

// Monitor is the control channel of one running VM.
type Monitor interface {
	// Events delivers the VM's lifecycle events; it is closed when the
	// connection ends (the VM exited, or Close).
	Events() <-chan Event
	// Status returns the VM's run state ("running", "paused",
	// "guest-panicked", "shutdown", ...).
	Status(ctx context.Context) (string, error)
	// Quit asks the hypervisor to exit now (the guest is not asked).
	Quit(ctx context.Context) error
	// Close ends the connection.
	Close() error
}

// Saver is a Monitor that can save its VM's whole state to a file, from
// which VM.Restore starts a copy (snapshot start). QEMU's QMP is one.
type Saver interface {
	Monitor
	// Save writes the running VM's state to file and returns when it is
	// complete; the VM is paused after.
	Save(ctx context.Context, file string) error
}

// EventKind classifies an Event.
type EventKind string

// Event kinds.
const (
	// EventShutdown: the VM is shutting down (guest power-off, quit, or a
	// panic with the panic action "shutdown").
	EventShutdown EventKind = "shutdown"
	// EventReset: the guest reset (with -no-reboot, an exit follows).
	EventReset EventKind = "reset"
	// EventPanic: the guest kernel panicked (pvpanic).
	EventPanic EventKind = "panic"
	// EventOther is any other event.
	EventOther EventKind = "other"
)

// Event is one VM lifecycle event.
type Event struct {
	Kind EventKind
	// Name is the hypervisor's name for it (QMP: "GUEST_PANICKED").
	Name string
	// Reason is the hypervisor's reason, if any (QMP SHUTDOWN's "reason",
	// GUEST_PANICKED's "action").
	Reason string
	// Time is when the hypervisor emitted it.
	Time time.Time
}

// For returns the backend named name ("" or "qemu": QEMU).
func For(name string) (Backend, error) {
	switch name {
	case "", "qemu":
		return QEMU{}, nil
	}
	return nil, errors.Join(ErrUnknownBackend, errors.New(`backend "`+name+`": use "qemu"`))
}
