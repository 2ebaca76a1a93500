package gazelle_invm

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bazelbuild/bazel-gazelle/label"
)

// DirectivePrefix starts a file-level VM directive in a Go test file, e.g.
// `//invm:memory 512M`. Directives sit outside declarations (right after the
// package clause, or in the comment above a declaration is fine too; not inside
// a function body).
const DirectivePrefix = "//invm:"

// Allowed values, the same as go_vm_test's (rules/private/vm_test.bzl) and
// the runner's VM spec (runner/vmspec).
var (
	nicModels = []string{"virtio_net", "e1000", "e1000e"}
	hostPages = []string{"4k", "2M", "1G"}
	accels    = []string{"auto", "kvm", "tcg"}
	backends  = []string{"qemu"}
	hugeSizes = []string{"2M", "1G"}
	// arches maps a guest arch to the @platforms constraint of its CPU.
	arches = map[string]string{
		"x86_64":  "@platforms//cpu:x86_64",
		"aarch64": "@platforms//cpu:aarch64",
	}
)

// defaultMemory is go_vm_test's memory default, for the hugepages check.
const defaultMemory = "256M"

// setting is one directive's value, checked and converted.
type setting struct {
	attr  string // go_vm_test attribute
	raw   string // canonical text, for conflict checks and messages
	value any    // for rule.SetAttr: string, int, bool or []string
	pos   string // "file:line"
}

// directive describes one //invm: directive (and, for memory, cpus, kernel
// and arch, its # gazelle:invm_* default).
type directive struct {
	attr  string
	parse func(v string) (raw string, value any, err error)
}

var directives = map[string]directive{
	"accel":   {"accel", oneOf(accels)},
	"arch":    {"target_compatible_with", parseArch},
	"backend": {"backend", oneOf(backends)},
	"cmdline": {"cmdline", func(v string) (string, any, error) {
		f := strings.Fields(v)
		if len(f) == 0 {
			return "", nil, fmt.Errorf("needs kernel parameters, e.g. //invm:cmdline quiet loglevel=3")
		}
		return strings.Join(f, " "), f, nil
	}},
	"cpus":            {"cpus", intIn(1, 64)},
	"guest_hugepages": {"guest_hugepages", parseHugepages},
	"hugepages":       {"guest_hugepages", parseHugepages},
	"host_pages":      {"host_pages", oneOf(hostPages)},
	"iommu": {"iommu", func(v string) (string, any, error) {
		if v != "" {
			return "", nil, fmt.Errorf("takes no value (write //invm:iommu)")
		}
		return "true", true, nil
	}},
	"kernel": {"kernel", func(v string) (string, any, error) {
		if _, err := label.Parse(v); err != nil || strings.ContainsAny(v, " \t") {
			return "", nil, fmt.Errorf("%q is not a label of a kernel_image target", v)
		}
		return v, v, nil
	}},
	"memory": {"memory", func(v string) (string, any, error) {
		m, err := sizeMiB(v)
		if err != nil {
			return "", nil, err
		}
		if m < 64 {
			return "", nil, fmt.Errorf("%q is too small; give at least 64M", v)
		}
		return v, v, nil
	}},
	"mgmt_nic": {"mgmt_nic", func(v string) (string, any, error) {
		if !slices.Contains(nicModels, v) {
			return "", nil, fmt.Errorf("%q is not a NIC model; use one of %s, e.g. //invm:mgmt_nic virtio_net", v, strings.Join(nicModels, ", "))
		}
		return v, v, nil
	}},
	"nics": {"nics", func(v string) (string, any, error) {
		list := splitList(v)
		if len(list) == 0 {
			return "", nil, fmt.Errorf("needs NIC models, one of %s, e.g. //invm:nics e1000,e1000e", strings.Join(nicModels, ", "))
		}
		for _, n := range list {
			if !slices.Contains(nicModels, n) {
				return "", nil, fmt.Errorf("%q is not a NIC model; use %s", n, strings.Join(nicModels, ", "))
			}
		}
		return strings.Join(list, ","), list, nil
	}},
	"tcg_timeout_scale": {"tcg_timeout_scale", intIn(1, 1000)},
}

// directiveNames lists the //invm: directives, for messages.
func directiveNames() string {
	var n []string
	for k := range directives {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func parseSetting(name, value, pos string) (setting, error) {
	d, ok := directives[name]
	if !ok {
		return setting{}, fmt.Errorf("unknown directive %q; known: %s", name, directiveNames())
	}
	raw, v, err := d.parse(value)
	if err != nil {
		return setting{}, err
	}
	return setting{attr: d.attr, raw: raw, value: v, pos: pos}, nil
}

func oneOf(allowed []string) func(string) (string, any, error) {
	return func(v string) (string, any, error) {
		if !slices.Contains(allowed, v) {
			return "", nil, fmt.Errorf("%q is not allowed; use one of %s", v, strings.Join(allowed, ", "))
		}
		return v, v, nil
	}
}

func intIn(lo, hi int) func(string) (string, any, error) {
	return func(v string) (string, any, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return "", nil, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
		}
		return strconv.Itoa(n), n, nil
	}
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
		return "", nil, fmt.Errorf("needs guest architectures, e.g. //invm:arch x86_64")
	}
	seen := map[string]bool{}
	for _, a := range list {
		if _, ok := arches[a]; !ok {
			return "", nil, fmt.Errorf("%q is not a guest arch; use x86_64, aarch64", a)
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

// sizeMiB parses "512M" / "1G" / "2048K" (the rule's syntax) into MiB.
func sizeMiB(v string) (int, error) {
	bad := fmt.Errorf("%q is not a size; write a whole number with K, M or G, e.g. 512M", v)
	if len(v) < 2 {
		return 0, bad
	}
	n, err := strconv.Atoi(v[:len(v)-1])
	if err != nil || n <= 0 || strings.ContainsAny(v[:len(v)-1], "+-") {
		return 0, bad
	}
	switch v[len(v)-1] {
	case 'K':
		if n%1024 != 0 {
			return 0, fmt.Errorf("%q must be a whole number of MiB", v)
		}
		return n / 1024, nil
	case 'M':
		return n, nil
	case 'G':
		return n * 1024, nil
	}
	return 0, bad
}

func parseHugepages(v string) (string, any, error) {
	size, count, ok := strings.Cut(v, ":")
	n, err := strconv.Atoi(count)
	if !ok || !slices.Contains(hugeSizes, size) || err != nil || n < 1 {
		return "", nil, fmt.Errorf("%q: write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. 2M:64", v)
	}
	return size + ":" + strconv.Itoa(n), size + ":" + strconv.Itoa(n), nil
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
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if !strings.HasPrefix(c.Text, DirectivePrefix) {
				continue
			}
			line := fset.Position(c.Slash).Line
			pos := fmt.Sprintf("%s:%d", rel, line)
			if insideDecl(f, c.Slash) {
				tf.errs = append(tf.errs, fmt.Sprintf("%s: %s is inside a declaration; put //invm: directives at file level (e.g. after the package clause)", pos, c.Text))
				continue
			}
			name, value, _ := strings.Cut(strings.TrimPrefix(c.Text, DirectivePrefix), " ")
			s, err := parseSetting(strings.TrimSpace(name), strings.TrimSpace(value), pos)
			if err != nil {
				tf.errs = append(tf.errs, fmt.Sprintf("%s: //invm:%s: %v", pos, strings.TrimSpace(name), err))
				continue
			}
			tf.directives = append(tf.directives, s)
		}
	}
	return tf, nil
}

func insideDecl(f *ast.File, p token.Pos) bool {
	for _, d := range f.Decls {
		if d.Pos() <= p && p < d.End() {
			return true
		}
	}
	return false
}
