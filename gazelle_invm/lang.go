// Package gazelle_invm is a Gazelle language that generates `go_vm_test`
// targets: a Go test file that imports the guest helper package
// github.com/rules-go-vm/rules_go_vm/invm runs inside a Linux guest, so it
// moves from the package's host go_test into `<name>_vm_test`, shaped by the
// `//invm:` directives in those files and the `# gazelle:invm_*` directives of
// the BUILD files above it.
//
// Add it after the Go language to a gazelle_binary:
//
//	gazelle_binary(
//	    name = "gazelle_bin",
//	    languages = DEFAULT_LANGUAGES + ["@rules_go_vm//gazelle_invm"],
//	)
//
// It only uses the core language.Language interface (plus the optional
// FinishableLanguage and ModuleAwareLanguage hooks, which Gazelle detects by
// type assertion). It works with the rules the Go language generated in the
// same directory (GenerateArgs.OtherGen), so it must come after the Go
// language in the list.
package gazelle_invm

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/bazelbuild/bazel-gazelle/config"
	"github.com/bazelbuild/bazel-gazelle/language"
	"github.com/bazelbuild/bazel-gazelle/rule"
)

// languageName is the name of this extension (for `# gazelle:lang`).
const languageName = "invm"

// InvmImportPath is the package whose import marks a test file as a guest test.
const InvmImportPath = ModulePath + "/invm"

// ModulePath is rules_go_vm's Go module path: its packages resolve to the
// rules_go_vm repository.
const ModulePath = "github.com/rules-go-vm/rules_go_vm"

// DPDKImportPath is the DPDK binding's import path: a guest test that
// imports it and binds NICs for DPDK (vfio_nics) needs guest hugepages.
const DPDKImportPath = ModulePath + "/dpdk"

// moduleName is the Bazel module that provides go_vm_test.
const moduleName = "rules_go_vm"

type invmLang struct {
	// self is true when Gazelle runs in the rules_go_vm module itself: the
	// rules are then loaded as //rules:defs.bzl, like its other BUILD files.
	self bool
	// apparentRepo is the root module's name for the rules_go_vm
	// repository (its repo_name), learned in ApparentLoads.
	apparentRepo string

	mu   sync.Mutex
	errs []string

	// stderr and exit report the collected errors; injected by tests.
	stderr io.Writer
	exit   func(int)
}

// NewLanguage returns the invm language; gazelle_binary calls it.
func NewLanguage() language.Language {
	return &invmLang{stderr: os.Stderr, exit: os.Exit}
}

var (
	_ language.Language            = (*invmLang)(nil)
	_ language.FinishableLanguage  = (*invmLang)(nil)
	_ language.ModuleAwareLanguage = (*invmLang)(nil)
)

func (*invmLang) Name() string { return languageName }

// Fix has nothing to migrate.
func (*invmLang) Fix(c *config.Config, f *rule.File) {}

// errorf records an error; DoneGeneratingRules reports all of them and makes
// Gazelle fail before it writes any BUILD file.
func (l *invmLang) errorf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

// DoneGeneratingRules fails the run if any //invm: or # gazelle:invm_*
// directive was wrong. Gazelle calls it after walking the tree and before it
// resolves dependencies or writes files, so a bad directive changes nothing.
func (l *invmLang) DoneGeneratingRules() {
	l.mu.Lock()
	errs := append([]string(nil), l.errs...)
	l.errs = nil
	l.mu.Unlock()
	if len(errs) == 0 {
		return
	}
	sort.Strings(errs)
	for _, e := range errs {
		fmt.Fprintf(l.stderr, "gazelle: %s\n", e)
	}
	fmt.Fprintf(l.stderr, "gazelle: invm: %d directive error(s); no BUILD file was changed\n", len(errs))
	l.exit(1)
}

// Loads is used by Gazelle versions without module awareness.
func (l *invmLang) Loads() []rule.LoadInfo { return l.loads("@" + moduleName) }

// ApparentLoads names the rules_go_vm repository as the root module sees it
// (its repo_name), or "//" inside rules_go_vm itself.
func (l *invmLang) ApparentLoads(moduleToApparentName func(string) string) []rule.LoadInfo {
	l.apparentRepo = moduleName
	if moduleToApparentName != nil {
		if n := moduleToApparentName(moduleName); n != "" {
			l.apparentRepo = n
		}
	}
	if l.self {
		return l.loads("")
	}
	return l.loads("@" + l.apparentRepo)
}

// repo is the repository name of rules_go_vm in labels: "" inside
// rules_go_vm itself.
func (l *invmLang) repo() string {
	switch {
	case l.self:
		return ""
	case l.apparentRepo != "":
		return l.apparentRepo
	}
	return moduleName
}

func (*invmLang) loads(repo string) []rule.LoadInfo {
	return []rule.LoadInfo{{
		Name:    repo + "//rules:defs.bzl",
		Symbols: []string{vmTestKind},
	}}
}

// trimTestSuffix turns the go_test name into the go_vm_test name:
// foo_test -> foo_vm_test, go_default_test -> go_default_vm_test.
func vmTestName(goTestName string) string {
	return strings.TrimSuffix(goTestName, "_test") + "_vm_test"
}
