package guestinit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// restore is a template guest's wait (GuestConfig.Template): it checks
// its layer share, opens the channel and says it is ready (awaitSerial,
// awaitListening), and waits, without the setup watchdog, for its test
// layer; the host saves
// the guest in that wait and every restore goes on from there. It extracts
// the layer at LayerRoot, sets the clock, mixes in the seed and reads the
// test's config, which must keep the template's channel (the open one).
// The returned dial holds the channel as the control stream; a layer or
// config that is not usable is its cfgErr, reported as the verdict on that
// channel.
func (s *session) restore(tmpl protocol.GuestConfig, wd *time.Timer) (protocol.GuestConfig, dialResult) {
	in := s.in
	if tmpl.LayerShare != "" {
		if in.LayerShare == nil {
			return tmpl, dialResult{err: fmt.Errorf("template: layer share %q: this init cannot reach a share", tmpl.LayerShare)}
		}
		if err := in.LayerShare.Check(tmpl.LayerShare); err != nil {
			return tmpl, dialResult{err: fmt.Errorf("template: %w", err)}
		}
	}
	if tmpl.LayerWindowSize > 0 {
		s.window = s.mapWindow(tmpl.LayerWindowBase, tmpl.LayerWindowSize)
	}
	wait := s.awaitSerial
	if tmpl.Channel.Kind == protocol.ChannelVsockListen {
		wait = s.awaitListening
	}
	conn, h, err := wait(tmpl.Channel, wd)
	if conn == nil {
		return tmpl, dialResult{err: err}
	}
	d := dialResult{conn: conn}
	// Setup counts from the restore: the template's boot is not this run's.
	s.start, s.boot = in.Clock.Now(), 0
	if err == nil {
		err = s.extractLayer(conn, h, tmpl.LayerShare)
	}
	if err != nil {
		d.cfgErr = fmt.Errorf("restored from a template: %w", err)
		return tmpl, d
	}
	if err := s.freshen(h); err != nil {
		d.cfgErr = err
		return tmpl, d
	}
	cfg, err := protocol.ReadConfig(in.ConfigPath)
	switch {
	case err != nil:
		d.cfgErr = fmt.Errorf("restored from a template: %w", err)
	case cfg.Template:
		d.cfgErr = fmt.Errorf("restored from a template: the test layer has no test config (%s is still the template's)", in.ConfigPath)
	case cfg.Channel != tmpl.Channel:
		d.cfgErr = fmt.Errorf("restored from a template: the test's channel %+v is not the template's %+v", cfg.Channel, tmpl.Channel)
	default:
		s.verbose.Store(cfg.Verbose)
		s.ack.Store(int64(cfg.AckTimeout))
	}
	return cfg, d
}

// awaitSerial is a template's wait on a virtio-serial channel: it opens
// the port, says protocol.TemplateReady and reads the layer's header
// (the host saves the guest in that read; a restore's host writes the
// header). A nil conn means the channel did not open; a header that does
// not read comes with the conn, to be reported on it.
func (s *session) awaitSerial(ch protocol.Channel, wd *time.Timer) (io.ReadWriteCloser, protocol.LayerHeader, error) {
	in := s.in
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(in.OpenTimeout, OpenTimeout))
	conn, err := in.Open(ctx, ch)
	cancel()
	if err != nil {
		return nil, protocol.LayerHeader{}, err
	}
	s.console("guestinit: template ready (%v after boot), waiting for the test layer", in.Clock.SinceBoot())
	s.drainConsole()
	if _, err := io.WriteString(conn, protocol.TemplateReady); err != nil {
		conn.Close()
		return nil, protocol.LayerHeader{}, fmt.Errorf("template: saying ready: %w", err)
	}
	wd.Stop()
	h, err := protocol.ReadLayerHeader(conn)
	wd.Reset(orDefault(in.SetupTimeout, SetupTimeout))
	return conn, h, err
}

// awaitListening is a template's wait on a vsock-listen channel (kernel
// vhost-vsock): it listens on the channel's port and answers every
// connection with its CID (protocol.WriteListenHello), then reads the
// layer's header from it. The template maker's connection (the host saves
// the guest while the guest reads it) breaks at a restore, when QEMU's
// transport reset gives the guest its new CID, and so does a connection
// the host made before that reset: on such a break it waits for the next
// connection. A header that does not decode comes with its conn.
func (s *session) awaitListening(ch protocol.Channel, wd *time.Timer) (io.ReadWriteCloser, protocol.LayerHeader, error) {
	in := s.in
	if in.Listen == nil || in.LocalCID == nil {
		return nil, protocol.LayerHeader{}, fmt.Errorf("template: channel %s: this init cannot listen on vsock", describeChannel(ch))
	}
	ln, err := in.Listen(ch.Port)
	if err != nil {
		return nil, protocol.LayerHeader{}, fmt.Errorf("template: %w", err)
	}
	defer ln.Close() // the accepted connection stays open
	s.console("guestinit: template ready (%v after boot), listening on vsock port %d for the test layer", in.Clock.SinceBoot(), ch.Port)
	s.drainConsole()
	wd.Stop()
	defer wd.Reset(orDefault(in.SetupTimeout, SetupTimeout))
	for {
		conn, err := ln.Accept()
		if err != nil {
			return nil, protocol.LayerHeader{}, fmt.Errorf("template: accept on vsock port %d: %w", ch.Port, err)
		}
		cid, err := in.LocalCID()
		if err != nil {
			conn.Close()
			return nil, protocol.LayerHeader{}, fmt.Errorf("template: the guest's vsock CID: %w", err)
		}
		if err := protocol.WriteListenHello(conn, cid); err != nil {
			conn.Close()
			continue
		}
		h, err := protocol.ReadLayerHeader(conn)
		if err == nil || !brokenConn(err) {
			return conn, h, err
		}
		s.diagf("template: connection on vsock port %d (guest CID %d) ended before a layer header (%v); waiting for the next", ch.Port, cid, err)
		conn.Close()
	}
}

// drainConsole waits until the console has sent what init wrote to it
// (tcdrain), so that the host saves a template whose serial port is idle:
// otherwise every restore first sends the rest of the "template ready"
// line through the emulated UART, an interrupt per few bytes. A console
// that is not a terminal (tests) has nothing to drain.
func (s *session) drainConsole() {
	if f, ok := s.in.Console.(interface{ Fd() uintptr }); ok {
		_ = unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1)
	}
}

// brokenConn says whether err is a connection that ended (the peer went,
// or a vsock transport reset) rather than bytes that did not decode.
func brokenConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, unix.ECONNRESET) ||
		errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.EPIPE)
}

// mapWindow maps a template's layer window and marks it
// (protocol.LayerWindowMagic: the host reads the mark in the window's file
// after the save, and puts layers there only then). A window that does not
// map is said on the console, and the template takes its layers over the
// share: nil.
func (s *session) mapWindow(base, size uint64) []byte {
	if s.in.MapLayerWindow == nil {
		s.console("guestinit: template: this init cannot map a layer window; test layers come over the share")
		return nil
	}
	b, err := s.in.MapLayerWindow(base, size)
	if err != nil {
		s.console("guestinit: template: %v; test layers come over the share", err)
		return nil
	}
	copy(b, protocol.LayerWindowMagic)
	return b
}

// extractLayer extracts the layer whose header is h under LayerRoot: from
// the channel after the header (inline), from the template's layer window
// (window), or from the template's layer share tagged tag (shared).
func (s *session) extractLayer(conn io.Reader, h protocol.LayerHeader, tag string) error {
	root := orString(s.in.LayerRoot, "/")
	switch h.Via {
	case protocol.LayerInline:
		return protocol.ExtractInlineLayer(conn, h, root)
	case protocol.LayerInWindow:
		if s.window == nil {
			return fmt.Errorf("%w: the layer is in the layer window, and this template has none mapped", protocol.ErrBadLayer)
		}
		if h.Size > int64(len(s.window)) {
			return fmt.Errorf("%w: %d bytes of archives do not fit the %d-byte layer window", protocol.ErrBadLayer, h.Size, len(s.window))
		}
		// The window stays mapped: the guest resets with it.
		return protocol.ExtractLayerBytes(s.window[:h.Size], h, root)
	}
	if tag == "" || s.in.LayerShare == nil {
		return fmt.Errorf("%w: the layer is on a share, and this template has none", protocol.ErrBadLayer)
	}
	b, c, err := s.in.LayerShare.Map(tag)
	if err != nil {
		return err
	}
	if err := protocol.ExtractLayerBytes(b, h, root); err != nil {
		c.Close()
		return err
	}
	// Kept open, never closed: closing the file tears the share's 9p
	// client down, ~20 ms of first-run kernel code under TCG (measured)
	// that nothing needs; the guest resets with it open.
	s.layerShare = c
	return nil
}

// freshen makes a restored guest this run's: the host's wall clock, the
// host's seed in the random pool.
func (s *session) freshen(h protocol.LayerHeader) error {
	if s.in.SetClock != nil {
		if err := s.in.SetClock(h.Now); err != nil {
			return fmt.Errorf("restored from a template: setting the clock: %w", err)
		}
	}
	if s.in.AddEntropy != nil {
		if err := s.in.AddEntropy(h.Seed[:]); err != nil {
			return fmt.Errorf("restored from a template: seeding the random pool: %w", err)
		}
	}
	return nil
}

func orString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// setClock sets CLOCK_REALTIME.
func setClock(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Settimeofday(&tv)
}

// randPoolInfo is struct rand_pool_info of RNDADDENTROPY with its buffer.
type randPoolInfo struct {
	entropyCount int32
	bufSize      int32
	buf          [protocol.SeedSize]byte
}

// addEntropy mixes seed into the kernel's pool, credited (it is the host's
// fresh randomness), then forces a reseed of the CRNG so that the next
// getrandom differs from every other restore's.
func addEntropy(seed []byte) error {
	f, err := unix.Open("/dev/urandom", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(f)
	info := randPoolInfo{entropyCount: int32(8 * len(seed)), bufSize: int32(len(seed))}
	copy(info.buf[:], seed)
	if err := ioctlPtr(f, unix.RNDADDENTROPY, unsafe.Pointer(&info)); err != nil {
		return fmt.Errorf("RNDADDENTROPY: %w", err)
	}
	if err := ioctlPtr(f, unix.RNDRESEEDCRNG, nil); err != nil {
		return fmt.Errorf("RNDRESEEDCRNG: %w", err)
	}
	return nil
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}
