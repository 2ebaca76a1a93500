package guestinit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
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
		stripes    int    // layer ports
		wantPass   bool
		wantReason string
	}{
		{name: "restored", layer: newcFile("invm/config.json", testCfg(serial)), wantPass: true},
		{name: "restored over 3 layer ports", layer: newcFile("invm/config.json", testCfg(serial)), stripes: 3, wantPass: true},
		{name: "other channel", layer: newcFile("invm/config.json", testCfg(protocol.DefaultChannel())),
			wantReason: "is not the template's"},
		{name: "no config", layer: newcFile("invm/other", []byte("x")), wantReason: "the test layer has no test config"},
		{name: "bad layer", wantReason: "restored from a template: protocol: bad test layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cfgPath := filepath.Join(root, "invm/config.json")
			tmpl := protocol.GuestConfig{Template: true, Channel: serial, Verbose: true}
			portSocks := map[string]string{}
			var portLns []net.Listener
			for i := range tc.stripes {
				dev := fmt.Sprintf("/dev/vport0p%d", i+2)
				tmpl.LayerPorts = append(tmpl.LayerPorts, dev)
				portSocks[dev] = filepath.Join(t.TempDir(), "port.sock")
				pl, err := net.Listen("unix", portSocks[dev])
				if err != nil {
					t.Fatal(err)
				}
				defer pl.Close()
				portLns = append(portLns, pl)
			}
			b, _ := tmpl.Marshal()
			if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
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
			var console, stdout syncBuffer
			in := &Init{
				ConfigPath: cfgPath, LayerRoot: root, ProcRoot: "/proc", Subreaper: true,
				Clock: realClock{sinceBoot: func() time.Duration { return 0 }},
				Sleep: time.Sleep,
				Open: func(_ context.Context, ch protocol.Channel) (io.ReadWriteCloser, error) {
					if p, ok := portSocks[ch.Device]; ok {
						return net.Dial("unix", p)
					}
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
				var stripes []io.Writer
				for _, pl := range portLns {
					pc, err := pl.Accept()
					if err != nil {
						host <- hostResult{err: err}
						return
					}
					defer pc.Close()
					stripes = append(stripes, pc)
				}
				if tc.layer == nil {
					_, err = c.Write([]byte("not a layer message, not at all, not even close......................"))
				} else {
					err = protocol.WriteLayerStriped(c, stripes, h, tc.layer)
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
