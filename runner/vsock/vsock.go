// Package vsock manages the host side of a guest's virtio-vsock channel: one
// rust-vmm vhost-device-vsock daemon per VM, in a private directory, as the
// vhost-user backend of QEMU's vhost-user-vsock device.
//
// Layout of the directory (see SocketPath, UDSPath, PortPath):
//
//	<dir>/vhost.sock   vhost-user socket QEMU connects to (-chardev socket)
//	<dir>/vsock        the daemon's host-side socket (host → guest: CONNECT <port>)
//	<dir>/vsock_<P>    a guest connecting to CID 2 port P arrives here, so the
//	                   host listens on it (before boot: with no listener the
//	                   guest's connect times out after 2 s instead of failing)
//	<dir>/daemon.log   the daemon's stdout and stderr
//
// Pitfalls of the daemon this package is built around: a killed daemon
// looks like a clean EOF to the host while QEMU keeps running and the guest
// blocks, so Daemon.Done must be watched and its firing treated as an
// infrastructure failure; a killed QEMU leaves the daemon running with its
// socket files, so Stop kills it by PID and removes them; the same guest CID
// twice in one daemon is rejected, so every VM has its own daemon (CIDs are
// then private). The tx buffer size is left at its 64 KiB default (≥ 352 KiB
// deadlocks streams after 256 KiB).
package vsock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner/proc"
)

// DaemonName is the daemon's executable name.
const DaemonName = "vhost-device-vsock"

// DaemonFallbacks are the paths tried, in order, when DaemonName is not on
// PATH: the runner's bin directory, then the toolchain root (its binary
// runs on the host; it only needs libc ≥ 2.34).
var DaemonFallbacks = []string{
	"/var/lib/rules_go_vm/bin/" + DaemonName,
	"/var/lib/rules_go_vm/root/usr/bin/" + DaemonName,
}

// DefaultGuestCID is the guest's context ID; private to the VM's daemon.
const DefaultGuestCID = 3

// Polls for the daemon's socket while it starts: the first pause, doubled
// up to the longest (the daemon is usually ready within a few
// milliseconds).
const (
	readyPollFirst = 200 * time.Microsecond
	readyPollMax   = 20 * time.Millisecond
)

// DefaultReadyTimeout bounds the wait for the daemon's socket (it normally
// appears 1.5–3 ms after spawn).
const DefaultReadyTimeout = 5 * time.Second

// Sentinel errors.
var (
	// ErrNoDaemon reports that no vhost-device-vsock binary was found.
	ErrNoDaemon = errors.New("vhost-device-vsock not found")
	// ErrNotReady reports a daemon whose socket did not appear in time or
	// that exited during start-up.
	ErrNotReady = errors.New("vhost-device-vsock did not become ready")
)

// Names of the files in a daemon directory.
const (
	socketName = "vhost.sock"
	udsName    = "vsock"
	logName    = "daemon.log"
)

// SocketPath is the vhost-user socket QEMU connects to.
func SocketPath(dir string) string { return filepath.Join(dir, socketName) }

// UDSPath is the daemon's host-side unix socket (host → guest connections).
func UDSPath(dir string) string { return filepath.Join(dir, udsName) }

// PortPath is the host unix socket where guest connections to CID 2 port
// port arrive: UDSPath + "_" + port.
func PortPath(dir string, port uint32) string {
	return UDSPath(dir) + "_" + strconv.FormatUint(uint64(port), 10)
}

// LogPath is the daemon's log file.
func LogPath(dir string) string { return filepath.Join(dir, logName) }

// FindDaemon returns the daemon binary: DaemonName on PATH (via lookPath,
// normally exec.LookPath), else the first existing executable among
// fallbacks.
func FindDaemon(lookPath func(string) (string, error), fallbacks []string) (string, error) {
	if p, err := lookPath(DaemonName); err == nil {
		return p, nil
	}
	for _, p := range fallbacks {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w on PATH nor at %v (install Debian's vhost-device-vsock, or run tools/setup)", ErrNoDaemon, fallbacks)
}

// Args returns the daemon's arguments for directory dir and guest CID cid.
func Args(dir string, cid uint32) []string {
	return []string{"--vm", fmt.Sprintf("guest-cid=%d,socket=%s,uds-path=%s", cid, SocketPath(dir), UDSPath(dir))}
}

// Config describes a daemon to start.
type Config struct {
	// Binary is the daemon executable (see FindDaemon).
	Binary string
	// Dir is the VM's private directory; it must exist and be empty of the
	// daemon's files.
	Dir string
	// GuestCID is the guest's CID; 0 means DefaultGuestCID.
	GuestCID uint32
	// ReadyTimeout bounds the wait for the socket; 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Daemon is a running vhost-device-vsock.
type Daemon struct {
	dir  string
	proc *proc.Process
	log  *os.File
}

// Start starts the daemon and waits until its vhost-user socket exists.
func Start(ctx context.Context, c Config) (*Daemon, error) {
	if c.GuestCID == 0 {
		c.GuestCID = DefaultGuestCID
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	log, err := os.Create(LogPath(c.Dir))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Binary, Args(c.Dir, c.GuestCID)...)
	cmd.Stdout, cmd.Stderr = log, log
	p, err := proc.Start(cmd)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	d := &Daemon{dir: c.Dir, proc: p, log: log}
	deadline := time.Now().Add(c.ReadyTimeout)
	for delay := readyPollFirst; ; delay = min(2*delay, readyPollMax) {
		if fi, err := os.Stat(SocketPath(c.Dir)); err == nil && fi.Mode().Type() == fs.ModeSocket {
			return d, nil
		}
		if p.Exited() {
			d.Stop()
			return nil, fmt.Errorf("%w: it exited (%v): %s", ErrNotReady, p.Err(), d.Log())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.Stop()
			return nil, fmt.Errorf("%w: no socket %s after %v", ErrNotReady, SocketPath(c.Dir), c.ReadyTimeout)
		}
		time.Sleep(delay)
	}
}

// Listen listens on the host socket of guest port port; call it before the
// guest boots.
func Listen(dir string, port uint32) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: PortPath(dir, port), Net: "unix"})
}

// Pid returns the daemon's process ID.
func (d *Daemon) Pid() int { return d.proc.Pid() }

// Done is closed when the daemon exits. While the VM runs, that is an
// infrastructure failure.
func (d *Daemon) Done() <-chan struct{} { return d.proc.Done() }

// ExitErr returns how the daemon exited; it waits for Done.
func (d *Daemon) ExitErr() error { return d.proc.Err() }

// Log returns the daemon's output so far (at most 4 KiB from its end).
func (d *Daemon) Log() string {
	b, err := os.ReadFile(LogPath(d.dir))
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// Stop kills the daemon by PID, waits for it, and removes its sockets and
// log (every daemon-owned file in the directory). It is idempotent.
func (d *Daemon) Stop() {
	d.proc.Kill()
	d.log.Close()
	matches, _ := filepath.Glob(UDSPath(d.dir) + "_*")
	for _, f := range append(matches, SocketPath(d.dir), UDSPath(d.dir), LogPath(d.dir)) {
		_ = os.Remove(f)
	}
}

// Exited reports whether the daemon has exited.
func (d *Daemon) Exited() bool { return d.proc.Exited() }
