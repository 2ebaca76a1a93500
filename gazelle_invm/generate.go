package gazelle_invm

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bazelbuild/bazel-gazelle/language"
	"github.com/bazelbuild/bazel-gazelle/rule"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

var (
	invmImportBytes = []byte(`"` + InvmImportPath + `"`)
	directiveBytes  = []byte(DirectivePrefix)
)

// vmImports is the import data of a generated go_vm_test, handed to Resolve.
type vmImports struct {
	// imports of the guest test files, sorted.
	imports []string
	// hostTest is the Go language's go_test of the same package when it
	// keeps some (host) files, and hostOnlyDrop the imports only the guest
	// files had: Resolve removes their labels from its deps.
	hostTest     *rule.Rule
	hostOnlyDrop []string
}

// GenerateRules moves the guest test files (those that import invm) of the
// directory out of the go_test the Go language generated (args.OtherGen) into
// a go_vm_test. The go_test rule is shared with the Go language: trimming its
// srcs here is what Gazelle merges. When every test file is a guest file, the
// Go language's go_test rule itself becomes the go_vm_test (the Go language
// would otherwise generate a go_test with no sources) and an empty go_test
// is returned, so an existing one is deleted.
func (l *invmLang) GenerateRules(args language.GenerateArgs) language.GenerateResult {
	ic := getConfig(args.Config)
	if !ic.enabled {
		return language.GenerateResult{}
	}
	var goTest *rule.Rule
	for _, r := range args.OtherGen {
		if r.Kind() == goTestKind {
			goTest = r
			break
		}
	}
	var res language.GenerateResult
	if goTest == nil {
		// No test files (the Go language returned an empty go_test): a
		// go_vm_test of the same name has nothing left either.
		for _, r := range args.OtherEmpty {
			if r.Kind() == goTestKind {
				res.Empty = append(res.Empty, rule.NewRule(vmTestKind, vmTestName(r.Name())))
			}
		}
		return res
	}
	vmName := vmTestName(goTest.Name())

	// Most packages have no guest test: a byte search decides that without
	// parsing (the Go language has parsed the files already, and does not
	// share what it found).
	type source struct {
		name string
		src  []byte
	}
	var sources []source
	maybeGuest := ic.mirror
	for _, name := range goTest.AttrStrings("srcs") {
		if !strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(args.Dir, name))
		if err != nil {
			continue // the Go language reports unreadable files
		}
		sources = append(sources, source{name, src})
		maybeGuest = maybeGuest || bytes.Contains(src, invmImportBytes) || bytes.Contains(src, directiveBytes)
	}
	if !maybeGuest {
		res.Empty = append(res.Empty, rule.NewRule(vmTestKind, vmName))
		return res
	}

	var guest, host []testFile
	var errs []string
	for _, s := range sources {
		name := s.name
		tf, err := readTestFile(filepath.Join(args.Dir, name), path.Join(args.Rel, name), s.src)
		if err != nil {
			continue // and files that do not parse
		}
		errs = append(errs, tf.errs...)
		switch {
		case tf.guest:
			guest = append(guest, tf)
		case ic.mirror:
			// Runs in both places.
			guest = append(guest, tf)
			host = append(host, tf)
		default:
			if len(tf.directives) > 0 {
				errs = append(errs, fmt.Sprintf("%s: //invm: directive in a file that does not import %s, so it has no VM test to shape; import invm (or set # gazelle:%s on) or remove the directive", tf.directives[0].pos, InvmImportPath, MirrorDirective))
			}
			host = append(host, tf)
		}
	}
	attrs, aerrs := vmAttrs(ic, guest)
	errs = append(errs, aerrs...)
	errs = append(errs, dpdkCheck(args.Rel, guest, attrs)...)
	if len(errs) > 0 {
		for _, e := range errs {
			l.errorf("%s", e)
		}
		return language.GenerateResult{}
	}
	if len(guest) == 0 {
		res.Empty = append(res.Empty, rule.NewRule(vmTestKind, vmName))
		return res
	}

	srcs, internal, imports := summarize(guest)
	embed := goTest.AttrStrings("embed")

	vm := goTest
	if len(host) > 0 {
		vm = rule.NewRule(vmTestKind, vmName)
		if data := goTest.Attr("data"); data != nil {
			vm.SetAttr("data", data)
		}
		imps := &vmImports{imports: imports}
		hostSrcs, hostInternal, hostImportList := summarize(host)
		hostImports := map[string]bool{}
		for _, imp := range hostImportList {
			hostImports[imp] = true
		}
		goTest.SetAttr("srcs", hostSrcs)
		if !hostInternal {
			// Only external tests left: they import the library
			// (resolved into deps) instead of embedding it.
			goTest.DelAttr("embed")
		}
		for _, imp := range imports {
			if !hostImports[imp] {
				imps.hostOnlyDrop = append(imps.hostOnlyDrop, imp)
			}
		}
		if len(imps.hostOnlyDrop) > 0 {
			imps.hostTest = goTest
		}
		res.Gen = append(res.Gen, vm)
		res.Imports = append(res.Imports, imps)
	} else {
		// Every test file is a guest file: the Go language's go_test (and its
		// imports, which are exactly the guest files') becomes the go_vm_test;
		// Resolve gets those imports as rule.PlatformStrings.
		data, hostName := goTest.Attr("data"), goTest.Name()
		for _, k := range goTest.AttrKeys() {
			goTest.DelAttr(k)
		}
		goTest.SetKind(vmTestKind)
		goTest.SetName(vmName)
		if data != nil {
			goTest.SetAttr("data", data)
		}
		res.Empty = append(res.Empty, rule.NewRule(goTestKind, hostName))
	}
	vm.SetAttr("srcs", srcs)
	if internal && len(embed) > 0 {
		vm.SetAttr("embed", embed)
	} else {
		vm.DelAttr("embed")
	}
	for _, a := range generatedVMAttrs {
		vm.DelAttr(a)
	}
	for _, a := range sortedKeys(attrs) {
		vm.SetAttr(a, attrs[a])
	}
	return res
}

// vmAttrs merges the directives of a target's files over the directory
// defaults; the errors name file:line of both sides of a conflict.
func vmAttrs(ic *invmConfig, files []testFile) (map[string]any, []string) {
	var errs []string
	set := map[string]setting{}
	for _, tf := range files {
		for _, s := range tf.directives {
			if prev, ok := set[s.attr]; ok && prev.raw != s.raw {
				errs = append(errs, fmt.Sprintf("%s: %s = %q conflicts with %s: %s = %q; the files of one VM test share one VM, make them agree", s.pos, s.attr, s.raw, prev.pos, prev.attr, prev.raw))
				continue
			}
			set[s.attr] = s
		}
	}
	for k, s := range ic.defaults {
		if _, ok := set[k]; !ok {
			set[k] = s
		}
	}
	errs = append(errs, crossCheck(set)...)
	out := map[string]any{}
	for k, s := range set {
		v := s.value
		if k == "target_compatible_with" {
			v = archConstraint(s.value.([]string))
			if v == nil {
				continue
			}
		}
		out[k] = v
	}
	return out, errs
}

// dpdkCheck fails a guest test that uses DPDK's PMDs without hugepages:
// its files import the DPDK binding and it binds NICs to vfio-pci, but the
// guest gets no hugepages, so the EAL would fail at run time.
func dpdkCheck(rel string, files []testFile, attrs map[string]any) []string {
	_, bind := attrs["vfio_nics"]
	_, huge := attrs["guest_hugepages"]
	if !bind || huge {
		return nil
	}
	for _, tf := range files {
		if slices.Contains(tf.imports, DPDKImportPath) {
			return []string{fmt.Sprintf("%s: imports %s and binds NICs to vfio-pci (vfio_nics), but the guest has no hugepages "+
				"for DPDK's PMDs; add //invm:guest_hugepages 2M:64 (and //invm:memory 512M)", path.Join(rel, tf.name), DPDKImportPath)}
		}
	}
	return nil
}

// crossCheck runs package vmspec's checks across fields (hugepages within
// memory, host-page alignment, ...) on the merged settings, as the rule
// does at analysis time; each error names the line that set its field (or,
// for a field left at its default, the first directive's line).
func crossCheck(set map[string]setting) []string {
	var shape vmspec.Shape
	pos := map[string]string{}
	for _, s := range set {
		if s.field != "" {
			_ = shape.Set(s.field, s.raw) // checked when the directive was read
			pos[s.field] = s.pos
		}
	}
	var errs []string
	for _, e := range vmspec.Blame(shape.Defaults().Validate(), pos) {
		errs = append(errs, e.Error())
	}
	return errs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// summarize returns the sorted file names of files, whether any of them is
// in the package itself (not package x_test), and their imports, sorted and
// without duplicates.
func summarize(files []testFile) (srcs []string, internal bool, imports []string) {
	seen := map[string]bool{}
	for _, tf := range files {
		srcs = append(srcs, tf.name)
		internal = internal || tf.internal
		for _, imp := range tf.imports {
			if !seen[imp] {
				seen[imp] = true
				imports = append(imports, imp)
			}
		}
	}
	sort.Strings(srcs)
	sort.Strings(imports)
	return srcs, internal, imports
}
