// Command kbuild builds (or finds in its cache) a guest kernel from a Linux
// source tarball and configuration fragments.
//
// Usage:
//
//	kbuild --arch x86_64|aarch64 --source /usr/src/linux-source-7.2.tar.xz
//	       [--fragments DIR | --fragments a.config,b.config]
//	       [--patches DIR | --patches a.patch,b.patch | --patches none]
//	       [--cache DIR | --scratch-cache] [--out DIR] [-j N]
//	       [--cc PATH | --cross-compile PREFIX] [--make PATH] [--tar PATH]
//	       [--xz PATH] [--patch PATH] [--host-cc PATH] [--flex PATH]
//	       [--bison PATH] [--bc PATH] [--perl PATH]
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
//
// The programs the build runs are flags (what Bazel's kernel build
// toolchain passes): --make, --tar and --patch are run by their path; the
// directories of --cc (the guest arch's gcc: its file name minus "gcc" is
// CROSS_COMPILE), --host-cc, --xz, --flex, --bison, --bc and --perl go in
// front of PATH, where make and tar find them by name (so their file names
// must be those names). A tool flag left out is looked up on PATH; not
// finding it is an error naming the flag. --scratch-cache builds in a
// temporary cache under $TMPDIR, removed at exit (needs --out): nothing is
// written outside --out and $TMPDIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// Sentinel errors.
var (
	// errUsage reports bad command-line usage.
	errUsage = errors.New("usage")
	// errTool reports a build tool that is missing or unusable.
	errTool = errors.New("kernel build tool")
)

// buildTool is a program the kernel build runs, given by a flag.
type buildTool struct {
	// flag is the flag's name.
	flag string
	// name is the program's name: what PATH is searched for without the
	// flag, and, for tools run by name (byName), the file name the flag's
	// path must have.
	name string
	// byName tools are run by make or tar by their name from PATH; the
	// others kbuild runs by their path.
	byName bool
	// why says what the build runs it for.
	why string
}

// buildTools are the tools besides the compiler (--cc), in PATH order.
var buildTools = []buildTool{
	{flag: "make", name: "make", why: "runs the kernel's Makefiles"},
	{flag: "tar", name: "tar", why: "extracts the source tarball"},
	{flag: "xz", name: "xz", byName: true, why: "tar runs it to decompress a .tar.xz"},
	{flag: "patch", name: "patch", why: "applies the source patches (GNU patch)"},
	{flag: "host-cc", name: "gcc", byName: true, why: "HOSTCC: compiles Kconfig and the build's host programs"},
	{flag: "flex", name: "flex", byName: true, why: "generates Kconfig's lexer"},
	{flag: "bison", name: "bison", byName: true, why: "generates Kconfig's parser"},
	{flag: "bc", name: "bc", byName: true, why: "computes kernel/time's timeconst.h"},
	{flag: "perl", name: "perl", byName: true, why: "runs the build's scripts"},
}

// checkTool checks that path (from flag) is an executable file.
func checkTool(flag, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: --%s %s: %w: give the path of an installed program (Bazel: the kernel_build_toolchain's %s)",
			errTool, flag, path, err, strings.ReplaceAll(flag, "-", "_"))
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: --%s %s: not an executable file", errTool, flag, path)
	}
	return nil
}

// resolveTools fills opts' Make, Tar, PatchBin, CrossCompile, Path and
// Tools from the tool flags (flag name -> path; "" = look it up with
// lookPath) and the compiler flag cc.
func resolveTools(opts *kbuild.Options, given map[string]string, cc string, lookPath func(string) (string, error)) error {
	var errs []error
	tools := map[string]string{}
	var dirs []string
	addDir := func(p string) {
		d := filepath.Dir(p)
		for _, have := range dirs {
			if have == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	// The compiler first: its directory is searched first.
	if cc != "" {
		base := filepath.Base(cc)
		switch {
		case opts.CrossCompile != "":
			errs = append(errs, fmt.Errorf("%w: --cc and --cross-compile: --cc's file name gives CROSS_COMPILE; give one", errUsage))
		case !strings.HasSuffix(base, "gcc"):
			errs = append(errs, fmt.Errorf("%w: --cc %s: the file name must end in gcc (\"gcc\", \"aarch64-linux-gnu-gcc\"): "+
				"the kernel's Makefile runs $(CROSS_COMPILE)gcc and binutils as $(CROSS_COMPILE)ld, ... from the same directory", errTool, cc))
		default:
			if err := checkTool("cc", cc); err != nil {
				errs = append(errs, err)
			} else {
				opts.CrossCompile = strings.TrimSuffix(base, "gcc")
				if opts.CrossCompile == "" {
					opts.CrossCompile = "-" // none
				}
				tools["cc"] = cc
				addDir(cc)
			}
		}
	} else {
		// The default compiler for the arch, by name from PATH.
		name := kbuild.CompilerName(opts)
		if p, err := lookPath(name); err != nil {
			errs = append(errs, fmt.Errorf("%w: no %s on PATH for an %s kernel: pass --cc /path/to/%s (Bazel: the kernel_build_toolchain's cc[%q])",
				errTool, name, opts.Arch, name, opts.Arch))
		} else {
			tools["cc"] = p
		}
	}
	for _, t := range buildTools {
		p := given[t.flag]
		if p == "" {
			found, err := lookPath(t.name)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: no %s on PATH (it %s): pass --%s /path/to/%s (Bazel: the kernel_build_toolchain's %s)",
					errTool, t.name, t.why, t.flag, t.name, strings.ReplaceAll(t.flag, "-", "_")))
				continue
			}
			tools[t.flag] = found
			continue
		}
		if err := checkTool(t.flag, p); err != nil {
			errs = append(errs, err)
			continue
		}
		if t.byName && filepath.Base(p) != t.name {
			errs = append(errs, fmt.Errorf("%w: --%s %s: the build runs it as %q from PATH (it %s): give a path whose file name is %s (a symlink will do)",
				errTool, t.flag, p, t.name, t.why, t.name))
			continue
		}
		tools[t.flag] = p
		switch t.flag {
		case "make":
			opts.Make = p
		case "tar":
			opts.Tar = p
		case "patch":
			opts.PatchBin = p
		}
		addDir(p)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	opts.Path, opts.Tools = dirs, tools
	return nil
}

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
		scratch   = fset.Bool("scratch-cache", false, "no cache: build in a temporary directory under $TMPDIR, removed at exit (needs --out)")
		cc        = fset.String("cc", "", "the guest arch's C compiler, e.g. /usr/bin/aarch64-linux-gnu-gcc; its file name minus \"gcc\" is CROSS_COMPILE, its directory goes first in PATH (default: by name from PATH)")
		out       = fset.String("out", "", "also copy the outputs into this directory")
		jobs      = fset.Int("j", 0, "parallel make jobs (0 = number of CPUs)")
		cross     = fset.String("cross-compile", "", "CROSS_COMPILE prefix (default: none for the host arch, else e.g. aarch64-linux-gnu-; \"-\" = none)")
		checkOnly = fset.Bool("check-only", false, "only configure and check the options, do not build")
		tree      = fset.Bool("tree", false, "also save the build tree ("+kbuild.TreeFile+") for incremental builds")
		baseTree  = fset.String("base-tree", "", "build incrementally from this build tree (from --tree); --fragments are the extra options")
		verbose   = fset.Bool("v", false, "stream build output to stderr")
	)
	given := map[string]string{}
	for _, t := range buildTools {
		fset.Func(t.flag, fmt.Sprintf("path of %s (it %s; default: from PATH)", t.name, t.why), func(s string) error {
			if s == "" {
				return errors.New("empty path")
			}
			given[t.flag] = s
			return nil
		})
	}
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
	switch {
	case *scratch && *cache != "":
		return fmt.Errorf("%w: --scratch-cache and --cache: give one", errUsage)
	case *scratch && *out == "":
		return fmt.Errorf("%w: --scratch-cache without --out: the scratch cache is removed at exit, so the kernel would be lost; give --out DIR", errUsage)
	case *scratch:
		dir, err := os.MkdirTemp("", "kbuild-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*cache = dir
	case *cache == "":
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
	if err := resolveTools(opts, given, *cc, exec.LookPath); err != nil {
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
