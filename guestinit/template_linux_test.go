package guestinit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// newcFile is a one-file newc archive (what the runner's test layer is).
func newcFile(name string, data []byte) []byte {
	var b bytes.Buffer
	entry := func(name string, mode uint32, data []byte) {
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name + "\x00")
		b.Write(make([]byte, (4-b.Len()%4)%4))
		b.Write(data)
		b.Write(make([]byte, (4-b.Len()%4)%4))
	}
	entry(name, 0o100644, data)
	entry("TRAILER!!!", 0, nil)
	return b.Bytes()
}

// writeConfig writes cfg at path, as the runner's initrd has it.
func writeConfig(t *testing.T, path string, cfg protocol.GuestConfig) {
	t.Helper()
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeShare is a LayerShare over a host directory: the layer file in it,
// its Check failing with checkErr.
type fakeShare struct {
	dir      string
	checkErr error
	checked  []string
	closed   int
}

func (f *fakeShare) Check(tag string) error {
	f.checked = append(f.checked, tag)
	return f.checkErr
}

func (f *fakeShare) Map(tag string) ([]byte, io.Closer, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, protocol.LayerShareFile))
	return b, closerFunc(func() error { f.closed++; return nil }), err
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// TestRunTemplate runs a template guest's init against a fake host that
// waits for protocol.TemplateReady, sends a layer (the test's config) and
// collects the session on the same channel, as after a restore.
func TestRunTemplate(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	serial := protocol.Channel{Kind: protocol.ChannelSerial, Device: "/dev/vport0p1"}
	testCfg := func(ch protocol.Channel) []byte {
		c := protocol.GuestConfig{Path: self, Env: []string{helperEnv + "=pass", "EXTRA=restored"}, Channel: ch,
			Timeout: protocol.Duration(time.Minute), AckTimeout: protocol.Duration(10 * time.Second)}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name       string
		layer      []byte // archives; nil: a broken message
		shared     bool   // the template has a share, the layer is on it
		noShare    bool   // the layer is shared, but the template has no share
		window     int    // the template's layer window's size (0: none); the layer is in it
		windowErr  error  // what mapping the window returns
		loErr      error  // what bringing the loopback up returns
		wantPass   bool
		wantReason string
	}{
		{name: "restored", layer: newcFile("invm/config.json", testCfg(serial)), wantPass: true},
		{name: "restored from the share", layer: newcFile("invm/config.json", testCfg(serial)), shared: true, wantPass: true},
		{name: "shared, no share", layer: newcFile("invm/config.json", testCfg(serial)), noShare: true,
			wantReason: "the layer is on a share, and this template has none"},
		{name: "restored from the window", layer: newcFile("invm/config.json", testCfg(serial)), window: 1 << 20, wantPass: true},
		{name: "window does not map", layer: newcFile("invm/config.json", testCfg(serial)), window: 1 << 20,
			windowErr: errors.New("no /dev/mem"), wantReason: "the layer is in the layer window, and this template has none mapped"},
		{name: "layer over the window", layer: append(newcFile("invm/config.json", testCfg(serial)), newcFile("invm/pad", make([]byte, 8192))...), window: 4096,
			wantReason: "do not fit the 4096-byte layer window"},
		{name: "other channel", layer: newcFile("invm/config.json", testCfg(protocol.DefaultChannel())),
			wantReason: "is not the template's"},
		{name: "loopback fails", layer: newcFile("invm/config.json", testCfg(serial)), loErr: errors.New("no lo"),
			wantReason: "bring up the loopback interface: no lo"},
		{name: "no config", layer: newcFile("invm/other", []byte("x")), wantReason: "the test layer has no test config"},
		{name: "bad layer", wantReason: "restored from a template: protocol: bad test layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cfgPath := filepath.Join(root, "invm/config.json")
			tmpl := protocol.GuestConfig{Template: true, Channel: serial, Verbose: true}
			share := &fakeShare{dir: t.TempDir()}
			if tc.shared {
				tmpl.LayerShare = protocol.LayerShareTag
			}
			var window []byte
			var mapped [][2]uint64
			if tc.window > 0 {
				tmpl.LayerWindowBase, tmpl.LayerWindowSize = 256<<20, uint64(tc.window)
			}
			writeConfig(t, cfgPath, tmpl)
			sock := filepath.Join(t.TempDir(), "serial.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			now := time.Unix(1900000000, 0)
			var clock time.Time
			var seed []byte
			var opened protocol.Channel
			loCalls, loBeforeReady := 0, false
			var console, stdout syncBuffer
			in := &Init{
				ConfigPath: cfgPath, LayerRoot: root, ProcRoot: "/proc", Subreaper: true,
				Clock:      realClock{sinceBoot: func() time.Duration { return 0 }},
				Sleep:      time.Sleep,
				LayerShare: share,
				MapLayerWindow: func(base, size uint64) ([]byte, error) {
					mapped = append(mapped, [2]uint64{base, size})
					if tc.windowErr != nil {
						return nil, tc.windowErr
					}
					window = make([]byte, size)
					return window, nil
				},
				LoopbackUp: func() error {
					loCalls++
					loBeforeReady = opened == protocol.Channel{}
					return tc.loErr
				},
				Open: func(_ context.Context, ch protocol.Channel) (io.ReadWriteCloser, error) {
					opened = ch
					return net.Dial("unix", sock)
				},
				SetClock:     func(t time.Time) error { clock = t; return nil },
				AddEntropy:   func(s []byte) error { seed = append([]byte(nil), s...); return nil },
				PowerOff:     func() error { return nil },
				Console:      &console,
				OutputsDir:   filepath.Join(root, "outputs"),
				SetupTimeout: time.Minute,
			}
			type hostResult struct {
				res protocol.SessionResult
				err error
			}
			host := make(chan hostResult, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					host <- hostResult{err: err}
					return
				}
				defer c.Close()
				ready := make([]byte, len(protocol.TemplateReady))
				if _, err := io.ReadFull(c, ready); err != nil || string(ready) != protocol.TemplateReady {
					host <- hostResult{err: fmt.Errorf("ready %q: %v", ready, err)}
					return
				}
				h := protocol.LayerHeader{Now: now}
				h.Seed[3] = 42
				switch {
				case tc.layer == nil:
					_, err = c.Write([]byte("not a layer message, not at all, not even close......................"))
				case tc.window > 0:
					// The template marked its window before it said ready;
					// the restore's window holds the layer instead.
					payload := protocol.LayerPayload(tc.layer)
					if tc.windowErr == nil && !bytes.HasPrefix(window, []byte(protocol.LayerWindowMagic)) {
						err = fmt.Errorf("the window starts %.30q, not with the magic", window)
						break
					}
					copy(window, payload)
					h.Via, h.Size = protocol.LayerInWindow, int64(len(payload))
					err = protocol.WriteLayerHeader(c, h)
				case tc.shared || tc.noShare:
					payload := protocol.LayerPayload(tc.layer)
					if err = os.WriteFile(filepath.Join(share.dir, protocol.LayerShareFile), payload, 0o644); err == nil {
						h.Via, h.Size = protocol.LayerShared, int64(len(payload))
						err = protocol.WriteLayerHeader(c, h)
					}
				default:
					err = protocol.WriteLayer(c, h, tc.layer)
				}
				if err != nil {
					host <- hostResult{err: err}
					return
				}
				res, err := protocol.Collect(context.Background(), c, protocol.CollectOptions{Stdout: &stdout, Stderr: io.Discard, Diag: io.Discard})
				host <- hostResult{res, err}
			}()
			if err := in.Run(); err != nil {
				t.Fatalf("Run = %v", err)
			}
			hr := <-host
			t.Logf("console:\n%s", console.String())
			if hr.err != nil {
				t.Fatalf("host: %v", hr.err)
			}
			if opened != serial {
				t.Errorf("opened %+v, want the template's %+v", opened, serial)
			}
			// The loopback comes up once, before the template waits: a
			// restore does not pay for it.
			if loCalls != 1 || !loBeforeReady {
				t.Errorf("loopback up %d times, before the template was ready: %v; want once, before", loCalls, loBeforeReady)
			}
			// The layer file stays open until the guest resets (closing it
			// costs a restore ~20 ms under TCG for nothing).
			if tc.shared && (len(share.checked) != 1 || share.checked[0] != protocol.LayerShareTag || share.closed != 0) {
				t.Errorf("share checked %q, closed %d times: want %q once, left open", share.checked, share.closed, protocol.LayerShareTag)
			}
			if !tc.shared && len(share.checked) != 0 {
				t.Errorf("a template without a share checked one: %q", share.checked)
			}
			if want := tc.window > 0; want != (len(mapped) == 1) || want && mapped[0] != [2]uint64{256 << 20, uint64(tc.window)} {
				t.Errorf("windows mapped %v, want the template's once: %v", mapped, want)
			}
			if tc.windowErr != nil && !strings.Contains(console.String(), "no /dev/mem; test layers come over the share") {
				t.Errorf("a window that did not map is not on the console")
			}
			if hr.res.Pass != tc.wantPass || !strings.Contains(hr.res.Reason, tc.wantReason) {
				t.Fatalf("pass %v reason %q, want pass %v reason containing %q", hr.res.Pass, hr.res.Reason, tc.wantPass, tc.wantReason)
			}
			if !tc.wantPass {
				return
			}
			if !strings.Contains(stdout.String(), "env EXTRA=restored\n") {
				t.Errorf("the test did not get the layer's config: stdout %.300q", stdout.String())
			}
			if !clock.Equal(now) || len(seed) != protocol.SeedSize || seed[3] != 42 {
				t.Errorf("clock %v seed %x: want the host's %v and seed", clock, seed, now)
			}
			if hr.res.Verdict == nil || hr.res.Verdict.Timings.Boot != 0 {
				t.Errorf("verdict %+v: a restored guest's boot is not this run's (want 0)", hr.res.Verdict)
			}
		})
	}
}

// TestTemplateWithoutItsShare: a template whose layer share is not there
// never says it is ready (it must not be saved): init fails before it
// opens the channel, saying why on the console.
func TestTemplateWithoutItsShare(t *testing.T) {
	root := t.TempDir()
	cfgPath := filepath.Join(root, "invm/config.json")
	tmpl := protocol.GuestConfig{Template: true, Channel: protocol.Channel{Kind: protocol.ChannelSerial, Device: "/dev/vport0p1"}, LayerShare: protocol.LayerShareTag}
	writeConfig(t, cfgPath, tmpl)
	opened := false
	var console syncBuffer
	in := &Init{
		ConfigPath: cfgPath, LayerRoot: root, ProcRoot: "/proc", Subreaper: true,
		Clock:      realClock{sinceBoot: func() time.Duration { return 0 }},
		Sleep:      time.Sleep,
		LayerShare: &fakeShare{checkErr: fmt.Errorf("%w: no virtio 9p device tagged %q", ErrNoShare, protocol.LayerShareTag)},
		Open: func(context.Context, protocol.Channel) (io.ReadWriteCloser, error) {
			opened = true
			return nil, errors.New("no host here")
		},
		PowerOff:     func() error { return nil },
		Console:      &console,
		OutputsDir:   filepath.Join(root, "outputs"),
		SetupTimeout: time.Minute,
	}
	if err := in.Run(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if opened {
		t.Error("the template opened its channel without its share")
	}
	if !strings.Contains(console.String(), "template: no layer share: no virtio 9p device tagged") {
		t.Errorf("console %q: want the missing share named", console.String())
	}
}

// unixListener is a Listener over a host Unix socket (the guest's vsock
// port in a test).
type unixListener struct{ net.Listener }

func (l unixListener) Accept() (io.ReadWriteCloser, error) { return l.Listener.Accept() }

// TestRunListeningTemplate: a template on a vsock-listen channel answers
// every connection with its CID and takes the layer from the first that
// sends a header: the maker's connection breaks at the restore, and one
// the host made before the guest took its new CID is dropped by the host;
// the guest waits through both and runs the test on the third.
func TestRunListeningTemplate(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ch := protocol.Channel{Kind: protocol.ChannelVsockListen, Port: protocol.TemplateListenPort}
	root := t.TempDir()
	cfgPath := filepath.Join(root, "invm/config.json")
	tmpl := protocol.GuestConfig{Template: true, Channel: ch, Verbose: true}
	writeConfig(t, cfgPath, tmpl)
	test := protocol.GuestConfig{Path: self, Env: []string{helperEnv + "=pass"}, Channel: ch,
		Timeout: protocol.Duration(time.Minute), AckTimeout: protocol.Duration(10 * time.Second)}
	tb, _ := json.Marshal(test)
	sock := filepath.Join(t.TempDir(), "vsock.sock")
	var cid atomic.Uint32
	cid.Store(10) // the template's
	var listened []uint32
	var console, stdout syncBuffer
	in := &Init{
		ConfigPath: cfgPath, LayerRoot: root, ProcRoot: "/proc", Subreaper: true,
		Clock: realClock{sinceBoot: func() time.Duration { return 0 }},
		Sleep: time.Sleep,
		Open: func(context.Context, protocol.Channel) (io.ReadWriteCloser, error) {
			return nil, errors.New("a listening template dials nothing")
		},
		Listen: func(port uint32) (Listener, error) {
			listened = append(listened, port)
			ln, err := net.Listen("unix", sock)
			return unixListener{ln}, err
		},
		LocalCID:     func() (uint32, error) { return cid.Load(), nil },
		PowerOff:     func() error { return nil },
		Console:      &console,
		OutputsDir:   filepath.Join(root, "outputs"),
		SetupTimeout: time.Minute,
	}
	type hostResult struct {
		res  protocol.SessionResult
		cids []uint32
		err  error
	}
	host := make(chan hostResult, 1)
	go func() {
		var hr hostResult
		defer func() { host <- hr }()
		dial := func() (net.Conn, uint32, error) {
			var c net.Conn
			var err error
			for range 500 { // until the guest listens
				if c, err = net.Dial("unix", sock); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				return nil, 0, err
			}
			got, err := protocol.ReadListenHello(c)
			hr.cids = append(hr.cids, got)
			return c, got, err
		}
		// The maker: the guest is ready; the save and restore break it.
		c, _, err := dial()
		if err != nil {
			hr.err = err
			return
		}
		c.Close()
		// Too early: the template's CID still, dropped.
		if c, _, err = dial(); err != nil {
			hr.err = err
			return
		}
		c.Close()
		cid.Store(20) // QEMU's transport reset is through
		c, got, err := dial()
		if err != nil || got != 20 {
			hr.err = fmt.Errorf("third hello: CID %d, %v", got, err)
			return
		}
		defer c.Close()
		if err := protocol.WriteLayer(c, protocol.LayerHeader{Now: time.Unix(1900000000, 0)}, newcFile("invm/config.json", tb)); err != nil {
			hr.err = err
			return
		}
		hr.res, hr.err = protocol.Collect(context.Background(), c, protocol.CollectOptions{Stdout: &stdout, Stderr: io.Discard, Diag: io.Discard})
	}()
	if err := in.Run(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	hr := <-host
	t.Logf("console:\n%s", console.String())
	if hr.err != nil {
		t.Fatalf("host: %v", hr.err)
	}
	if !slices.Equal(listened, []uint32{protocol.TemplateListenPort}) {
		t.Errorf("listened on %v, want the channel's port once", listened)
	}
	if !slices.Equal(hr.cids, []uint32{10, 10, 20}) {
		t.Errorf("hellos carried CIDs %v, want 10, 10, 20", hr.cids)
	}
	if !hr.res.Pass {
		t.Fatalf("not a pass: %q", hr.res.Reason)
	}
	if !strings.Contains(console.String(), "listening on vsock port 1026") {
		t.Errorf("the console does not say the template listens: %q", console.String())
	}
}

// TestListeningTemplateCannotListen: a vsock-listen template whose init
// cannot listen says why and is never ready.
func TestListeningTemplateCannotListen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen func(uint32) (Listener, error)
		want   string
	}{
		{"no listen", nil, "this init cannot listen on vsock"},
		{"listen fails", func(uint32) (Listener, error) { return nil, errors.New("EADDRINUSE") }, "template: EADDRINUSE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cfgPath := filepath.Join(root, "invm/config.json")
			tmpl := protocol.GuestConfig{Template: true, Channel: protocol.Channel{Kind: protocol.ChannelVsockListen, Port: 7}}
			writeConfig(t, cfgPath, tmpl)
			var console syncBuffer
			in := &Init{
				ConfigPath: cfgPath, LayerRoot: root, ProcRoot: "/proc", Subreaper: true,
				Clock:    realClock{sinceBoot: func() time.Duration { return 0 }},
				Sleep:    time.Sleep,
				Listen:   tc.listen,
				LocalCID: func() (uint32, error) { return 3, nil },
				Open: func(context.Context, protocol.Channel) (io.ReadWriteCloser, error) {
					return nil, errors.New("no host here")
				},
				PowerOff: func() error { return nil }, Console: &console,
				OutputsDir: filepath.Join(root, "outputs"), SetupTimeout: time.Minute,
			}
			if err := in.Run(); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if !strings.Contains(console.String(), tc.want) || strings.Contains(console.String(), "template ready") {
				t.Errorf("console %q: want %q and no readiness", console.String(), tc.want)
			}
		})
	}
}
