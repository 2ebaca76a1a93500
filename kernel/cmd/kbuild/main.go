// Command kbuild builds (or finds in its cache) a guest kernel from a Linux
// source tarball and configuration fragments.
//
// Usage:
//
//	kbuild --arch x86_64|aarch64 --source /usr/src/linux-source-7.2.tar.xz
//	       [--fragments DIR | --fragments a.config,b.config]
//	       [--patches DIR | --patches a.patch,b.patch | --patches none]
//	       [--cache DIR] [--out DIR] [-j N] [--cross-compile PREFIX]
//	       [--tree] [--base-tree tree.tar.gz]
//	       [--check-only] [-v]
//
// Without --fragments it uses the fragments embedded from kernel/fragments,
// without --patches the patches embedded from kernel/patches.
// It prints the cache entry directory; --out also copies the outputs
// (vmlinux and bzImage, or Image, plus config and manifest.json) there.
// --tree also saves the build tree (tree.tar.gz, in the entry and --out);
// --base-tree builds incrementally from such a tree: --fragments are then
// the extra options (default: none) and the tree has its patched sources
// (--patches must be unset or none).
// --check-only stops after checking the configuration (no build, no cache
// entry).
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
	"strings"
	"syscall"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
	"github.com/rules-go-vm/rules_go_vm/kernel"
	"github.com/rules-go-vm/rules_go_vm/kernel/kbuild"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kbuild:", err)
		os.Exit(1)
	}
}

// errUsage reports bad command-line usage.
var errUsage = errors.New("usage")

// loadFragments reads fragments from a directory (every *.config, sorted),
// a comma-separated list of files, or the embedded defaults ("").
func loadFragments(spec string) ([]*kconfig.Fragment, error) {
	if spec == "" {
		return kernel.DefaultFragments()
	}
	if fi, err := os.Stat(spec); err == nil && fi.IsDir() {
		return kconfig.LoadDir(os.DirFS(spec))
	}
	var frags []*kconfig.Fragment
	for _, p := range strings.Split(spec, ",") {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		frag, err := kconfig.Parse(filepath.Base(p), f)
		f.Close()
		if err != nil {
			return nil, err
		}
		frags = append(frags, frag)
	}
	return frags, nil
}

// loadPatches reads patches from a directory (every *.patch, sorted), a
// comma-separated list of files (in that order), "none", or the embedded
// defaults ("").
func loadPatches(spec string) ([]kbuild.Patch, error) {
	switch spec {
	case "":
		return kbuild.LoadPatches(kernel.Patches())
	case "none":
		return nil, nil
	}
	if fi, err := os.Stat(spec); err == nil && fi.IsDir() {
		return kbuild.LoadPatches(os.DirFS(spec))
	}
	var ps []kbuild.Patch
	for _, p := range strings.Split(spec, ",") {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		patch, err := kbuild.ParsePatch(filepath.Base(p), b)
		if err != nil {
			return nil, err
		}
		ps = append(ps, patch)
	}
	return ps, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("kbuild", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var (
		archName  = fset.String("arch", "x86_64", "guest architecture: x86_64 or aarch64")
		source    = fset.String("source", "", "kernel source tarball, e.g. /usr/src/linux-source-7.2.tar.xz")
		fragments = fset.String("fragments", "", "fragment directory or comma-separated files (default: embedded kernel/fragments)")
		patches   = fset.String("patches", "", "source patch directory, comma-separated files in order, or none (default: embedded kernel/patches)")
		cache     = fset.String("cache", "", "cache directory (default $XDG_CACHE_HOME/rules_go_vm/kernels)")
		out       = fset.String("out", "", "also copy the outputs into this directory")
		jobs      = fset.Int("j", 0, "parallel make jobs (0 = number of CPUs)")
		cross     = fset.String("cross-compile", "", "CROSS_COMPILE prefix (default: none for the host arch, else e.g. aarch64-linux-gnu-; \"-\" = none)")
		checkOnly = fset.Bool("check-only", false, "only configure and check the options, do not build")
		tree      = fset.Bool("tree", false, "also save the build tree ("+kbuild.TreeFile+") for incremental builds")
		baseTree  = fset.String("base-tree", "", "build incrementally from this build tree (from --tree); --fragments are the extra options")
		verbose   = fset.Bool("v", false, "stream build output to stderr")
	)
	if err := fset.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fset.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fset.Args())
	}
	var frags []*kconfig.Fragment
	var ps []kbuild.Patch
	var err error
	if *baseTree == "" || *fragments != "" {
		if frags, err = loadFragments(*fragments); err != nil {
			return err
		}
	}
	switch {
	case *baseTree == "":
		if ps, err = loadPatches(*patches); err != nil {
			return err
		}
	case *patches != "" && *patches != "none":
		return fmt.Errorf("%w: --patches with --base-tree: the tree holds its build's patched sources", errUsage)
	}
	if *cache == "" {
		if *cache, err = kbuild.DefaultCacheDir(); err != nil {
			return err
		}
	}
	opts := &kbuild.Options{
		Arch:         arch.Arch(*archName),
		Source:       *source,
		Fragments:    frags,
		Patches:      ps,
		CacheDir:     *cache,
		CrossCompile: *cross,
		Jobs:         *jobs,
		Tree:         *tree,
		BaseTree:     *baseTree,
	}
	if *verbose {
		opts.Log = stderr
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	if *checkOnly {
		if err := kbuild.CheckConfig(ctx, opts); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "configuration ok")
		return nil
	}
	res, err := kbuild.Build(ctx, opts)
	if err != nil {
		return err
	}
	for _, c := range res.Manifest.Conflicts {
		fmt.Fprintln(stderr, "kbuild: warning: fragment conflict:", c)
	}
	state := "built"
	if res.Cached {
		state = "cached"
	}
	fmt.Fprintf(stderr, "kbuild: %s %s kernel %s (%s)\n", state, res.Manifest.Arch, res.Manifest.KernelRelease, res.Manifest.Key[:12])
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		names := append(kbuild.Outputs(opts.Arch), "config", "manifest.json")
		if *tree {
			names = append(names, kbuild.TreeFile)
		}
		for _, name := range names {
			if err := copyFile(res.Path(name), filepath.Join(*out, name)); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(stdout, res.Dir)
	return nil
}

// copyFile copies src to dst atomically (temporary file, then rename).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
