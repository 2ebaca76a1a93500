package guestinit

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/rules-go-vm/rules_go_vm/invm/vfio"
	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// Timing defaults of Init.
const (
	// SetupTimeout bounds init's work before the test starts (mounts,
	// config, connecting to the host).
	SetupTimeout = 60 * time.Second
	// WatchdogMargin is added to the test's Timeout + KillGrace for the
	// watchdog, to cover leak checks, draining and the Ack.
	WatchdogMargin = 30 * time.Second
	// OpenTimeout bounds the retries of connecting to the host.
	OpenTimeout = 10 * time.Second
	// LeakSettle is how long init waits for the test's remaining processes
	// to exit on their own before calling them leaked.
	LeakSettle = 100 * time.Millisecond
	// DrainTimeout bounds the wait for the test's stdout/stderr pipes to
	// reach EOF after the test and its leftovers are gone.
	DrainTimeout = 5 * time.Second
	// ReapTimeout bounds the wait for ECHILD after killing leftovers.
	ReapTimeout = 5 * time.Second
	// StreamOpenTimeout bounds opening each data stream (dialled together
	// with the control stream); one that does not open travels on the
	// control stream.
	StreamOpenTimeout = 2 * time.Second
	// OutputsDir is where the test writes its undeclared outputs
	// (TEST_UNDECLARED_OUTPUTS_DIR); init ships the files in it to the host
	// after the test.
	OutputsDir = "/invm/outputs"
	// EnvOutputsDir is the test's environment variable naming OutputsDir.
	EnvOutputsDir = "TEST_UNDECLARED_OUTPUTS_DIR"
)

// ErrNotPID1 is returned by Init.Run when RequirePID1 is set and the
// process is not PID 1.
var ErrNotPID1 = errors.New("guestinit: not PID 1")

// Clock is the time source of init.
type Clock interface {
	// Now returns the current time (with its monotonic reading).
	Now() time.Time
	// SinceBoot returns the time since the kernel booted (CLOCK_BOOTTIME);
	// 0 if unknown.
	SinceBoot() time.Duration
}

// Init is the PID-1 program with everything it touches injected. The zero
// value is not usable: start from Linux() (the real guest) and replace
// fields in tests.
type Init struct {
	// RequirePID1 makes Run fail with ErrNotPID1 unless it is PID 1.
	RequirePID1 bool
	// ConfigPath is the GuestConfig file (protocol.ConfigPath).
	ConfigPath string
	// Mounter mounts the table; nil skips mounting (host tests).
	Mounter Mounter
	// BaseMounts is the table mounted before the huge page mounts (package
	// BaseMounts).
	BaseMounts []Mount
	// ProcRoot is where proc is mounted ("/proc").
	ProcRoot string
	// Clock is the time source.
	Clock Clock
	// Sleep pauses (time.Sleep); used for retries.
	Sleep func(time.Duration)
	// Open connects to the host over ch, retrying until ctx is done. It is
	// called from several goroutines at once (one per data stream).
	Open func(ctx context.Context, ch protocol.Channel) (io.ReadWriteCloser, error)
	// Listen listens on a vsock port of the guest (the debug command
	// server, GuestConfig.DebugPort; a vsock-listen template's channel);
	// nil disables them.
	Listen func(port uint32) (Listener, error)
	// LocalCID is the guest's vsock CID now (it changes when a template
	// is restored); nil makes vsock-listen templates fail.
	LocalCID func() (uint32, error)
	// SetHostname sets the hostname; nil skips it.
	SetHostname func(name string) error
	// LoopbackUp brings the loopback interface up (127.0.0.1 and ::1), as
	// every host a go test runs on has it; nil skips it.
	LoopbackUp func() error
	// BindVFIO binds the NIC at a PCI address to vfio-pci (vfio.Bind), for
	// GuestConfig.VFIONICs; nil fails a config that asks for it.
	BindVFIO func(pciAddr string) (vfio.Binding, error)
	// Sync flushes filesystems (unix.Sync); nil skips it.
	Sync func()
	// PowerOff turns the machine off; in the guest it does not return.
	PowerOff func() error
	// Console receives init's own messages (os.Stderr = /dev/console).
	Console io.Writer
	// Subreaper makes init a child subreaper (host tests: orphans of the
	// test are reparented to it as they would be to PID 1).
	Subreaper bool
	// OutputsDir overrides the package's OutputsDir when not empty.
	OutputsDir string
	// LayerRoot is where a template guest extracts its test layer ("/";
	// see protocol.ReadLayer).
	LayerRoot string
	// LayerShare reaches a template's layer share (GuestConfig.LayerShare,
	// protocol.LayerShared); nil: a template takes inline layers only.
	LayerShare LayerShare
	// MapLayerWindow maps a template's layer window (GuestConfig.
	// LayerWindowBase and LayerWindowSize, protocol.LayerInWindow) for
	// reading and writing, once, before the template says it is ready
	// (DevMem in a real guest); nil: a template has no window.
	MapLayerWindow func(base, size uint64) ([]byte, error)
	// Abort replaces init's abort on SIGABRT during a test (after the
	// test's processes are killed and their output forwarded: the Go
	// runtime's stack dump and exit, which panics the kernel); tests only.
	Abort func()
	// SetClock sets the wall clock of a restored guest (which has the
	// template's); nil skips it.
	SetClock func(time.Time) error
	// AddEntropy mixes a restored guest's seed into its random pool and
	// reseeds (every restore starts from the template's pool); nil skips
	// it.
	AddEntropy func(seed []byte) error
	// SetupTimeout, WatchdogMargin and OpenTimeout override the package
	// defaults when not zero.
	SetupTimeout, WatchdogMargin, OpenTimeout time.Duration

	diagf func(format string, a ...any) // set by Run
}

// LayerShare is where a restored template's shared test layer is
// (NinePShare in a real guest).
type LayerShare interface {
	// Check says whether the share tagged tag is there (before the
	// template waits: a template that could not read it is not saved).
	Check(tag string) error
	// Map maps the share's layer file (protocol.LayerShareFile); the
	// closer releases it.
	Map(tag string) ([]byte, io.Closer, error)
}

type realClock struct{ sinceBoot func() time.Duration }

func (realClock) Now() time.Time             { return time.Now() }
func (c realClock) SinceBoot() time.Duration { return c.sinceBoot() }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
