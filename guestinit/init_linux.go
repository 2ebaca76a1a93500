package guestinit

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/invm/vfio"
	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// Linux returns the Init of a real guest: PID 1 required, real mounts,
// /proc, vsock or virtio-serial, sync and reboot(RESTART) (see PowerOff).
func Linux() *Init {
	cfgPath := protocol.ConfigPath
	if p := os.Getenv(protocol.ConfigEnv); p != "" {
		cfgPath = p
	}
	return &Init{
		RequirePID1:    true,
		ConfigPath:     cfgPath,
		Mounter:        LinuxMounter{},
		BaseMounts:     BaseMounts,
		ProcRoot:       "/proc",
		Clock:          realClock{sinceBoot: bootTime},
		Sleep:          time.Sleep,
		Open:           OpenChannel,
		SetHostname:    func(name string) error { return unix.Sethostname([]byte(name)) },
		LoopbackUp:     LoopbackUp,
		BindVFIO:       vfio.Bind,
		LayerRoot:      "/",
		LayerShare:     NinePShare{},
		MapLayerWindow: DevMem{}.Map,
		SetClock:       setClock,
		AddEntropy:     addEntropy,
		Listen:         ListenVsock,
		LocalCID:       LocalVsockCID,
		Sync:           unix.Sync,
		// A reset, not a power-off: the runner always starts QEMU with
		// -no-reboot, which turns a guest reset into QEMU's exit on every
		// machine, including microvm without ACPI, where a power-off only
		// halts the CPU and leaves QEMU running.
		PowerOff: func() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART) },
		Console:  os.Stderr,
	}
}

// Main runs the real guest init (Linux().Run()).
func Main() error {
	return Linux().Run()
}

func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// LinuxMounter is the Mounter over the Linux system calls.
type LinuxMounter struct{}

// MkdirAll implements Mounter.
func (LinuxMounter) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

// Mount implements Mounter with mount(2).
func (LinuxMounter) Mount(source, target, fstype string, flags MountFlag, data string) error {
	var f uintptr
	for _, m := range []struct {
		flag MountFlag
		ms   uintptr
	}{{NoSuid, unix.MS_NOSUID}, {NoExec, unix.MS_NOEXEC}, {NoDev, unix.MS_NODEV}} {
		if flags&m.flag != 0 {
			f |= m.ms
		}
	}
	return unix.Mount(source, target, fstype, f, data)
}

// Unmount implements Mounter with umount2(2).
func (LinuxMounter) Unmount(target string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	return unix.Unmount(target, flags)
}

// OpenChannel connects to the host over ch, retrying every 20 ms until ctx
// is done (the vsock or virtio-serial device may still be probing).
func OpenChannel(ctx context.Context, ch protocol.Channel) (io.ReadWriteCloser, error) {
	try := func() (io.ReadWriteCloser, error) {
		switch ch.Kind {
		case protocol.ChannelVsock:
			cid := ch.CID
			if cid == 0 {
				cid = protocol.HostCID
			}
			c, err := DialVsock(ctx, cid, ch.Port)
			if err != nil {
				return nil, err
			}
			return chunkedConn{c}, nil
		case protocol.ChannelSerial:
			return os.OpenFile(ch.Device, os.O_RDWR|unix.O_NOCTTY, 0)
		case protocol.ChannelVsockListen:
			return nil, fmt.Errorf("channel %q: the host dials it; only a template listens on one", ch.Kind)
		}
		return nil, fmt.Errorf("unknown channel kind %q", ch.Kind)
	}
	for {
		c, err := try()
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to host over %s: %w (last error: %v)", describeChannel(ch), ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// VsockWriteChunk is the largest single write init makes on a vsock
// connection. Larger writes make the guest kernel send packets above
// 4 KiB, and the vhost-device-vsock daemon (Debian's, rust-vmm) then stalls
// the stream for good: an 8 MiB flood in 32 KiB writes never arrived, in
// 4 KiB writes it took 0.75 s (see rust-vmm/vhost-device#494 for the
// daemon's credit bugs with large packets).
const VsockWriteChunk = 4 << 10

// chunkedConn splits every write into VsockWriteChunk pieces.
type chunkedConn struct{ io.ReadWriteCloser }

func (c chunkedConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		m := min(len(p), VsockWriteChunk)
		k, err := c.ReadWriteCloser.Write(p[:m])
		n += k
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

func describeChannel(ch protocol.Channel) string {
	switch ch.Kind {
	case protocol.ChannelSerial:
		return "serial " + ch.Device
	case protocol.ChannelVsockListen:
		return fmt.Sprintf("vsock-listen (the guest's port %d)", ch.Port)
	}
	return fmt.Sprintf("vsock %d:%d", ch.CID, ch.Port)
}

// dialResult is what session.dial connected.
type dialResult struct {
	conn       io.ReadWriteCloser // the control stream
	data       map[protocol.Role]io.ReadWriteCloser
	streamErrs map[protocol.Role]error // data streams that did not open
	err        error                   // the control stream did not open
	cfgErr     error                   // a template guest got no usable config
}

// closedDial is a dial that already happened.
func closedDial(d dialResult) <-chan dialResult {
	out := make(chan dialResult, 1)
	out <- d
	return out
}

// dial connects to the host over ch in the background: the control
// stream and, over vsock, one stream per data role (a flood of output
// never delays the verdict), all at once, since each connect waits for the
// host's answer (one after the other those waits added ~10-25 ms to a TCG
// boot). A data stream that does not open travels on the control stream,
// as everything does over virtio-serial.
func (s *session) dial(ch protocol.Channel) <-chan dialResult {
	in := s.in
	out := make(chan dialResult, 1)
	go func() {
		roles := []protocol.Role{protocol.RoleControl}
		if ch.Kind == protocol.ChannelVsock {
			roles = append(roles, protocol.DataRoles...)
		}
		conns := make([]io.ReadWriteCloser, len(roles))
		errs := make([]error, len(roles))
		var wg sync.WaitGroup
		for i, r := range roles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				timeout := StreamOpenTimeout
				if r == protocol.RoleControl {
					timeout = orDefault(in.OpenTimeout, OpenTimeout)
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				conns[i], errs[i] = in.Open(ctx, ch)
			}()
		}
		wg.Wait()
		res := dialResult{conn: conns[0], err: errs[0], data: map[protocol.Role]io.ReadWriteCloser{}, streamErrs: map[protocol.Role]error{}}
		for i, r := range roles[1:] {
			switch {
			case errs[i+1] != nil:
				res.streamErrs[r] = errs[i+1]
			case res.err != nil:
				conns[i+1].Close() // no control stream: nothing to pair them with
			default:
				res.data[r] = conns[i+1]
			}
		}
		out <- res
	}()
	return out
}

// session is the state of one Init.Run.
type session struct {
	in      *Init
	sd      *lifecycle.Shutdown // the run's one shutdown path (shutdown_linux.go)
	start   time.Time
	boot    time.Duration
	verbose atomic.Bool
	guest   atomic.Pointer[protocol.Guest]
	conn    io.Closer
	data    io.Closer // the Guest: closes the data streams
	debugLn Listener
	mounted *Mounted
	// layerShare is a restored template's mapped layer file (LayerShare),
	// held until the guest resets.
	layerShare io.Closer
	// window is a template's mapped layer window (nil: none, or not
	// usable), mapped for the life of the guest.
	window []byte
	ack    atomic.Int64 // Ack timeout, ns
	sent   atomic.Bool  // the verdict is on its way: no more diagnostics to the host
	// verdict is main's verdict, once it has one.
	verdict atomic.Pointer[protocol.Verdict]

	mu sync.Mutex // guards conn, data, debugLn and mounted against a fatal shutdown
}

// main does the work up to the verdict.
func (s *session) main(cfg protocol.GuestConfig, cfgErr error, wd *time.Timer) protocol.Verdict {
	in := s.in
	failed := func(format string, a ...any) protocol.Verdict {
		v := protocol.Verdict{ExitCode: -1, Reason: fmt.Sprintf(format, a...)}
		v.Timings.Boot = s.boot
		return v
	}
	// Over vsock the streams are dialled while the mounts are made:
	// connecting mostly waits for the host, mounting is the guest's own
	// work. A virtio-serial port is a /dev node: opened after devtmpfs is.
	ch := protocol.DefaultChannel()
	if cfgErr == nil {
		ch = cfg.Channel
	}
	var dialed <-chan dialResult
	if ch.Kind == protocol.ChannelVsock {
		dialed = s.dial(ch)
	}
	var mountErr error
	if in.Mounter != nil {
		var sizes []string
		if cfgErr == nil {
			sizes = cfg.HugePageSizes
		}
		table := append(append([]Mount(nil), in.BaseMounts...), HugeMounts(sizes)...)
		ms, err := MountAll(in.Mounter, table, func(msg string) { s.diagf("%s", msg) }, in.Sleep)
		s.mu.Lock()
		s.mounted = ms
		s.mu.Unlock()
		mountErr = err
	}
	// The loopback is up before a template waits, so that a restore does
	// not pay for it (~25 ms of first-run kernel code under TCG,
	// measured); its error is reported once the streams are up.
	var loErr error
	if in.LoopbackUp != nil && mountErr == nil {
		if loErr = in.LoopbackUp(); loErr != nil {
			loErr = fmt.Errorf("bring up the loopback interface: %w", loErr)
		}
	}
	// What the test needs of the guest, but not of its config, is made
	// before a template waits too (testPrep).
	var prep *testPrep
	if in.Mounter == nil || mountErr == nil {
		prep = in.prepareTest()
		defer func() {
			if prep != nil {
				prep.close()
			}
		}()
	}
	if cfgErr == nil && cfg.Template {
		var rd dialResult
		cfg, rd = s.restore(cfg, wd)
		dialed, cfgErr = closedDial(rd), rd.cfgErr
	}
	if dialed == nil {
		dialed = s.dial(ch)
	}
	d := <-dialed
	if d.err != nil {
		s.console("guestinit: %v", d.err)
		return failed("connect to host: %v", d.err) // nobody hears it: the host sees no verdict
	}
	conn, data := d.conn, d.data
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	for _, r := range protocol.DataRoles {
		if err := d.streamErrs[r]; err != nil {
			s.console("guestinit: %v stream: %v (it travels on the control stream)", r, err)
		}
	}
	g, err := protocol.NewGuestStreams(conn, data, fmt.Sprintf("guestinit %s/%s", runtime.GOOS, runtime.GOARCH))
	if err != nil {
		s.console("guestinit: %v", err)
		return failed("%v", err)
	}
	s.mu.Lock()
	s.data = g
	s.mu.Unlock()
	s.guest.Store(g)
	s.diagf("init: kernel booted in %v, init up for %v", s.boot, in.Clock.Now().Sub(s.start))
	switch {
	case cfgErr != nil:
		return failed("guest config: %v", cfgErr)
	case mountErr != nil:
		return failed("%v", mountErr)
	case loErr != nil:
		return failed("%v", loErr)
	}
	if cfg.DebugPort != 0 && in.Listen != nil {
		ln, err := in.Listen(cfg.DebugPort)
		if err != nil {
			s.diagf("debug: listen on vsock port %d: %v", cfg.DebugPort, err)
		} else {
			s.mu.Lock()
			s.debugLn = ln
			s.mu.Unlock()
			// The streams stage closes the listener, which ends the server.
			s.sd.Subsystem(stageStreams).Go("debug server", func(context.Context) error {
				s.serveDebug(ln)
				return nil
			})
		}
	}
	if cfg.Hostname != "" && in.SetHostname != nil {
		if err := in.SetHostname(cfg.Hostname); err != nil {
			return failed("set hostname %q: %v", cfg.Hostname, err)
		}
	}
	if err := s.bindVFIO(cfg.VFIONICs); err != nil {
		return failed("%v", err)
	}
	if s.sd.Context().Err() == nil {
		wd.Reset(time.Duration(cfg.Timeout) + time.Duration(cfg.KillGrace) + orDefault(in.WatchdogMargin, WatchdogMargin))
	}
	if prep == nil {
		prep = in.prepareTest()
	}
	v := in.runTest(cfg, g, s.start, prep)
	prep = nil // runTest released it
	v.Timings.Boot = s.boot
	return v
}

// bindVFIO binds the NICs at addrs to vfio-pci (go_vm_test vfio_nics)
// before the test, reporting each binding as a diagnostic; the first that
// fails fails the test, naming the NIC and why.
func (s *session) bindVFIO(addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	if s.in.BindVFIO == nil {
		return fmt.Errorf("vfio_nics: this init cannot bind NICs to vfio-pci")
	}
	for _, a := range addrs {
		b, err := s.in.BindVFIO(a)
		if err != nil {
			return fmt.Errorf("vfio_nics: binding NIC %s to vfio-pci before the test failed: %w", a, err)
		}
		s.diagf("vfio: %s", b)
	}
	return nil
}

// diagf sends a diagnostic line to the host (and to the console when
// verbose or when there is no host yet).
func (s *session) diagf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	g := s.guest.Load()
	if g == nil || s.verbose.Load() {
		s.console("guestinit: %s", msg)
	}
	if g != nil && !s.sent.Load() {
		_ = g.Diag(msg)
	}
}

func (s *session) console(format string, a ...any) {
	if s.in.Console == nil {
		return
	}
	msg := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	_, _ = io.WriteString(s.in.Console, msg)
}
