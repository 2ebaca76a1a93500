// Command mktemplate makes the snapshot-start template of a go_vm_test's VM
// (runner.MakeTemplate): go_vm_test runs it as a build action, so the
// template is an output cached like any other (a remote cache shares it).
//
//	mktemplate -o DIR -spec X.template.json -kernel KERNEL -base BASE.cpio [-v]
//
// The spec is a launch file (package vmspec) whose kernel and base layer
// are given by -kernel and -base (exec paths). A spec that start = "auto"
// cannot restore (runner.TemplateBlocker) gets a directory without a
// template, saying why in NoTemplateFile: its test boots cold. QEMU is
// $INVM_QEMU, else the arch's qemu-system binary on PATH; host facts are
// cached in $RULES_GO_VM_CACHE when set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// NoTemplateFile is what a template directory of a VM that cannot be
// restored holds instead: why.
const NoTemplateFile = "no-template.txt"

// makeTimeout bounds making one template (a boot to the point init waits,
// a save): far more than TCG needs here (seconds), on a loaded host too.
const makeTimeout = 5 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mktemplate:", err)
		os.Exit(1)
	}
}

// errUsage is a bad command line.
var errUsage = errors.New("usage: mktemplate -o DIR -spec SPEC -kernel KERNEL -base BASE [-v]")

func run(ctx context.Context, args []string, getenv func(string) string, log io.Writer) error {
	fs := flag.NewFlagSet("mktemplate", flag.ContinueOnError)
	fs.SetOutput(log)
	out := fs.String("o", "", "the template directory to write")
	specPath := fs.String("spec", "", "the launch file of the VM")
	kernel := fs.String("kernel", "", "the guest kernel")
	base := fs.String("base", "", "the base initramfs layer")
	verbose := fs.Bool("v", false, "log the template's boot")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *out == "" || *specPath == "" || *kernel == "" || *base == "" || fs.NArg() > 0 {
		return errUsage
	}
	spec, shape, err := vmspec.Read(*specPath)
	if err != nil {
		return err
	}
	o := runner.Options{Arch: arch.Arch(spec.Arch), Kernel: *kernel, BaseLayerFile: *base, QEMU: getenv("INVM_QEMU"),
		Verbose: *verbose || getenv("INVM_VERBOSE") != "", Log: log}
	o.SetShape(shape)
	// Host facts (the accelerator canary's verdict, QEMU's capabilities):
	// the launchers' cache when named (--action_env=RULES_GO_VM_CACHE),
	// else a private one (an action's HOME may be unset or read-only).
	if o.CacheDir = getenv("RULES_GO_VM_CACHE"); o.CacheDir == "" {
		tmp, err := os.MkdirTemp("", "mktemplate-cache-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.CacheDir = tmp
	}
	if o.Start == runner.StartCold {
		return fmt.Errorf("%s: start = %q: no template to make", *specPath, o.Start)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if why := runner.TemplateBlocker(o); why != "" {
		return os.WriteFile(filepath.Join(*out, NoTemplateFile), []byte("no template: "+why+"\n"), 0o644)
	}
	ctx, cancel := context.WithTimeout(ctx, makeTimeout)
	defer cancel()
	t, err := runner.MakeTemplate(ctx, o, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "mktemplate: %s: %s in %v, %d bytes of state\n", t.Dir, t.Meta.Arch, t.Meta.MakeTime.Round(time.Millisecond), t.Meta.StateBytes)
	return nil
}
