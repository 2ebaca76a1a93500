package toolroot

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const rulesGoModule = `module(
    name = "rules_go",
    compatibility_level = 0,
    repo_name = "io_bazel_rules_go",
)

bazel_dep(name = "platforms", version = "1.0.0")
bazel_dep(name = "gazelle", version = "0.36.0")
bazel_dep(name = "stardoc", version = "0.6.2", dev_dependency = True)
`

const gazelleModule = `module(
    name = "gazelle",
    version = "",
    repo_name = "bazel_gazelle",
)

bazel_dep(
    name = "rules_go",
    version = "0.53.0",
    repo_name = "io_bazel_rules_go",
)
`

func TestSetModuleVersion(t *testing.T) {
	for _, in := range []string{rulesGoModule, gazelleModule} {
		out, err := SetModuleVersion([]byte(in), "9.9.9")
		if err != nil {
			t.Fatal(err)
		}
		if c := strings.Count(string(out), `version = "9.9.9"`); c != 1 {
			t.Errorf("want exactly one version = \"9.9.9\", got %d in:\n%s", c, out)
		}
		if strings.Contains(string(out), `version = ""`) {
			t.Errorf("empty version left in:\n%s", out)
		}
	}
	if _, err := SetModuleVersion([]byte(`bazel_dep(name = "x", version = "1")`), "1"); err == nil {
		t.Error("no module() call: want an error")
	}
}

func TestBazelDeps(t *testing.T) {
	deps, err := BazelDeps([]byte(rulesGoModule))
	if err != nil {
		t.Fatal(err)
	}
	want := []BazelDep{{"platforms", "1.0.0"}, {"gazelle", "0.36.0"}}
	if len(deps) != 2 || deps[0] != want[0] || deps[1] != want[1] {
		t.Errorf("got %+v, want %+v (dev deps excluded)", deps, want)
	}
}

func TestDiscoveryOnly(t *testing.T) {
	served := []RegistryModule{
		{Name: "rules_go", Version: "0.59.0", ModuleFile: []byte(rulesGoModule), Path: "/m/rules_go"},
		{Name: "gazelle", Version: "0.47.0", ModuleFile: []byte(gazelleModule), Path: "/m/gazelle"},
	}
	extra, err := DiscoveryOnly(served)
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) != 2 || extra[0].Name != "gazelle" || extra[0].Version != "0.36.0" ||
		extra[1].Name != "rules_go" || extra[1].Version != "0.53.0" {
		t.Fatalf("got %+v", extra)
	}
	deps, err := BazelDeps(extra[0].ModuleFile)
	if err != nil || len(deps) != 0 {
		t.Errorf("discovery-only module must have no deps: %v %v", deps, err)
	}
	if extra[0].Path != "/m/gazelle" {
		t.Errorf("discovery-only path = %q, want the pinned module's", extra[0].Path)
	}

	// A request above the pin is an error.
	served[1].Version = "0.30.0"
	if _, err := DiscoveryOnly(served); err == nil || !strings.Contains(err.Error(), "raise the pin") {
		t.Errorf("request above the pin: got %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"0.46.0", "0.59.0", true},
		{"0.9.0", "0.10.0", true},
		{"0.59.0", "0.59.0", false},
		{"1.0", "1.0.1", true},
		{"29.0-rc2.bcr.1", "3.19.6", false},
	} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestWriteRegistry(t *testing.T) {
	dir := t.TempDir()
	mods := []RegistryModule{{Name: "gazelle", Version: "0.47.0", ModuleFile: []byte(gazelleModule), Path: "/opt/m/gazelle@0.47.0"}}
	if err := WriteRegistry(dir, mods); err != nil {
		t.Fatal(err)
	}
	var src map[string]string
	b, err := os.ReadFile(filepath.Join(dir, "modules/gazelle/0.47.0/source.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &src); err != nil || src["type"] != "local_path" || src["path"] != "/opt/m/gazelle@0.47.0" {
		t.Errorf("source.json = %s (%v)", b, err)
	}
	mf, _ := os.ReadFile(filepath.Join(dir, "modules/gazelle/0.47.0/MODULE.bazel"))
	if !strings.Contains(string(mf), `version = "0.47.0"`) {
		t.Errorf("MODULE.bazel lacks the version:\n%s", mf)
	}
	meta, _ := os.ReadFile(filepath.Join(dir, "modules/gazelle/metadata.json"))
	if !strings.Contains(string(meta), `"0.47.0"`) {
		t.Errorf("metadata.json = %s", meta)
	}
	if _, err := os.Stat(filepath.Join(dir, "bazel_registry.json")); err != nil {
		t.Error(err)
	}
	if err := WriteRegistry(dir, []RegistryModule{{Name: "x", Version: "1", ModuleFile: []byte(gazelleModule), Path: "rel"}}); err == nil {
		t.Error("relative path: want an error")
	}
}

func TestPrepareModule(t *testing.T) {
	src := writeFiles(t, map[string]string{
		"MODULE.bazel":       gazelleModule,
		"go/tools/run.sh":    "echo hi\n",
		"scripts/gen":        "#!/bin/sh\necho\n",
		"internal/x.go":      "package x\n",
		"nested/dir/data.md": "doc\n",
	})
	pin := Pin{Kind: PinGoMod, Name: "github.com/x/y", Version: "v1.2.3", Sum: "h1:good=", Module: "y", Line: 3}
	calls := 0
	dl := func(sum string) DownloadFunc {
		return func(path, version string) (GoModule, error) {
			calls++
			return GoModule{Path: path, Version: version, Dir: src, Sum: sum}, nil
		}
	}
	dest := t.TempDir()

	if _, err := PrepareModule(pin, PrepareOptions{Download: dl("h1:evil="), DestRoot: dest}); !errors.Is(err, ErrSumMismatch) {
		t.Fatalf("bad sum: got %v, want ErrSumMismatch", err)
	}
	pm, err := PrepareModule(pin, PrepareOptions{Download: dl("h1:good="), DestRoot: dest})
	if err != nil {
		t.Fatal(err)
	}
	if pm.Dir != filepath.Join(dest, "y@1.2.3") {
		t.Errorf("Dir = %q", pm.Dir)
	}
	for name, exec := range map[string]bool{"go/tools/run.sh": true, "scripts/gen": true, "internal/x.go": false} {
		st, err := os.Stat(filepath.Join(pm.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode()&0o111 != 0; got != exec {
			t.Errorf("%s executable = %v, want %v", name, got, exec)
		}
	}
	// A finished copy with the same sum is reused without downloading.
	before := calls
	if _, err := PrepareModule(pin, PrepareOptions{Download: dl("h1:good="), DestRoot: dest}); err != nil {
		t.Fatal(err)
	}
	if calls != before {
		t.Error("a finished copy was downloaded again")
	}
	if err := (PrepareOptions{}).Validate(); err == nil {
		t.Error("empty options: want a validation error")
	}
}
