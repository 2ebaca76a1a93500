package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
)

// Bounds of making a template.
const (
	// templateSaveTimeout bounds saving the ready guest (~30 MB under TCG
	// here, well under a second).
	templateSaveTimeout = 60 * time.Second
	// templateExitTimeout bounds QEMU's exit after the save.
	templateExitTimeout = 5 * time.Second
)

// makeTemplate boots this run's VM as a template (its init waits for a
// test layer), saves it when ready and puts it at dir: the state (and RAM
// file), then its TemplateMeta, last. The initrd it boots (the base layer
// and the template config) is the run's, removed after: a restore does
// not read it. With install, it is made beside dir and moved into place
// (installTemplate: a cache shared by concurrent runners); without, it is
// made in dir itself (a build output). The boot is bounded by Options.ChannelTimeout; everything it
// started is gone when it returns.
func (p *runPlan) makeTemplate(ctx context.Context, pr *prepared, base string, tcfg []byte, want TemplateMeta, dir string, install bool) (Template, error) {
	o := p.o
	start := o.Now()
	work := dir
	if install {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".make-")
		if err != nil {
			return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
		}
		work = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	done := false
	defer func() {
		if !done && install {
			os.RemoveAll(work)
		}
	}()
	initrd := filepath.Join(pr.state, "template-initrd.cpio")
	defer os.Remove(initrd)
	if err := writeTemplateInitrd(initrd, base, tcfg); err != nil {
		return Template{}, err
	}
	mapped, err := p.bootAndSave(ctx, pr, initrd, work)
	if err != nil {
		return Template{}, err
	}
	st, err := os.Stat(filepath.Join(work, TemplateStateFile))
	if err != nil {
		return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	meta := want
	meta.MakeTime, meta.StateBytes = o.Now().Sub(start), st.Size()
	meta.LayerWindowMapped = mapped
	b, err := json.MarshalIndent(meta, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(work, TemplateMetaFile), b, 0o644)
	}
	if err != nil {
		return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	t := Template{Dir: dir, Meta: meta}
	if install {
		t, err = installTemplate(work, dir, want)
	}
	done = err == nil
	if err == nil {
		window := ""
		switch {
		case meta.LayerWindowMiB > 0 && mapped:
			window = fmt.Sprintf("; test layers up to %d MiB in its layer window", meta.LayerWindowMiB)
		case meta.LayerWindowMiB > 0:
			window = "; its guest did not map its layer window (the console says why with -v): test layers over the share"
		}
		fmt.Fprintf(o.Log, "invm: made template %s in %v (%.1f MB saved state%s)\n", t.Dir, meta.MakeTime.Round(time.Millisecond), float64(meta.StateBytes)/1e6, window)
	}
	return t, err
}

// MakeTemplate makes a template of o's VM in dir (Options.TemplateOut):
// Bazel's template action, `invm -make-template`. o needs no test binary
// when it names the arch.
func MakeTemplate(ctx context.Context, o Options, dir string) (Template, error) {
	o.TemplateOut = dir
	if o.Start == "" || o.Start == StartCold {
		o.Start = StartSnapshot
	}
	res, err := Run(ctx, o)
	if err != nil {
		return Template{}, err
	}
	if res.Template == "" {
		return Template{}, fmt.Errorf("%w: %w: no template made (%s)", ErrInvalidOptions, ErrTemplate, res.StartReason)
	}
	return ReadTemplate(dir)
}

// bootAndSave boots the template VM (from initrd) on a channel of its own
// (templateChannel), waits until its init says it is ready, saves it to
// tmp's state file over the monitor and lets QEMU exit. mapped says
// whether its guest mapped its layer window (windowMarked).
func (p *runPlan) bootAndSave(ctx context.Context, pr *prepared, initrd, tmp string) (mapped bool, err error) {
	o := p.o
	tch, ready, err := p.templateChannel(pr)
	if err != nil {
		return false, err
	}
	defer tch.close()
	monitor := templateMonitor(pr.state)
	os.Remove(monitor)
	defer os.Remove(monitor)
	vm := p.lower(vmDescription(p, pr))
	vm.Initrd, vm.Restore, vm.Channel, vm.Monitor = initrd, "", tch.device, monitor
	vm.Quiet = true // as every restore's (restoreVM)
	// The template's share is empty: each restore exports its own.
	vm.LayerShare = filepath.Join(pr.state, "template-layer-share")
	if err := os.MkdirAll(vm.LayerShare, 0o755); err != nil {
		return false, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	defer os.Remove(vm.LayerShare)
	window := filepath.Join(pr.state, templateWindowFile)
	if w := p.layerWindow(vm); w.mib > 0 {
		vm = withWindow(vm, w, window)
		defer os.Remove(window)
		if _, err := writeLayerWindow(window, w.mib, nil); err != nil {
			return false, fmt.Errorf("%w: %w", ErrTemplate, err)
		}
	}
	vm.SaveFormat = p.templateFormat()
	if vm.SaveFormat == vmm.SaveRAMFile {
		vm.RAMFile, vm.RAMFilePrivate = filepath.Join(tmp, TemplateRAMFile), false
	}
	args, err := p.backend.Args(vm)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(o.QEMU, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = vm.Files()
	if o.Verbose {
		cmd.Stdout = io.MultiWriter(out, &linePrefixer{w: o.Log, prefix: "invm: template: "})
	}
	qemuProc, err := proc.Start(cmd)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	defer qemuProc.Kill()
	fail := func(err error) error {
		return fmt.Errorf("%w: %w; QEMU: %s", ErrTemplate, err, tailLines(out.String(), 10))
	}
	conn, err := waitTemplateReady(ctx, tch.ln, ready, qemuProc, o.ChannelTimeout)
	if err != nil {
		return false, fail(err)
	}
	defer conn.Close()
	sctx, cancel := context.WithTimeout(ctx, templateSaveTimeout)
	defer cancel()
	mon, err := p.backend.Attach(sctx, monitor, qemuProc.Done())
	if err != nil {
		return false, fail(err)
	}
	defer mon.Close()
	saver, ok := mon.(vmm.Saver)
	if !ok {
		return false, fail(fmt.Errorf("backend %s cannot save a VM", p.backend.Name()))
	}
	if err := saver.Save(sctx, filepath.Join(tmp, TemplateStateFile)); err != nil {
		return false, fail(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, templateExitTimeout)
	defer qcancel()
	_ = mon.Quit(qctx)
	select {
	case <-qemuProc.Done():
	case <-qctx.Done():
	}
	return vm.LayerWindow.File != "" && windowMarked(window), nil
}

// templateChannel is the channel of a template being made, of the run's
// transport but its own (the run's serves the restore): a virtio-serial
// port whose guest says protocol.TemplateReady (ready reads it), or, on
// kernel vhost-vsock, a CID of its own whose guest listens and answers
// the host's dial with its hello (ready is nil: the dial read it).
func (p *runPlan) templateChannel(pr *prepared) (*channel, func(net.Conn) error, error) {
	state := filepath.Join(pr.state, "template")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	listen := pr.ch.guest.Kind == protocol.ChannelVsockListen
	tch, err := openChannel(p.o, state, pr.ch.choice, listen)
	if err != nil {
		os.Remove(state)
		return nil, nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	tch.closers = append([]func(){func() { os.Remove(state) }}, tch.closers...)
	if listen {
		return tch, nil, nil
	}
	return tch, readTemplateReady, nil
}

// readTemplateReady reads a serial template's protocol.TemplateReady.
func readTemplateReady(c net.Conn) error {
	buf := make([]byte, len(protocol.TemplateReady))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != protocol.TemplateReady {
		return fmt.Errorf("the guest said %q, not that it is ready", buf)
	}
	return nil
}

// waitTemplateReady accepts the template guest's channel and, with ready,
// reads what says it is ready, within timeout, unless QEMU exits first.
func waitTemplateReady(ctx context.Context, ln net.Listener, ready func(net.Conn) error, qemuProc *proc.Process, timeout time.Duration) (net.Conn, error) {
	type accepted struct {
		c   net.Conn
		err error
	}
	got := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil && ready != nil {
			_ = c.SetReadDeadline(time.Now().Add(timeout))
			if err = ready(c); err != nil {
				c.Close()
				c = nil
			} else {
				_ = c.SetReadDeadline(time.Time{})
			}
		}
		got <- accepted{c, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case a := <-got:
		return a.c, a.err
	case <-qemuProc.Done():
		ln.Close()
		return nil, fmt.Errorf("QEMU exited (%s) before the template was ready", exitStatus(qemuProc.Err()))
	case <-timer.C:
	case <-ctx.Done():
	}
	ln.Close()
	if a := <-got; a.c != nil {
		a.c.Close()
	}
	return nil, fmt.Errorf("the template was not ready within %v (%v)", timeout, ctx.Err())
}

// tailLines is the last n lines of s, on one line.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// linePrefixer writes whole lines to w, each after prefix (the console of
// a template being made, in a verbose run's log).
type linePrefixer struct {
	w      io.Writer
	prefix string
	line   []byte
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	l.line = append(l.line, b...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.line[:i]); err != nil {
			return len(b), err
		}
		l.line = l.line[i+1:]
	}
}
