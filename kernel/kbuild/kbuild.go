// Package kbuild builds guest kernels from a Linux source tarball and
// configuration fragments, and caches them.
//
// A build extracts the tarball into a temporary directory, applies the
// patches (Options.Patches, in order, with `patch -p1`), runs `make
// tinyconfig`, appends the merged fragments (kernel/kconfig), runs `make
// olddefconfig`, checks that every requested option survived, builds the
// arch's images and installs them, the final .config and a manifest.json
// into CacheDir/<key>/ with one rename, so a cache entry is either complete
// or absent. The key is the SHA-256 of the source tarball, the patches and
// the fragments that apply to the arch (names and contents, in order), the
// arch and the compiler's `--version` output: a cache hit does no build at
// all.
//
// With Options.Tree the entry also keeps the build tree (TreeFile: what the
// build added to or changed in the extracted tarball, see tree.go); an
// entry without it is then a miss. With Options.BaseTree a build starts
// from such a tree instead of tinyconfig: it extracts the tarball and the
// tree, appends the fragments (the extra ones) to the tree's .config, runs
// olddefconfig, checks the base's requested options and the extras, and
// runs make, which rebuilds only what the new options touch. Its key is the
// tree's SHA-256, the extra fragments, the source, the arch and the
// compiler.
//
// Nothing here depends on a kernel version: the tarball and the compiler are
// inputs (Debian's linux-source-X.Y.tar.xz, host or cross gcc).
package kbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

// archSpec is how to build one arch: data, not code.
type archSpec struct {
	// kernelArch is the kernel's ARCH= value.
	kernelArch string
	// crossPrefix is the default CROSS_COMPILE when building on another arch.
	crossPrefix string
	// outputs maps output names to their path in the build tree; the
	// make targets are the output names.
	outputs map[string]string
}

var archSpecs = map[arch.Arch]archSpec{
	arch.X86_64: {
		kernelArch:  "x86_64",
		crossPrefix: "x86_64-linux-gnu-",
		outputs:     map[string]string{"vmlinux": "vmlinux", "bzImage": "arch/x86/boot/bzImage"},
	},
	arch.AArch64: {
		kernelArch:  "arm64",
		crossPrefix: "aarch64-linux-gnu-",
		outputs:     map[string]string{"Image": "arch/arm64/boot/Image"},
	},
}

// Arches returns the supported architectures.
func Arches() []arch.Arch { return arch.All() }

// Outputs returns the names of the files a build of arch produces, besides
// "config" and "manifest.json".
func Outputs(a arch.Arch) []string {
	var names []string
	for n := range archSpecs[a].outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Sentinel errors.
var (
	// ErrInvalidOptions reports an Options that failed Validate.
	ErrInvalidOptions = errors.New("invalid kernel build options")
	// ErrBuild reports a failing build step; the error includes the tail
	// of its log.
	ErrBuild = errors.New("kernel build failed")
)

// Options configures Build.
type Options struct {
	// Arch is the guest architecture.
	Arch arch.Arch
	// Source is a kernel source tarball, e.g.
	// /usr/src/linux-source-7.2.tar.xz (one top-level directory).
	Source string
	// Fragments are the configuration fragments, in merge order; those
	// whose "# arch:" directive excludes Arch are skipped.
	Fragments []*kconfig.Fragment
	// Patches are applied to the source tree, in order, before it is
	// configured (see LoadPatches); none is fine.
	Patches []Patch
	// CacheDir holds one directory per cache key.
	CacheDir string
	// CrossCompile is the CROSS_COMPILE prefix; empty means none when
	// building for the host's arch and the arch's GNU triplet
	// ("aarch64-linux-gnu-") otherwise. Set it to "-" to force none.
	CrossCompile string
	// Jobs is make's -j; 0 means runtime.NumCPU().
	Jobs int
	// Make is the make binary; empty means "make" from PATH.
	Make string
	// Tar is the tar binary; empty means "tar" from PATH.
	Tar string
	// PatchBin is the patch binary (GNU patch); empty means "patch" from
	// PATH.
	PatchBin string
	// Path are directories searched before $PATH for every program the
	// build runs by name: the compiler (and its --version for the key),
	// and what make and tar run (HOSTCC gcc, binutils, flex, bison, bc,
	// perl, xz, the shell utilities). kbuild's --cc, --flex, ... put the
	// declared tools' directories here.
	Path []string
	// Tools names the programs the build runs (e.g. "make" ->
	// "/usr/bin/make"), recorded with their versions in the manifest; it
	// does not change what runs (Make, Tar, PatchBin and Path do) nor the
	// cache key.
	Tools map[string]string
	// Log receives the output of every command; nil discards it (the
	// tail of a failing step's output is in the error either way).
	Log io.Writer
	// KeepWorkDir keeps the temporary build tree (for debugging).
	KeepWorkDir bool
	// Tree also saves the build tree (TreeFile) in the cache entry, for
	// later builds' BaseTree; an entry without one is then a miss.
	Tree bool
	// BaseTree is a build tree (a TreeFile of an earlier build of the same
	// Source and Arch) to build incrementally from: Fragments are then the
	// extra options (none is fine), applied over the tree's configuration,
	// and Patches must be empty (the tree has its patched sources).
	BaseTree string
}

// Validate checks the options without running anything.
func (o *Options) Validate() error {
	var errs []error
	if _, ok := archSpecs[o.Arch]; !ok {
		errs = append(errs, fmt.Errorf("arch %q: want one of %v", o.Arch, Arches()))
	}
	if o.Source == "" {
		errs = append(errs, errors.New("no source tarball"))
	} else if fi, err := os.Stat(o.Source); err != nil {
		errs = append(errs, fmt.Errorf("source: %w", err))
	} else if !fi.Mode().IsRegular() {
		errs = append(errs, fmt.Errorf("source %s: not a regular file (want a linux-source tarball)", o.Source))
	}
	if o.BaseTree != "" {
		if fi, err := os.Stat(o.BaseTree); err != nil {
			errs = append(errs, fmt.Errorf("base tree: %w", err))
		} else if !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("base tree %s: not a regular file (want a %s from kbuild --tree)", o.BaseTree, TreeFile))
		}
		if len(o.Patches) > 0 {
			errs = append(errs, errors.New("patches with a base tree: the tree holds its build's patched sources; give none"))
		}
	} else if len(o.Fragments) == 0 {
		errs = append(errs, errors.New("no configuration fragments"))
	} else if _, ok := archSpecs[o.Arch]; ok && len(o.applicable()) == 0 {
		errs = append(errs, fmt.Errorf("no fragment applies to arch %s", o.Arch))
	}
	seen := map[string]bool{}
	for _, p := range o.Patches {
		if _, err := ParsePatch(p.Name, p.Content); err != nil {
			errs = append(errs, err)
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("patch %s given twice", p.Name))
		}
		seen[p.Name] = true
	}
	if o.CacheDir == "" {
		errs = append(errs, errors.New("no cache directory"))
	}
	if o.Jobs < 0 {
		errs = append(errs, fmt.Errorf("jobs %d < 0", o.Jobs))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}

func (o *Options) applicable() []*kconfig.Fragment {
	var fs []*kconfig.Fragment
	for _, f := range o.Fragments {
		if f.AppliesTo(string(o.Arch)) {
			fs = append(fs, f)
		}
	}
	return fs
}

func (o *Options) crossCompile() string {
	switch o.CrossCompile {
	case "-":
		return ""
	case "":
		if o.Arch.GOARCH() == runtime.GOARCH { // native
			return ""
		}
		return archSpecs[o.Arch].crossPrefix
	}
	return o.CrossCompile
}

func (o *Options) compiler() string { return o.crossCompile() + "gcc" }

// CompilerName is the C compiler a build of o runs: CROSS_COMPILE + "gcc".
func CompilerName(o *Options) string { return o.compiler() }

// environ is the environment of every command: the process's, with Path
// in front of PATH and reproducibleEnv.
func (o *Options) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "PATH="+o.searchPath()), reproducibleEnv...)
}

// searchPath is Path followed by $PATH.
func (o *Options) searchPath() string {
	dirs := append([]string(nil), o.Path...)
	if p := os.Getenv("PATH"); p != "" {
		dirs = append(dirs, p)
	}
	return strings.Join(dirs, string(filepath.ListSeparator))
}

// lookPath finds a program as the build's commands do: a name without a
// slash in searchPath, else the path itself.
func (o *Options) lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(o.searchPath()) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in %s", name, exec.ErrNotFound, o.searchPath())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// toolVersions describes Options.Tools for the manifest: each path with the
// first line of its --version (or why there is none).
func (o *Options) toolVersions(ctx context.Context) map[string]string {
	if len(o.Tools) == 0 {
		return nil
	}
	m := map[string]string{}
	for name, path := range o.Tools {
		c := exec.CommandContext(ctx, path, "--version")
		c.Env = o.environ()
		out, err := c.Output()
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if err != nil && first == "" {
			first = "no version: " + err.Error()
		}
		m[name] = path + ": " + first
	}
	return m
}

// KeyInputs are the inputs of a cache key.
type KeyInputs struct {
	// SourceSHA256 is the hex SHA-256 of the source tarball.
	SourceSHA256 string
	// Arch is the guest architecture.
	Arch arch.Arch
	// Fragments are the applicable fragments, in merge order.
	Fragments []*kconfig.Fragment
	// Patches are the source patches, in order.
	Patches []Patch
	// CompilerVersion is the compiler's `--version` output.
	CompilerVersion string
	// BaseTreeSHA256 is the hex SHA-256 of Options.BaseTree, or "".
	BaseTreeSHA256 string
}

// keyVersion changes when the build procedure changes incompatibly.
const keyVersion = "rules_go_vm kbuild 1"

// Key returns the hex SHA-256 cache key of in. Every field, each
// fragment's and patch's name and content, and their order count. Without
// patches the key is what it was before patches existed.
func Key(in KeyInputs) string {
	h := sha256.New()
	field := func(name, v string) {
		fmt.Fprintf(h, "%s %d\n%s\n", name, len(v), v)
	}
	field("version", keyVersion)
	field("source", in.SourceSHA256)
	field("arch", string(in.Arch))
	field("compiler", in.CompilerVersion)
	for _, f := range in.Fragments {
		field("fragment", f.Name)
		field("content", string(f.Content))
	}
	for _, p := range in.Patches {
		field("patch", p.Name)
		field("content", string(p.Content))
	}
	if in.BaseTreeSHA256 != "" {
		field("base-tree", in.BaseTreeSHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Manifest describes a cache entry; it is stored as manifest.json.
type Manifest struct {
	Key             string            `json:"key"`
	Arch            arch.Arch         `json:"arch"`
	Source          string            `json:"source"`
	SourceSHA256    string            `json:"source_sha256"`
	Fragments       []string          `json:"fragments"`
	Patches         []string          `json:"patches,omitempty"`
	CompilerVersion string            `json:"compiler_version"`
	CrossCompile    string            `json:"cross_compile"`
	KernelRelease   string            `json:"kernel_release"`
	Files           map[string]string `json:"files"` // output name -> file name in the entry
	BuildSeconds    float64           `json:"build_seconds"`
	Conflicts       []string          `json:"conflicts,omitempty"`
	// BaseKey and BaseTreeSHA256 name the base build of an incremental
	// build (Options.BaseTree).
	BaseKey        string `json:"base_key,omitempty"`
	BaseTreeSHA256 string `json:"base_tree_sha256,omitempty"`
	// Tree describes the saved build tree (Options.Tree).
	Tree *TreeInfo `json:"tree,omitempty"`
	// Tools are Options.Tools with the first line of each one's
	// --version ("/usr/bin/make: GNU Make 4.4.1"): what built the entry.
	Tools map[string]string `json:"tools,omitempty"`
}

// TreeInfo describes a saved build tree.
type TreeInfo struct {
	Files int `json:"files"`
	// Bytes is the files' total size, Compressed the archive's.
	Bytes      int64   `json:"bytes"`
	Compressed int64   `json:"compressed"`
	Seconds    float64 `json:"seconds"`
}

// Result is a built or cached kernel.
type Result struct {
	// Dir is the cache entry directory.
	Dir string
	// Cached is true when no build was needed.
	Cached bool
	// Manifest is the entry's manifest.
	Manifest Manifest
}

// Path returns the absolute path of output name ("vmlinux", "bzImage",
// "Image", "config", TreeFile).
func (r *Result) Path(name string) string { return filepath.Join(r.Dir, name) }

// HasTree reports whether the entry keeps its build tree.
func (r *Result) HasTree() bool {
	if r.Manifest.Files["tree"] != TreeFile {
		return false
	}
	fi, err := os.Stat(r.Path(TreeFile))
	return err == nil && fi.Mode().IsRegular()
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ResolveKey computes the cache key of o: it hashes the tarball and runs
// the compiler's --version.
func ResolveKey(ctx context.Context, o *Options) (string, KeyInputs, error) {
	sum, err := sha256File(o.Source)
	if err != nil {
		return "", KeyInputs{}, fmt.Errorf("hashing source: %w", err)
	}
	cc, err := o.lookPath(o.compiler())
	if err != nil {
		return "", KeyInputs{}, fmt.Errorf("compiler: %w", err)
	}
	// gcc's --version names the program by its base name (as make runs
	// it), so the key does not depend on the directory it is in.
	c := exec.CommandContext(ctx, cc, "--version")
	c.Env = o.environ()
	out, err := c.Output()
	if err != nil {
		return "", KeyInputs{}, fmt.Errorf("compiler %s --version: %w", o.compiler(), err)
	}
	in := KeyInputs{SourceSHA256: sum, Arch: o.Arch, Fragments: o.applicable(), Patches: o.Patches, CompilerVersion: string(out)}
	if o.BaseTree != "" {
		if in.BaseTreeSHA256, err = sha256File(o.BaseTree); err != nil {
			return "", KeyInputs{}, fmt.Errorf("hashing the base tree: %w", err)
		}
	}
	return Key(in), in, nil
}

// Lookup returns the cache entry for key, if complete.
func Lookup(cacheDir, key string) (*Result, bool) {
	dir := filepath.Join(cacheDir, key)
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, false
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Key != key {
		return nil, false
	}
	return &Result{Dir: dir, Cached: true, Manifest: m}, true
}

// DefaultCacheDir returns $XDG_CACHE_HOME/rules_go_vm/kernels (or the
// platform's user cache directory).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "rules_go_vm", "kernels"), nil
}

// CheckConfig configures the kernel for o (tinyconfig, fragments,
// olddefconfig) and checks every requested option, without building or
// touching the cache entries: a fast way (about a minute, mostly
// extraction) to iterate on fragments. The error wraps
// kconfig.ErrNotSatisfied when an option did not survive.
func CheckConfig(ctx context.Context, o *Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.CacheDir, ".check-")
	if err != nil {
		return err
	}
	if !o.KeepWorkDir {
		defer os.RemoveAll(work)
	}
	b := &builder{o: o, ctx: ctx, checkOnly: true, src: filepath.Join(work, "src"), out: filepath.Join(work, "out")}
	if o.BaseTree != "" {
		if b.in.SourceSHA256, err = sha256File(o.Source); err != nil {
			return fmt.Errorf("hashing source: %w", err)
		}
	}
	_, err = b.run()
	return err
}

// Build returns the cached kernel for o, building it first on a miss.
func Build(ctx context.Context, o *Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	key, in, err := ResolveKey(ctx, o)
	if err != nil {
		return nil, err
	}
	if r, ok := Lookup(o.CacheDir, key); ok && (!o.Tree || r.HasTree()) {
		return r, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	work, err := os.MkdirTemp(o.CacheDir, ".build-"+key[:12]+"-")
	if err != nil {
		return nil, err
	}
	if !o.KeepWorkDir {
		defer os.RemoveAll(work)
	}
	b := &builder{o: o, ctx: ctx, key: key, in: in, src: filepath.Join(work, "src"), out: filepath.Join(work, "out")}
	release, err := b.run()
	if err != nil {
		return nil, err
	}
	merged := b.merged

	m := Manifest{
		Key:             key,
		Arch:            o.Arch,
		Source:          o.Source,
		SourceSHA256:    in.SourceSHA256,
		CompilerVersion: strings.TrimSpace(in.CompilerVersion),
		CrossCompile:    o.crossCompile(),
		KernelRelease:   release,
		Files:           map[string]string{"config": "config", "fragment": "fragment.config"},
		BuildSeconds:    time.Since(start).Round(time.Second).Seconds(),
		Tree:            b.tree,
		Tools:           o.toolVersions(ctx),
	}
	if b.base != nil {
		m.BaseKey, m.BaseTreeSHA256 = b.base.Key, in.BaseTreeSHA256
	}
	if b.tree != nil {
		m.Files["tree"] = TreeFile
	}
	for _, f := range in.Fragments {
		m.Fragments = append(m.Fragments, f.Name)
	}
	for _, p := range in.Patches {
		m.Patches = append(m.Patches, p.Name)
	}
	for _, c := range merged.Conflicts {
		m.Conflicts = append(m.Conflicts, c.String())
	}
	for name := range archSpecs[o.Arch].outputs {
		m.Files[name] = name
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.out, "manifest.json"), append(mb, '\n'), 0o644); err != nil {
		return nil, err
	}
	dst := filepath.Join(o.CacheDir, key)
	if err := install(b.out, dst, work, o.Tree); err != nil {
		// A concurrent build may have installed the same key first.
		if r, ok := Lookup(o.CacheDir, key); ok && (!o.Tree || r.HasTree()) {
			return r, nil
		}
		return nil, fmt.Errorf("installing into the cache: %w", err)
	}
	return &Result{Dir: dst, Manifest: m}, nil
}

// install renames the finished entry src to dst. An existing dst (an entry
// without the build tree this build was asked for) is first moved into
// work, which the caller removes.
func install(src, dst, work string, replace bool) error {
	err := os.Rename(src, dst)
	if err == nil || !replace {
		return err
	}
	if _, statErr := os.Stat(dst); statErr != nil {
		return err
	}
	if err := os.Rename(dst, filepath.Join(work, "replaced")); err != nil {
		return err
	}
	return os.Rename(src, dst)
}

type builder struct {
	o         *Options
	checkOnly bool // stop after the configuration check
	ctx       context.Context
	key       string    // the build's cache key (recorded in its tree)
	in        KeyInputs // what the key was made of
	src       string    // extracted source tree
	out       string    // files to install

	base      *TreeMeta            // the base tree's record (BaseTree builds)
	checked   []*kconfig.Fragment  // every fragment the configuration is checked against
	merged    *kconfig.Merged      // their merge
	tree      *TreeInfo            // the saved tree (Options.Tree)
	extracted map[string]fileState // the tarball's files, for the tree
}

// run extracts, patches (or extracts the base tree), configures, checks and
// builds; it returns the kernel release string.
func (b *builder) run() (string, error) {
	o := b.o
	spec := archSpecs[o.Arch]
	for _, d := range []string{b.src, b.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	// The directory as the kernel's Makefile sees it (realpath): what a
	// tree records and relocates.
	if abs, err := filepath.Abs(b.src); err != nil {
		return "", err
	} else if b.src, err = filepath.EvalSymlinks(abs); err != nil {
		return "", err
	}
	if o.BaseTree != "" {
		meta, err := readTreeMeta(o.BaseTree)
		if err != nil {
			return "", err
		}
		if err := b.checkBase(meta); err != nil {
			return "", err
		}
		baseFrags, err := meta.parseFragments()
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrBaseTree, o.BaseTree, err)
		}
		b.base = meta
		b.checked = append(baseFrags, o.applicable()...)
	} else {
		b.checked = o.applicable()
	}
	b.merged = kconfig.Merge(b.checked...)
	if err := b.cmd("extract", "", orDefault(o.Tar, "tar"), "-xf", o.Source, "-C", b.src, "--strip-components=1"); err != nil {
		return "", err
	}
	if o.Tree {
		var err error
		if b.extracted, err = snapshot(b.src); err != nil {
			return "", err
		}
	}
	if b.base != nil {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "kbuild: extract base tree %s\n", o.BaseTree)
		}
		if err := extractTree(o.BaseTree, b.src, b.base); err != nil {
			return "", err
		}
	} else {
		if err := b.applyPatches(); err != nil {
			return "", err
		}
		if err := b.make("tinyconfig"); err != nil {
			return "", err
		}
	}
	if err := b.applyFragment(b.merged); err != nil {
		return "", err
	}
	if err := b.make("olddefconfig"); err != nil {
		return "", err
	}
	if err := b.check(b.merged); err != nil {
		return "", err
	}
	if b.checkOnly {
		return "", nil
	}
	jobs := o.Jobs
	if jobs == 0 {
		jobs = runtime.NumCPU()
	}
	targets := []string{"-j" + strconv.Itoa(jobs)}
	targets = append(targets, Outputs(o.Arch)...)
	if err := b.make(targets...); err != nil {
		return "", err
	}
	for name, rel := range spec.outputs {
		if err := copyFile(filepath.Join(b.src, rel), filepath.Join(b.out, name)); err != nil {
			return "", err
		}
	}
	if err := copyFile(filepath.Join(b.src, ".config"), filepath.Join(b.out, "config")); err != nil {
		return "", err
	}
	rel, err := os.ReadFile(filepath.Join(b.src, "include/config/kernel.release"))
	if err != nil {
		return "", fmt.Errorf("reading the kernel release: %w", err)
	}
	if o.Tree {
		if err := b.saveTree(); err != nil {
			return "", err
		}
	}
	return strings.TrimSpace(string(rel)), nil
}

// checkBase checks that the base tree was built for this arch and source.
func (b *builder) checkBase(meta *TreeMeta) error {
	o := b.o
	if meta.Arch != o.Arch {
		return fmt.Errorf("%w: %s is a build tree of an %s kernel, not %s", ErrBaseTree, o.BaseTree, meta.Arch, o.Arch)
	}
	if meta.SourceSHA256 != b.in.SourceSHA256 {
		return fmt.Errorf("%w: %s was built from source sha256 %s, not %s (%s): give the base's own source tarball",
			ErrBaseTree, o.BaseTree, meta.SourceSHA256, b.in.SourceSHA256, o.Source)
	}
	return nil
}

// saveTree writes the build tree into the entry.
func (b *builder) saveTree() error {
	meta := &TreeMeta{Key: b.key, Arch: b.o.Arch, SourceSHA256: b.in.SourceSHA256, Dir: b.src}
	for _, f := range b.checked {
		meta.Fragments = append(meta.Fragments, TreeFragment{Name: f.Name, Content: string(f.Content)})
	}
	if b.base != nil {
		meta.Patches = b.base.Patches
	}
	for _, p := range b.o.Patches {
		meta.Patches = append(meta.Patches, p.Name)
	}
	st, err := writeTree(b.src, b.extracted, filepath.Join(b.out, TreeFile), meta)
	if err != nil {
		return fmt.Errorf("saving the build tree: %w", err)
	}
	b.tree = &TreeInfo{Files: st.Files, Bytes: st.Bytes, Compressed: st.Written, Seconds: roundTenth(st.Seconds)}
	if b.o.Log != nil {
		fmt.Fprintf(b.o.Log, "kbuild: build tree: %d files, %d MB -> %d MB in %.1f s\n", st.Files, st.Bytes>>20, st.Written>>20, st.Seconds)
	}
	return nil
}

func roundTenth(s float64) float64 { return float64(int64(s*10+0.5)) / 10 }

// applyFragment appends the merged fragment to the tinyconfig .config
// (later lines win in Kconfig) and keeps a copy next to it.
func (b *builder) applyFragment(merged *kconfig.Merged) error {
	var frag bytes.Buffer
	if _, err := merged.WriteTo(&frag); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.out, "fragment.config"), frag.Bytes(), 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(b.src, ".config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("tinyconfig left no .config: %w", err)
	}
	if _, err := f.Write(append([]byte("\n"), frag.Bytes()...)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *builder) check(merged *kconfig.Merged) error {
	f, err := os.Open(filepath.Join(b.src, ".config"))
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := kconfig.ParseConfig(".config", f)
	if err != nil {
		return err
	}
	if err := kconfig.Check(merged.Options, cfg); err != nil {
		return fmt.Errorf("%s kernel from %s: %w\n(an option of another arch is absent from an %s .config: give it in a fragment file with an \"# arch: ARCH\" line naming its arch)",
			b.o.Arch, filepath.Base(b.o.Source), err, b.o.Arch)
	}
	return nil
}

func (b *builder) make(args ...string) error {
	o := b.o
	full := []string{"ARCH=" + archSpecs[o.Arch].kernelArch}
	if cc := o.crossCompile(); cc != "" {
		full = append(full, "CROSS_COMPILE="+cc)
	}
	full = append(full, args...)
	return b.cmd("make "+strings.Join(args, " "), b.src, orDefault(o.Make, "make"), full...)
}

// reproducibleEnv pins what the kernel embeds about the build host.
var reproducibleEnv = []string{
	"KBUILD_BUILD_TIMESTAMP=1970-01-01",
	"KBUILD_BUILD_USER=rules_go_vm",
	"KBUILD_BUILD_HOST=rules_go_vm",
	"KBUILD_BUILD_VERSION=1",
	"LC_ALL=C",
}

// cmd runs one step; on failure the error carries the last lines of output.
func (b *builder) cmd(step, dir, name string, args ...string) error {
	tail := &tailBuffer{max: 4096}
	var w io.Writer = tail
	if b.o.Log != nil {
		w = io.MultiWriter(tail, b.o.Log)
		fmt.Fprintf(b.o.Log, "kbuild: %s\n", step)
	}
	path, err := b.o.lookPath(name)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBuild, step, err)
	}
	c := exec.CommandContext(b.ctx, path, args...)
	c.Dir = dir
	c.Env = b.o.environ()
	c.Stdout, c.Stderr = w, w
	// Cancelling kills make and every compiler it started.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	if err := c.Run(); err != nil {
		return fmt.Errorf("%w: %s (%s %s): %w\n%s", ErrBuild, step, name, strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
