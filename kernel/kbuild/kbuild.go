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
	// Log receives the output of every command; nil discards it (the
	// tail of a failing step's output is in the error either way).
	Log io.Writer
	// KeepWorkDir keeps the temporary build tree (for debugging).
	KeepWorkDir bool
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
	if len(o.Fragments) == 0 {
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

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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
// "Image", "config").
func (r *Result) Path(name string) string { return filepath.Join(r.Dir, name) }

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
	out, err := exec.CommandContext(ctx, o.compiler(), "--version").Output()
	if err != nil {
		return "", KeyInputs{}, fmt.Errorf("compiler %s --version: %w", o.compiler(), err)
	}
	in := KeyInputs{SourceSHA256: sum, Arch: o.Arch, Fragments: o.applicable(), Patches: o.Patches, CompilerVersion: string(out)}
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
	_, err = b.run(kconfig.Merge(o.applicable()...))
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
	if r, ok := Lookup(o.CacheDir, key); ok {
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
	b := &builder{o: o, ctx: ctx, src: filepath.Join(work, "src"), out: filepath.Join(work, "out")}
	merged := kconfig.Merge(in.Fragments...)
	release, err := b.run(merged)
	if err != nil {
		return nil, err
	}

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
	if err := os.Rename(b.out, dst); err != nil {
		// A concurrent build may have installed the same key first.
		if r, ok := Lookup(o.CacheDir, key); ok {
			return r, nil
		}
		return nil, fmt.Errorf("installing into the cache: %w", err)
	}
	return &Result{Dir: dst, Manifest: m}, nil
}

type builder struct {
	o         *Options
	checkOnly bool // stop after the configuration check
	ctx       context.Context
	src       string // extracted source tree
	out       string // files to install
}

// run extracts, patches, configures, checks and builds; it returns the
// kernel release string.
func (b *builder) run(merged *kconfig.Merged) (string, error) {
	o := b.o
	spec := archSpecs[o.Arch]
	for _, d := range []string{b.src, b.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := b.cmd("extract", "", orDefault(o.Tar, "tar"), "-xf", o.Source, "-C", b.src, "--strip-components=1"); err != nil {
		return "", err
	}
	if err := b.applyPatches(); err != nil {
		return "", err
	}
	if err := b.make("tinyconfig"); err != nil {
		return "", err
	}
	if err := b.applyFragment(merged); err != nil {
		return "", err
	}
	if err := b.make("olddefconfig"); err != nil {
		return "", err
	}
	if err := b.check(merged); err != nil {
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
	return strings.TrimSpace(string(rel)), nil
}

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
		return fmt.Errorf("%s kernel from %s: %w", b.o.Arch, filepath.Base(b.o.Source), err)
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
	c := exec.CommandContext(b.ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), reproducibleEnv...)
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
