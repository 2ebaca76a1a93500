package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

// prepared is what the prepare phase made for one run: the state
// directory, the host side of the channel (with its daemon), the
// accelerator choice and the initrd. The run's teardown (teardown.go)
// releases it.
type prepared struct {
	// state is the run's private directory; keep says it is
	// Options.StateDir, which keeps the initrd and console log.
	state string
	keep  bool
	// releaseState unlocks and removes a temporary state directory.
	releaseState func()
	ch           *channel
	accel        AccelChoice
	initrd       string
	// base and cfg are the base layer and the guest config; restore is
	// what a snapshot start restores (nil: a cold boot).
	base    string
	cfg     protocol.GuestConfig
	restore *restore
	// cleanups are files removed on release, before the state directory.
	cleanups []string
	// vmTasks tracks the VM's background work (the monitor's watch): the
	// teardown's vm stage (nil: untracked goroutines).
	vmTasks *lifecycle.Subsystem
}

// prepare is the prepare phase, in this order: the state directory, the
// base layer (built and cached when needed), the channel's host side (the
// guest's config names it, and it must listen before boot), the
// accelerator (a KVM canary boot, whose time comes off the guest's bounds
// under an external deadline), the guest config and the initrd, then the
// vsock daemon. It returns what it made also on error, for the run's
// teardown to release.
func prepare(ctx context.Context, p *runPlan, res *Result) (*prepared, error) {
	o := p.o
	pr := &prepared{}
	if err := pr.makeStateDir(o); err != nil {
		return pr, err
	}
	base, err := baseLayer(o)
	if err != nil {
		return pr, err
	}
	if pr.ch, err = openChannel(o, pr.state, p.transport, p.guestListens); err != nil {
		return pr, err
	}
	res.Transport, res.TransportReason = string(pr.ch.choice.Transport), pr.ch.choice.Reason
	fmt.Fprintf(o.Log, "invm: transport %s (%s)\n", pr.ch.choice.Transport, pr.ch.choice.Reason)
	if pr.accel, err = p.chooseAccel(ctx); err != nil {
		return pr, err
	}
	res.Accel, res.AccelReason = pr.accel.Accel, pr.accel.Reason
	fmt.Fprintf(o.Log, "invm: accelerator %s (%s)\n", pr.accel.Accel, pr.accel.Reason)
	var spent time.Duration
	if o.ExternalDeadline {
		spent = o.Now().Sub(p.start)
	}
	pr.base, pr.cfg = base, guestConfig(o, p.shape, pr.ch.guest, pr.accel.Accel, spent, hostHints(o.Kernel))
	if err := pr.prepareStart(ctx, p, res); err != nil {
		return pr, err
	}
	// The vsock daemon (vhost-user-vsock), after the listener.
	if err := pr.ch.startDaemon(ctx, pr.state); err != nil {
		return pr, err
	}
	return pr, nil
}

// prepareStart readies the start: for a snapshot start the template
// (found or made) and the test layer, else, or when that fails (logged),
// the cold boot's initrd.
func (pr *prepared) prepareStart(ctx context.Context, p *runPlan, res *Result) error {
	o := p.o
	res.Start, res.StartReason = StartCold, p.startup.reason
	if o.TemplateOut != "" {
		if !p.startup.snapshot {
			return fmt.Errorf("%w: no template of this VM: %s", ErrInvalidOptions, p.startup.reason)
		}
		tcfg, want, err := p.templateFor(pr, pr.base)
		if err != nil {
			return err
		}
		t, err := p.makeTemplate(ctx, pr, pr.base, tcfg, want, o.TemplateOut, false)
		if err != nil {
			return err
		}
		res.Template = t.Dir
		return nil
	}
	if p.startup.snapshot {
		r, err := p.prepareRestore(ctx, pr, pr.base, pr.cfg)
		if err == nil {
			pr.restore = r
			res.Start, res.Template = StartSnapshot, r.tmpl.Dir
			fmt.Fprintf(o.Log, "invm: start snapshot (%s; template %s)\n", p.startup.reason, r.tmpl.Dir)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		res.StartReason = fmt.Sprintf("%s, but no template: %v", p.startup.reason, err)
	}
	fmt.Fprintf(o.Log, "invm: start cold (%s)\n", res.StartReason)
	return pr.writeInitrd(o, pr.base, pr.cfg)
}

// removeLater has the teardown remove file.
func (pr *prepared) removeLater(file string) { pr.cleanups = append(pr.cleanups, file) }

// makeStateDir makes the run's private directory: Options.StateDir (kept;
// only the run's sockets and daemon log go), else a new locked temporary
// directory, removed on release, after removing those of killed runners.
func (pr *prepared) makeStateDir(o Options) error {
	if o.StateDir != "" {
		if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
			return fmt.Errorf("%w: %w", ErrInternal, err)
		}
		pr.state, pr.keep = o.StateDir, true
		return nil
	}
	// Runners killed by SIGKILL cannot clean up: the next one does.
	if removed, _ := CleanStale(os.TempDir(), o.Now()); len(removed) > 0 {
		fmt.Fprintf(o.Log, "invm: removed %d stale state directories of killed runners\n", len(removed))
	}
	state, release, err := newStateDir("")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInternal, err)
	}
	pr.state, pr.releaseState = state, release
	return nil
}

// baseLayer returns the base initramfs layer: Options.BaseLayerFile, else
// the cached one around Options.InitBinary, else around the init built from
// the module root (Options.ModuleRoot, else found from the working
// directory).
func baseLayer(o Options) (string, error) {
	if o.BaseLayerFile != "" {
		return o.BaseLayerFile, nil
	}
	root := o.ModuleRoot
	if o.InitBinary == "" && root == "" {
		wd, _ := os.Getwd()
		var err error
		if root, err = FindModuleRoot(wd); err != nil {
			return "", err
		}
	}
	busybox, err := FindGuestBusybox(o.Arch, o.Busybox)
	if err != nil {
		return "", err
	}
	return BaseLayer(o.CacheDir, o.Arch.GOARCH(), o.InitBinary, root, busybox)
}

// writeInitrd writes initrd.cpio in the state directory (removed on
// release unless kept): the base layer, the extra layers, then the test
// layer (testLayer).
func (pr *prepared) writeInitrd(o Options, base string, cfg protocol.GuestConfig) error {
	test, err := testLayer(o, cfg)
	if err != nil {
		return err
	}
	pr.initrd = filepath.Join(pr.state, "initrd.cpio")
	if !pr.keep {
		pr.removeLater(pr.initrd)
	}
	return WriteInitrd(pr.initrd, base, o.ExtraLayers, test)
}

// testLayer is the run's test layer: cfg, the test binary (unless a layer
// carries it) with its loader and libraries, its testdata, the package
// files (Options.PackageFiles) and, for Shell, a static busybox. A cold
// boot appends it to the initrd, a snapshot start sends it over the
// channel: one layer for both.
func testLayer(o Options, cfg protocol.GuestConfig) (*initramfs.Layer, error) {
	layerBinary := o.TestBinary
	if o.GuestTestPath != "" {
		layerBinary = "" // already in an extra layer
	}
	test, err := TestLayer(layerBinary, o.TestdataDir, cfg)
	if err != nil {
		return nil, err
	}
	if err := addPackageFiles(test, o.PackageFiles); err != nil {
		return nil, err
	}
	if layerBinary != "" {
		if err := addLoader(test, layerBinary, o); err != nil {
			return nil, err
		}
	}
	if o.Shell && (o.ShellBusybox != "" || o.BaseLayerFile != "" || o.Busybox == NoBusybox) {
		// Otherwise the base layer has the guest arch's busybox (or,
		// without one, the shell fails saying so).
		if err := addBusybox(test, o); err != nil {
			return nil, err
		}
	}
	return test, nil
}

// addBusybox puts a static busybox for the guest's arch at GuestBusybox in
// the test layer, for Shell.
func addBusybox(test *initramfs.Layer, o Options) error {
	bb, err := FindBusybox(o.ShellBusybox)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if a, err := ArchOfELF(bb); err != nil || a != o.Arch {
		return fmt.Errorf("%w: shell busybox %s is for %s, the guest is %s: pass a static %s busybox "+
			"(-shell-busybox / $INVM_SHELL_BUSYBOX; e.g. from `apt-get download busybox-static:%s`)",
			ErrInvalidOptions, bb, a, o.Arch, o.Arch, o.Arch.GOARCH())
	}
	if err := test.AddFile(strings.TrimPrefix(GuestBusybox, "/"), bb, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrInternal, err)
	}
	return nil
}
