//go:build gazelle_golden

// The golden tests of testdata/ without Bazel: `go test -tags gazelle_golden
// ./gazelle_invm/` builds a gazelle binary with this language (a copy of
// bazel-gazelle's cmd/gazelle from the module cache, its language list
// extended, built in a go.work with this module) and runs every case with
// gazelle's own testtools, exactly as the Bazel gazelle_generation_test
// //gazelle_invm:golden_test does. UPDATE_SNAPSHOTS=1 rewrites the expected
// files. The tag keeps it out of Bazel, which runs the same cases itself.
package gazelle_invm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bazelbuild/bazel-gazelle/testtools"
)

const goldenLangs = `package main

import (
	"github.com/bazelbuild/bazel-gazelle/language"
	"github.com/bazelbuild/bazel-gazelle/language/bazel/visibility"
	golang "github.com/bazelbuild/bazel-gazelle/language/go"
	"github.com/bazelbuild/bazel-gazelle/language/proto"
	invm "github.com/rules-go-vm/rules_go_vm/gazelle_invm"
)

var languages = []language.Language{
	visibility.NewLanguage(),
	proto.NewLanguage(),
	golang.NewLanguage(),
	invm.NewLanguage(),
}
`

// buildGazelle builds gazelle with the languages of langs (a langs.go) into
// dir and returns its path.
func buildGazelle(t testing.TB, dir, langs string) string {
	t.Helper()
	// The version this module requires (go.mod).
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/bazelbuild/bazel-gazelle").Output()
	if err != nil {
		t.Fatalf("go mod download bazel-gazelle: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download bazel-gazelle: no Dir in %s (%v)", out, err)
	}
	src := filepath.Join(dir, "bazel-gazelle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying bazel-gazelle: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	// The copy is a workspace module: its vendor directory would shadow it.
	if err := os.RemoveAll(filepath.Join(src, "vendor")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "cmd", "gazelle", "langs.go"), []byte(langs), 0o644); err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "go.work")
	if err := os.WriteFile(work, []byte("go 1.26.0\n\nuse (\n\t"+here+"\n\t"+src+"\n)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gazelle")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/bazelbuild/bazel-gazelle/cmd/gazelle")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK="+work, "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building gazelle: %v\n%s", err, out)
	}
	return bin
}

func TestGolden(t *testing.T) {
	bin := buildGazelle(t, t.TempDir(), goldenLangs)
	repoRoot, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_SNAPSHOTS") != "" {
		t.Setenv("BUILD_WORKSPACE_DIRECTORY", repoRoot)
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		abs, err := filepath.Abs(filepath.Join("testdata", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(abs, "MODULE.bazel")); err != nil {
			continue
		}
		n++
		testtools.TestGazelleGenerationOnPath(t, &testtools.TestGazelleGenerationArgs{
			Name:                 e.Name(),
			TestDataPathAbsolute: abs,
			TestDataPathRelative: strings.Join([]string{"gazelle_invm", "testdata", e.Name()}, "/"),
			GazelleBinaryPath:    bin,
			Timeout:              time.Minute,
		})
	}
	if n == 0 {
		t.Fatal("no test cases in testdata/")
	}
}

// BenchmarkFullRun measures a full gazelle run (-mode=diff, every BUILD file
// generated) over a tree of 2,000 Go packages, 10% of them with a guest test
// file, with and without the invm language, side by side in one run (the
// order alternates every iteration). It reports the ratio with/without.
//
//	go test -tags gazelle_golden -run '^$' -bench FullRun -benchtime 5x ./gazelle_invm/
func BenchmarkFullRun(b *testing.B) {
	dir := b.TempDir()
	plainLangs := strings.NewReplacer(
		"\tinvm \"github.com/rules-go-vm/rules_go_vm/gazelle_invm\"\n", "",
		"\tinvm.NewLanguage(),\n", "").Replace(goldenLangs)
	with := buildGazelle(b, filepath.Join(dir, "with"), goldenLangs)
	without := buildGazelle(b, filepath.Join(dir, "without"), plainLangs)
	tree := filepath.Join(dir, "tree")
	if err := writeTree(tree, 2000, 10); err != nil {
		b.Fatal(err)
	}
	run := func(bin string) time.Duration {
		cmd := exec.Command(bin, "-mode=diff", "-repo_root="+tree)
		cmd.Dir = tree
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		// diff mode exits 1 when there are differences, which there are.
		if err != nil && cmd.ProcessState.ExitCode() != 1 {
			b.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
		}
		if stderr.Len() > 0 && !strings.Contains(stderr.String(), "BUILD") {
			b.Fatalf("%s: %s", bin, stderr.Bytes())
		}
		return d
	}
	run(with) // warm the page cache
	run(without)
	var tWith, tWithout time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			tWith += run(with)
			tWithout += run(without)
		} else {
			tWithout += run(without)
			tWith += run(with)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(tWith.Milliseconds())/float64(b.N), "ms-with/op")
	b.ReportMetric(float64(tWithout.Milliseconds())/float64(b.N), "ms-without/op")
	b.ReportMetric(float64(tWith)/float64(tWithout), "ratio")
}

// writeTree writes a Go module of n packages (20 per directory), every
// pct-th of them with a guest test file, and a root BUILD file.
func writeTree(root string, n, pct int) error {
	files := map[string]string{
		"MODULE.bazel": "module(name = \"bench\")\n\nbazel_dep(name = \"rules_go_vm\", version = \"0.1.0\")\n",
		"BUILD.bazel":  "# gazelle:prefix example.com/bench\n# gazelle:go_naming_convention_external import\n",
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%04d", i)
		dir := fmt.Sprintf("d%02d/%s", i/20, name)
		dep := ""
		if i > 0 {
			prev := fmt.Sprintf("p%04d", i-1)
			dep = fmt.Sprintf("import %q\n\nvar _ = %s.N\n\n", fmt.Sprintf("example.com/bench/d%02d/%s", (i-1)/20, prev), prev)
		}
		files[dir+"/"+name+".go"] = fmt.Sprintf("package %s\n\n%s// N is a number.\nconst N = %d\n", name, dep, i)
		files[dir+"/"+name+"_test.go"] = fmt.Sprintf("package %s\n\nimport \"testing\"\n\nfunc TestN(t *testing.T) {\n\tif N != %d {\n\t\tt.Fatal(N)\n\t}\n}\n", name, i)
		if i%(100/pct) == 0 {
			files[dir+"/"+name+"_guest_test.go"] = fmt.Sprintf("package %s\n\n//invm:memory 512M\n//invm:nics e1000\n\nimport (\n\t\"testing\"\n\n\t\"golang.org/x/sys/unix\"\n\n\t\"github.com/rules-go-vm/rules_go_vm/invm\"\n)\n\nfunc TestGuest(t *testing.T) {\n\tinvm.Require(t)\n\t_ = unix.Getpid()\n}\n", name)
		}
	}
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
