package gazelle_invm

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/bazelbuild/bazel-gazelle/label"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// DirectivePrefix starts a file-level VM directive in a Go test file, e.g.
// `//invm:memory 512M` (vmspec.DirectivePrefix).
const DirectivePrefix = vmspec.DirectivePrefix

// arches maps a guest arch (vmspec.Arches) to the @platforms constraint of
// its CPU.
var arches = map[string]string{
	"x86_64":  "@platforms//cpu:x86_64",
	"aarch64": "@platforms//cpu:aarch64",
}

// setting is one directive's value, checked and converted.
type setting struct {
	attr  string // go_vm_test attribute
	field string // vmspec field name ("" for kernel and arch)
	raw   string // canonical text, for conflict checks and messages
	value any    // for rule.SetAttr: string, int, bool or []string
	pos   string // "file:line"
}

// Gazelle's own directives, besides the VM spec's fields (package vmspec
// owns those: names, syntax, limits, messages).
const (
	// archDirective lists the guest arches a test may run on
	// (target_compatible_with).
	archDirective = "arch"
	// kernelDirective names a kernel_image target.
	kernelDirective = "kernel"
)

// ownDirective reports whether name is one of Gazelle's own directives.
func ownDirective(name string) bool { return name == archDirective || name == kernelDirective }

// directiveNames lists the //invm: directives, for messages.
func directiveNames() string {
	names := []string{archDirective, kernelDirective}
	for _, f := range vmspec.Fields {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// parseSetting checks one directive (a //invm: line or a # gazelle:invm_*
// default) and converts it to the attribute's value. Errors are vmspec's
// "FIELD: MESSAGE" for the spec's fields.
func parseSetting(name, value, pos string) (setting, error) {
	switch name {
	case archDirective:
		raw, v, err := parseArch(value)
		return setting{attr: "target_compatible_with", raw: raw, value: v, pos: pos}, err
	case kernelDirective:
		if _, err := label.Parse(value); err != nil || value == "" || strings.ContainsAny(value, " \t") {
			return setting{}, fmt.Errorf("kernel: %q is not a label of a kernel_image target", value)
		}
		return setting{attr: "kernel", raw: value, value: value, pos: pos}, nil
	}
	f, ok := vmspec.Lookup(name)
	if !ok {
		return setting{}, fmt.Errorf("%s: unknown directive; known: %s", name, directiveNames())
	}
	var s vmspec.Shape
	if err := s.Set(f.Name, value); err != nil {
		return setting{}, err
	}
	raw := s.Get(f.Name)
	return setting{attr: f.Name, field: f.Name, raw: raw, value: attrValue(f, s), pos: pos}, nil
}

// attrValue is field f of s as the rule attribute's value.
func attrValue(f vmspec.Field, s vmspec.Shape) any {
	raw := s.Get(f.Name)
	switch f.Kind {
	case vmspec.KindInt:
		n, _ := strconv.Atoi(raw)
		return n
	case vmspec.KindBool:
		return raw == "true"
	case vmspec.KindStringList:
		if f.Name == "cmdline" {
			return append([]string{}, s.Cmdline...)
		}
		return append([]string{}, splitList(raw)...) // nics, vfio_nics
	}
	return raw
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseArch(v string) (string, any, error) {
	list := splitList(v)
	if len(list) == 0 {
		return "", nil, fmt.Errorf("arch: needs guest architectures, e.g. //invm:arch x86_64")
	}
	seen := map[string]bool{}
	for _, a := range list {
		if err := vmspec.CheckArch(a); err != nil {
			return "", nil, err
		}
		seen[a] = true
	}
	var set []string
	for a := range seen {
		set = append(set, a)
	}
	sort.Strings(set)
	return strings.Join(set, ","), set, nil
}

// archConstraint is target_compatible_with for a set of arches: nothing when
// every arch is allowed, else a select that makes the other CPUs incompatible.
func archConstraint(set []string) any {
	if len(set) == len(arches) {
		return nil
	}
	// One arch (the only other case while there are two).
	return []string{arches[set[0]]}
}

// testFile is what this language needs to know about one _test.go file.
type testFile struct {
	name       string
	imports    []string
	internal   bool // package clause is not `package x_test`
	guest      bool // imports invm
	directives []setting
	errs       []string
}

// readTestFile parses the imports and the //invm: directives of a test file;
// rel is its path for messages.
func readTestFile(path, rel string, src []byte) (testFile, error) {
	// Only the imports are needed, unless a directive may sit further down.
	mode := parser.ImportsOnly | parser.ParseComments
	if bytes.Contains(src, []byte(DirectivePrefix)) {
		mode = parser.ParseComments | parser.SkipObjectResolution
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, mode)
	if err != nil {
		return testFile{}, err
	}
	tf := testFile{name: filepath.Base(path), internal: !strings.HasSuffix(f.Name.Name, "_test")}
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		tf.imports = append(tf.imports, p)
		if p == InvmImportPath {
			tf.guest = true
		}
	}
	ds, errs := vmspec.FileDirectives(fset, f, rel)
	for _, err := range errs {
		tf.errs = append(tf.errs, strings.TrimSuffix(err.Error(), ": "+vmspec.ErrDirective.Error()))
	}
	for _, d := range ds {
		s, err := parseSetting(d.Name, d.Value, d.Pos)
		if err != nil {
			tf.errs = append(tf.errs, fmt.Sprintf("%s: //invm:%v", d.Pos, err))
			continue
		}
		tf.directives = append(tf.directives, s)
	}
	return tf, nil
}
