// Package lint checks the repository's hygiene from `bazel test //...`: Go
// files are gofmt-formatted, Starlark files are buildifier-clean, the
// BUILD files are what `bazel run //:gazelle` generates (no drift), and no
// function of the runner is longer than maxFuncLines. `go vet`
// runs on every compile through nogo (see MODULE.bazel), not here.
//
// The checks read the source tree itself, which Bazel does not declare as an
// input, so the target is tagged "external" (never cached) and "local".
package lint

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/vmspec/specgen"
)

// workspace finds the source tree: through the MODULE.bazel runfile under
// Bazel (a symlink into the workspace), or two levels up under `go test`.
func workspace(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LINT_MODULE_FILE"); p != "" {
		real, err := filepath.EvalSymlinks(runfile(p))
		if err != nil {
			t.Fatalf("resolving %s: %v", p, err)
		}
		return filepath.Dir(real)
	}
	ws, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// bazelTool returns the runfile path of a tool passed by the BUILD file, or
// fails the test: these checks are part of `tools/bazel test //...`.
func bazelTool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Skipf("%s not set: this check runs under `tools/bazel test //tools/lint`", env)
	}
	return runfile(p)
}

// runfile turns a $(rootpath) into a path: rules_go runs a test in its
// package's directory, and root paths are relative to the workspace's
// runfiles directory.
func runfile(rootpath string) string {
	return filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"), rootpath)
}

// sourceFiles lists files below ws that match keep, skipping Bazel's output
// symlinks, VCS metadata and test data.
func sourceFiles(t *testing.T, ws string, keep func(name string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(ws, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != ws && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "bazel-") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && keep(name) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGofmt(t *testing.T) {
	ws := workspace(t)
	files := sourceFiles(t, ws, func(n string) bool { return strings.HasSuffix(n, ".go") })
	if len(files) == 0 {
		t.Fatalf("no Go files found below %s", ws)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := format.Source(src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !bytes.Equal(got, src) {
			t.Errorf("%s is not gofmt-formatted: run `gofmt -w %s`", f, f)
		}
	}
}

func isStarlark(n string) bool {
	return n == "BUILD" || n == "BUILD.bazel" || n == "MODULE.bazel" || strings.HasSuffix(n, ".bzl")
}

func TestBuildifier(t *testing.T) {
	bin := bazelTool(t, "LINT_BUILDIFIER")
	ws := workspace(t)
	files := sourceFiles(t, ws, isStarlark)
	args := append([]string{"-mode=check", "-lint=warn", "-warnings=all"}, files...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Errorf("buildifier found problems (fix with `go tool buildifier -lint=fix <file>`):\n%s", out)
	}
}

func TestGazelleNoDrift(t *testing.T) {
	// $(rootpaths //:gazelle): the runner script and its executable link.
	var runner string
	for _, p := range strings.Fields(os.Getenv("LINT_GAZELLE")) {
		if filepath.Base(p) == "gazelle" {
			runner = p
		}
	}
	t.Setenv("LINT_GAZELLE_RUNNER", runner)
	runner = bazelTool(t, "LINT_GAZELLE_RUNNER")
	ws := workspace(t)
	cmd := exec.Command(runner, "update", "-mode=diff")
	cmd.Env = append(os.Environ(), "BUILD_WORKSPACE_DIRECTORY="+ws)
	cmd.Dir = ws
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 && bytes.Contains(out, []byte("\n+")) {
		t.Errorf("BUILD files differ from what gazelle generates; run `tools/bazel run //:gazelle` and commit:\n%s", out)
	}
}

// TestGeneratedSpec: the Starlark files generated from package vmspec
// (rules/private/spec.bzl, tests/analysis/spec_cases.bzl) are what `go run
// ./vmspec/cmd/specgen` writes now, so the rule's limits and messages never
// drift from the Go ones.
func TestGeneratedSpec(t *testing.T) {
	ws := workspace(t)
	for path, render := range specgen.Files {
		want, err := render()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := os.ReadFile(filepath.Join(ws, path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go run ./vmspec/cmd/specgen` and commit the result", path)
		}
	}
}

// maxFuncLines is the most lines (from `func` to the closing brace) a
// function of the runner may have: a longer one is several steps that want
// names of their own (issue #17: the runner as phases).
const maxFuncLines = 80

// longFuncs are the functions TestFuncLength lets be longer, each with
// why; an entry whose function got short again must go.
var longFuncs = map[string]string{}

// TestFuncLength: no function or method in the runner's non-test Go files
// (runner/ and every package below it) is longer than maxFuncLines, but
// for the longFuncs.
func TestFuncLength(t *testing.T) {
	ws := workspace(t)
	files := sourceFiles(t, filepath.Join(ws, "runner"), func(n string) bool {
		return strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")
	})
	if len(files) == 0 {
		t.Fatalf("no Go files found below %s/runner", ws)
	}
	var long []string
	seen := map[string]bool{}
	for _, f := range files {
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			rel, _ := filepath.Rel(ws, f)
			key := filepath.ToSlash(rel) + ": " + funcName(fn)
			n := end.Line - start.Line + 1
			switch why, excepted := longFuncs[key]; {
			case excepted && n > maxFuncLines:
				t.Logf("%s:%d: %s is %d lines, let be: %s", rel, start.Line, funcName(fn), n, why)
				seen[key] = true
			case excepted:
				seen[key] = true
				t.Errorf("%s is %d lines now: remove it from longFuncs", key, n)
			case n > maxFuncLines:
				long = append(long, fmt.Sprintf("%s:%d: %s is %d lines", rel, start.Line, funcName(fn), n))
			}
		}
	}
	for key := range longFuncs {
		if !seen[key] {
			t.Errorf("longFuncs names %s, which is gone: remove it", key)
		}
	}
	if len(long) > 0 {
		t.Errorf("functions longer than %d lines (split them into named steps):\n%s", maxFuncLines, strings.Join(long, "\n"))
	}
}

// funcName is fn's name, with its receiver type for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if idx, ok := typ.(*ast.IndexExpr); ok {
		typ = idx.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
