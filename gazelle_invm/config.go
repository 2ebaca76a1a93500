package gazelle_invm

import (
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bazelbuild/bazel-gazelle/config"
	"github.com/bazelbuild/bazel-gazelle/rule"
	bzl "github.com/bazelbuild/buildtools/build"
)

// Directives in BUILD files (`# gazelle:NAME VALUE`). Each applies to the
// directory of the BUILD file and to its subdirectories until one of them
// sets it again; an empty value goes back to the default.
const (
	// InvmDirective turns the extension "on" (default) or "off" below a
	// directory. When off, test files stay in the host go_test and existing
	// go_vm_test rules are left alone.
	InvmDirective = "invm"
	// KernelDirective is the default `kernel` label of generated go_vm_test
	// rules (default: the VM toolchain's kernel).
	KernelDirective = "invm_kernel"
	// MemoryDirective is the default guest `memory`, e.g. "512M".
	MemoryDirective = "invm_memory"
	// CPUsDirective is the default guest `cpus` (1 to 64).
	CPUsDirective = "invm_cpus"
	// ArchDirective is the default list of guest architectures a test may run
	// on, e.g. "x86_64" (default: all, x86_64,aarch64).
	ArchDirective = "invm_arch"
	// MirrorDirective, "on", also runs every test file of the package's host
	// go_test in a guest (a go_vm_test with the same srcs), for packages whose
	// tests pass in both places and do not import invm. Default "off".
	MirrorDirective = "invm_mirror"
)

// invmConfig is the configuration of one directory.
type invmConfig struct {
	enabled bool
	mirror  bool
	// defaults holds the directory defaults, by directive name (memory, cpus,
	// kernel, arch), with the BUILD file position they came from.
	defaults map[string]setting
}

func (c *invmConfig) clone() *invmConfig {
	n := *c
	n.defaults = make(map[string]setting, len(c.defaults))
	for k, v := range c.defaults {
		n.defaults[k] = v
	}
	return &n
}

func getConfig(c *config.Config) *invmConfig {
	if ic, ok := c.Exts[languageName].(*invmConfig); ok {
		return ic
	}
	return &invmConfig{enabled: true, defaults: map[string]setting{}}
}

func (*invmLang) RegisterFlags(fs *flag.FlagSet, cmd string, c *config.Config) {}

// CheckFlags learns whether Gazelle runs in the rules_go_vm module itself
// (the root MODULE.bazel says module(name = "rules_go_vm")).
func (l *invmLang) CheckFlags(fs *flag.FlagSet, c *config.Config) error {
	l.self = isRulesGoVM(c.RepoRoot)
	return nil
}

func isRulesGoVM(repoRoot string) bool {
	path := filepath.Join(repoRoot, "MODULE.bazel")
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	f, err := bzl.ParseModule(path, data)
	if err != nil {
		return false
	}
	for _, r := range f.Rules("module") {
		if r.Name() == moduleName {
			return true
		}
	}
	return false
}

func (*invmLang) KnownDirectives() []string {
	return []string{InvmDirective, KernelDirective, MemoryDirective, CPUsDirective, ArchDirective, MirrorDirective}
}

// Configure applies the # gazelle:invm_* directives of f on top of the
// parent directory's configuration.
func (l *invmLang) Configure(c *config.Config, rel string, f *rule.File) {
	ic := getConfig(c).clone()
	c.Exts[languageName] = ic
	if f == nil {
		return
	}
	for _, d := range f.Directives {
		where := buildPos(f, d)
		switch d.Key {
		case InvmDirective, MirrorDirective:
			var on bool
			switch d.Value {
			case "on", "":
				on = d.Key == InvmDirective || d.Value == "on"
			case "off":
			default:
				l.errorf("%s: # gazelle:%s %q: use on or off", where, d.Key, d.Value)
				continue
			}
			if d.Key == InvmDirective {
				ic.enabled = on
			} else {
				ic.mirror = on
			}
		case KernelDirective, MemoryDirective, CPUsDirective, ArchDirective:
			name := strings.TrimPrefix(d.Key, "invm_")
			if d.Value == "" {
				delete(ic.defaults, name)
				continue
			}
			s, err := parseSetting(name, d.Value, where)
			if err != nil {
				l.errorf("%s: # gazelle:invm_%v", where, err)
				continue
			}
			ic.defaults[s.attr] = s
		}
	}
}

// buildPos is "path:line" of directive d in f (the line of the first comment
// that spells it), for error messages.
func buildPos(f *rule.File, d rule.Directive) string {
	if data, err := os.ReadFile(f.Path); err == nil {
		want := "# gazelle:" + d.Key
		for i, line := range strings.Split(string(data), "\n") {
			t := strings.TrimSpace(line)
			if t == want || strings.HasPrefix(t, want+" ") {
				return fmt.Sprintf("%s:%d", buildRel(f), i+1)
			}
		}
	}
	return buildRel(f)
}

// buildRel is the path of f from the repository root.
func buildRel(f *rule.File) string {
	return path.Join(f.Pkg, filepath.Base(f.Path))
}
