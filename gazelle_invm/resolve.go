package gazelle_invm

import (
	"log"
	"path"
	"sort"
	"strings"

	"github.com/bazelbuild/bazel-gazelle/config"
	"github.com/bazelbuild/bazel-gazelle/label"
	golang "github.com/bazelbuild/bazel-gazelle/language/go"
	"github.com/bazelbuild/bazel-gazelle/repo"
	"github.com/bazelbuild/bazel-gazelle/resolve"
	"github.com/bazelbuild/bazel-gazelle/rule"
	bzl "github.com/bazelbuild/buildtools/build"
)

// Imports: a go_vm_test is not a library, nothing imports it.
func (*invmLang) Imports(c *config.Config, r *rule.Rule, f *rule.File) []resolve.ImportSpec {
	return nil
}

// Embeds: a go_vm_test is never embedded.
func (*invmLang) Embeds(r *rule.Rule, from label.Label) []label.Label { return nil }

// Resolve sets the deps of a go_vm_test from the imports of its files, the
// way the Go language resolves go_test (golang.ResolveGo, which honours
// # gazelle:resolve and the index). It then removes from the host go_test of
// the package the deps that only the guest files needed: Gazelle resolves the
// rules of one directory in the order they were generated, so the Go
// language has already set that go_test's deps.
func (l *invmLang) Resolve(c *config.Config, ix *resolve.RuleIndex, rc *repo.RemoteCache, r *rule.Rule, importsRaw interface{}, from label.Label) {
	var imports []string
	var imps *vmImports
	switch v := importsRaw.(type) {
	case *vmImports:
		imps = v
		imports = v.imports
	case rule.PlatformStrings: // the Go language's go_test turned go_vm_test
		imports = v.Flat()
	default:
		return
	}
	embeds := map[label.Label]bool{}
	for _, e := range r.AttrStrings("embed") {
		if l, err := label.Parse(e); err == nil {
			embeds[l.Abs(from.Repo, from.Pkg)] = true
		}
	}
	resolveAll := func(imports []string) []string {
		var deps []string
		seen := map[string]bool{}
		for _, imp := range imports {
			if golang.IsStandard(imp) {
				continue
			}
			l, err := l.resolveGo(c, ix, rc, imp, from)
			if err != nil {
				if l == label.NoLabel && err.Error() != "std or self import" {
					log.Print(err)
				}
				continue
			}
			if embeds[l] {
				continue
			}
			s := l.Rel(from.Repo, from.Pkg).String()
			if !seen[s] {
				seen[s] = true
				deps = append(deps, s)
			}
		}
		sort.Strings(deps)
		return deps
	}
	r.DelAttr("deps")
	if deps := resolveAll(imports); len(deps) > 0 {
		r.SetAttr("deps", deps)
	}
	if imps == nil || imps.hostTest == nil {
		return
	}
	host := imps.hostTest
	hostFrom := label.New(from.Repo, from.Pkg, host.Name())
	drop := map[string]bool{}
	for _, imp := range imps.hostOnlyDrop {
		if golang.IsStandard(imp) {
			continue
		}
		// The Go language resolved the go_test's imports with ResolveGo.
		if l, err := golang.ResolveGo(c, ix, rc, imp, hostFrom); err == nil {
			drop[l.Rel(from.Repo, from.Pkg).String()] = true
		}
	}
	if deps := host.Attr("deps"); deps != nil && len(drop) > 0 {
		if kept := dropStrings(deps, drop); isEmptyList(kept) {
			host.DelAttr("deps")
		} else {
			host.SetAttr("deps", kept)
		}
	}
}

// dropStrings removes the strings in drop from the lists of a deps
// expression (a list, or a list + select({...}) as the Go language writes
// platform-specific deps); nil when nothing is left.
func dropStrings(x bzl.Expr, drop map[string]bool) bzl.Expr {
	switch e := x.(type) {
	case *bzl.ListExpr:
		var kept []bzl.Expr
		for _, it := range e.List {
			if s, ok := it.(*bzl.StringExpr); ok && drop[s.Value] {
				continue
			}
			kept = append(kept, it)
		}
		n := *e
		n.List = kept
		return &n
	case *bzl.BinaryExpr:
		n := *e
		n.X = dropStrings(e.X, drop)
		n.Y = dropStrings(e.Y, drop)
		if isEmptyList(n.X) {
			return n.Y
		}
		if isEmptyList(n.Y) {
			return n.X
		}
		return &n
	case *bzl.CallExpr: // select({...})
		n := *e
		n.List = make([]bzl.Expr, len(e.List))
		for i, a := range e.List {
			n.List[i] = dropStrings(a, drop)
		}
		return &n
	case *bzl.DictExpr:
		n := *e
		n.List = make([]*bzl.KeyValueExpr, len(e.List))
		for i, kv := range e.List {
			c := *kv
			c.Value = dropStrings(kv.Value, drop)
			n.List[i] = &c
		}
		return &n
	}
	return x
}

func isEmptyList(x bzl.Expr) bool {
	l, ok := x.(*bzl.ListExpr)
	return ok && len(l.List) == 0
}

// resolveGo is golang.ResolveGo, except that rules_go_vm's own packages
// (invm, invm/vfio, dpdk, acl/...) resolve to the rules_go_vm repository as
// the root module names it (or to //<dir> inside rules_go_vm) without the
// user having to write # gazelle:resolve for them; a # gazelle:resolve
// directive still wins.
func (l *invmLang) resolveGo(c *config.Config, ix *resolve.RuleIndex, rc *repo.RemoteCache, imp string, from label.Label) (label.Label, error) {
	// Inside rules_go_vm, its packages are in the index like any other
	// (and a package's own library is embedded, not a dependency).
	if rel, ok := strings.CutPrefix(imp, ModulePath+"/"); ok && (!l.self || imp == InvmImportPath) {
		if lbl, ok := resolve.FindRuleWithOverride(c, resolve.ImportSpec{Lang: "go", Imp: imp}, "go"); ok {
			return lbl, nil
		}
		return label.New(l.repo(), rel, path.Base(rel)), nil
	}
	return golang.ResolveGo(c, ix, rc, imp, from)
}
