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
	"encoding/json"
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

// buildGazelle builds gazelle (go, proto, visibility and invm languages)
// into dir and returns its path.
func buildGazelle(t testing.TB, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/bazelbuild/bazel-gazelle@v0.47.0").Output()
	if err != nil {
		t.Fatalf("go mod download bazel-gazelle: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download bazel-gazelle: no Dir in %s (%v)", out, err)
	}
	src := filepath.Join(dir, "bazel-gazelle")
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
	if err := os.WriteFile(filepath.Join(src, "cmd", "gazelle", "langs.go"), []byte(goldenLangs), 0o644); err != nil {
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
	bin := buildGazelle(t, t.TempDir())
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
