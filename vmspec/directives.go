package vmspec

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DirectivePrefix starts a VM directive in a Go test file, e.g.
// `//invm:memory 512M`. Directives sit at file level (after the package
// clause, or above a declaration), never inside one.
const DirectivePrefix = "//invm:"

// Directive is one //invm: directive of a test file.
type Directive struct {
	// Name is the directive's name as written ("hugepages").
	Name string
	// Value is the rest of the line, trimmed.
	Value string
	// Pos is "file:line", for messages.
	Pos string
}

// ErrDirective is wrapped by directive errors that are not a field's
// (placement, conflicts).
var ErrDirective = errors.New("invm directive")

// FileDirectives returns the //invm: directives of a parsed Go file (parsed
// with comments), rel naming it in positions. A directive inside a
// declaration is an error.
func FileDirectives(fset *token.FileSet, f *ast.File, rel string) ([]Directive, []error) {
	var ds []Directive
	var errs []error
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if !strings.HasPrefix(c.Text, DirectivePrefix) {
				continue
			}
			pos := fmt.Sprintf("%s:%d", rel, fset.Position(c.Slash).Line)
			if insideDecl(f, c.Slash) {
				errs = append(errs, fmt.Errorf("%s: %s is inside a declaration; put //invm: directives at file level (e.g. after the package clause): %w", pos, c.Text, ErrDirective))
				continue
			}
			name, value, _ := strings.Cut(strings.TrimPrefix(c.Text, DirectivePrefix), " ")
			ds = append(ds, Directive{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value), Pos: pos})
		}
	}
	return ds, errs
}

func insideDecl(f *ast.File, p token.Pos) bool {
	for _, d := range f.Decls {
		if d.Pos() <= p && p < d.End() {
			return true
		}
	}
	return false
}

// PackageDirectives reads the //invm: directives of the _test.go files in
// dir (the test package `go test` runs in, its working directory), in file
// name order.
func PackageDirectives(dir string) ([]Directive, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var ds []Directive
	var errs []error
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(src, []byte(DirectivePrefix)) {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		fd, ferrs := FileDirectives(fset, f, filepath.Base(p))
		ds = append(ds, fd...)
		errs = append(errs, ferrs...)
	}
	return ds, errors.Join(errs...)
}

// Resolved is a directive applied: its field's canonical name and value.
type Resolved struct {
	Directive
	// Field is the canonical field name ("guest_hugepages" for
	// "hugepages"); the directive's own name for others (kernel, arch).
	Field string
	// Canonical is the value's text form after parsing (for fields), or
	// the value as written (for others).
	Canonical string
}

// Merge applies the directives that name Fields to s, in order, and
// returns every directive resolved by field name. The same field set twice
// to different values is an error naming both positions (the files of one
// test share one VM). A name for which other returns true (a front door's
// own directive, e.g. Gazelle's kernel and arch) is kept as written; any
// other unknown name is an error listing the known ones. Errors are
// prefixed by the directive's position and "//invm:".
func Merge(s *Shape, ds []Directive, other func(name string) bool) (map[string]Resolved, error) {
	out := map[string]Resolved{}
	var errs []error
	for _, d := range ds {
		r := Resolved{Directive: d, Field: d.Name, Canonical: d.Value}
		if f, ok := Lookup(d.Name); ok {
			var scratch Shape
			if err := scratch.Set(f.Name, d.Value); err != nil {
				errs = append(errs, fmt.Errorf("%s: //invm:%w", d.Pos, err))
				continue
			}
			r.Field, r.Canonical = f.Name, scratch.Get(f.Name)
		} else if other == nil || !other(d.Name) {
			errs = append(errs, fmt.Errorf("%s: //invm:%s: unknown directive; known: %s: %w", d.Pos, d.Name, FieldNames(), ErrDirective))
			continue
		}
		if prev, ok := out[r.Field]; ok && prev.Canonical != r.Canonical {
			errs = append(errs, fmt.Errorf("%s: %s = %q conflicts with %s: %s = %q; the files of one VM test share one VM, make them agree: %w",
				d.Pos, r.Field, r.Canonical, prev.Pos, prev.Field, prev.Canonical, ErrDirective))
			continue
		}
		out[r.Field] = r
		if _, ok := Lookup(d.Name); ok {
			_ = s.Set(r.Field, d.Value) // checked above
		}
	}
	return out, errors.Join(errs...)
}

// Blame splits a Validate error into its field errors, each prefixed with
// the position that set its field (pos maps field names to "file:line");
// an error of a field left at its default gets the first position, so a
// cross-field error always points at a line.
func Blame(err error, pos map[string]string) []error {
	if err == nil {
		return nil
	}
	first := ""
	for _, p := range pos {
		if first == "" || p < first {
			first = p
		}
	}
	var out []error
	for _, e := range unjoin(err) {
		p := first
		var fe *FieldError
		if errors.As(e, &fe) && pos[fe.Field] != "" {
			p = pos[fe.Field]
		}
		if p != "" {
			e = fmt.Errorf("%s: %w", p, e)
		}
		out = append(out, e)
	}
	return out
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
