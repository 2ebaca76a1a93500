// Command rootctl is the testable half of tools/setup: it finds the Debian
// mirror, plans pinned package installs, prepares the pinned Bazel modules
// and their local registry, and removes a toolchain root safely (by its real
// path, under tools/enter's mount lock, unmounting first, refusing while
// anything is still mounted inside it, and never deleting across a mount:
// see toolroot.Remover).
//
//	rootctl mirror
//	rootctl deb-plan -pins tools/pins [-kind deb|sysroot] < madison.txt
//	rootctl modules -pins tools/pins -root ROOT -dir /opt/rules_go_vm
//	rootctl mounts ROOT     # the mount points at or below ROOT's real path
//	rootctl remove ROOT
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/tools/toolroot"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rootctl:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: rootctl mirror|deb-plan|modules|mounts|remove ...")
	}
	switch args[0] {
	case "mirror":
		srcs, err := toolroot.ReadAptSources("/etc/apt")
		if err != nil {
			return err
		}
		m, err := toolroot.DebianMirror(srcs)
		if err != nil {
			return fmt.Errorf("%w; add a Debian archive to /etc/apt/sources.list or pass MIRROR=<uri> to tools/setup", err)
		}
		fmt.Println(m)
		return nil
	case "deb-plan":
		return debPlan(args[1:])
	case "modules":
		return modules(args[1:])
	case "mounts":
		if len(args) != 2 {
			return errors.New("usage: rootctl mounts ROOT")
		}
		return mounts(args[1])
	case "remove":
		if len(args) != 2 {
			return errors.New("usage: rootctl remove ROOT")
		}
		r := toolroot.Remover{Unmount: unmount}
		return r.Remove(args[1])
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// mounts prints the mount points at or below dir. The mount table lists real
// paths, so dir is resolved first (a symlinked $RULES_GO_VM_STATE would
// otherwise show none); a dir that does not exist has none.
func mounts(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolving %s: %w", dir, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	table, err := toolroot.MountTable(toolroot.MountInfoPath)
	if err != nil {
		return err
	}
	for _, m := range toolroot.Under(table, real) {
		fmt.Println(m.Point)
	}
	return nil
}

// unmount detaches one mount point, lazily when it is busy.
func unmount(point string) error {
	err := unix.Unmount(point, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(point, unix.MNT_DETACH)
	}
	if errors.Is(err, unix.EINVAL) { // already gone (stacked mounts)
		return nil
	}
	return err
}

// debPlan reads `apt-cache madison` output on stdin and prints NAME=VERSION
// for every deb pin, saying loudly on stderr where a pin was missed.
func debPlan(args []string) error {
	fs := flag.NewFlagSet("deb-plan", flag.ContinueOnError)
	pinsPath := fs.String("pins", "tools/pins", "the pins file")
	kind := fs.String("kind", string(toolroot.PinDeb), "the pins to plan: deb (installed) or sysroot (unpacked)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if k := toolroot.PinKind(*kind); k != toolroot.PinDeb && k != toolroot.PinSysroot {
		return fmt.Errorf("deb-plan: -kind %q: want deb or sysroot", *kind)
	}
	pins, err := toolroot.ReadPins(*pinsPath)
	if err != nil {
		return err
	}
	offered := toolroot.ParseMadison(os.Stdin)
	var missed []string
	for _, p := range pins.OfKind(toolroot.PinKind(*kind)) {
		vs := offered[p.AptName()]
		cand := ""
		if len(vs) > 0 {
			cand = vs[len(vs)-1]
		}
		c, err := toolroot.ChooseDeb(p, vs, cand)
		if err != nil {
			return err
		}
		if c.Missed {
			missed = append(missed, fmt.Sprintf("%s: pinned %s, installing %s", p.AptName(), p.Version, c.Install))
		}
		fmt.Printf("%s=%s\n", p.AptName(), c.Install)
	}
	if len(missed) > 0 {
		fmt.Fprintf(os.Stderr, "\n!!! PIN FALLBACK: Debian testing no longer offers %d pinned version(s):\n", len(missed))
		for _, m := range missed {
			fmt.Fprintln(os.Stderr, "!!!   "+m)
		}
		fmt.Fprintln(os.Stderr, "!!! Installing the current versions instead. If the build then works, update tools/pins.")
	}
	return nil
}

// modules prepares every gomod pin and writes the local registry.
func modules(args []string) error {
	fs := flag.NewFlagSet("modules", flag.ContinueOnError)
	pinsPath := fs.String("pins", "tools/pins", "the pins file")
	root := fs.String("root", "/", "the toolchain root the registry is used in")
	dir := fs.String("dir", "/opt/rules_go_vm", "where modules and registry go, as seen inside the root")
	goBin := fs.String("go", "go", "the go tool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pins, err := toolroot.ReadPins(*pinsPath)
	if err != nil {
		return err
	}
	goTool, err := exec.LookPath(*goBin)
	if err != nil {
		return err
	}
	opts := toolroot.PrepareOptions{
		Download: toolroot.GoDownload(goTool),
		DestRoot: filepath.Join(*root, *dir, "modules"),
	}
	var mods []toolroot.RegistryModule
	for _, p := range pins.OfKind(toolroot.PinGoMod) {
		o := opts
		if p.Module == "gazelle" {
			// gazelle builds its repository tools in GOPATH mode inside a
			// repository rule, which needs its dependencies under vendor/.
			o.Vendor = func(dir string) error {
				cmd := exec.Command(goTool, "mod", "vendor", "-e")
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
				}
				return nil
			}
		}
		pm, err := toolroot.PrepareModule(p, o)
		if err != nil {
			return err
		}
		mf, err := os.ReadFile(filepath.Join(pm.Dir, "MODULE.bazel"))
		if err != nil {
			return err
		}
		mods = append(mods, toolroot.RegistryModule{
			Name: p.Module, Version: toolroot.BazelVersion(p.Version), ModuleFile: mf,
			Path: filepath.Join("/", strings.TrimPrefix(pm.Dir, filepath.Clean(*root))),
		})
		fmt.Printf("module %s %s (%s@%s, sum ok)\n", p.Module, toolroot.BazelVersion(p.Version), p.Name, p.Version)
	}
	extra, err := toolroot.DiscoveryOnly(mods)
	if err != nil {
		return err
	}
	for _, m := range extra {
		fmt.Printf("module %s %s (discovery only)\n", m.Name, m.Version)
	}
	return toolroot.WriteRegistry(filepath.Join(*root, *dir, "registry"), append(mods, extra...))
}
