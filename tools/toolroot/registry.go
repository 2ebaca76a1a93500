package toolroot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/bazelbuild/buildtools/build"
)

// RegistryModule is one module version served by the local registry.
type RegistryModule struct {
	Name    string // Bazel module name, e.g. "rules_go"
	Version string // Bazel version, e.g. "0.59.0"
	// ModuleFile is the content of the module's MODULE.bazel. WriteRegistry
	// sets the version in its module() call, as the Bazel Central Registry
	// does for modules that leave it empty.
	ModuleFile []byte
	// Path is the absolute directory holding the module's source tree.
	Path string
}

// BazelVersion turns a Go module version ("v0.59.0") into a Bazel one ("0.59.0").
func BazelVersion(goVersion string) string { return strings.TrimPrefix(goVersion, "v") }

// SetModuleVersion returns a MODULE.bazel whose module() call carries
// version (added or replaced). It fails when the file has no module() call.
func SetModuleVersion(moduleFile []byte, version string) ([]byte, error) {
	f, err := build.ParseModule("MODULE.bazel", moduleFile)
	if err != nil {
		return nil, err
	}
	for _, st := range f.Stmt {
		call, ok := st.(*build.CallExpr)
		if !ok || callName(call) != "module" {
			continue
		}
		setKwarg(call, "version", &build.StringExpr{Value: version})
		return build.Format(f), nil
	}
	return nil, errors.New("MODULE.bazel has no module(...) call")
}

// BazelDep is one non-dev bazel_dep of a MODULE.bazel file.
type BazelDep struct {
	Name, Version string
}

// BazelDeps lists the bazel_dep calls of a MODULE.bazel file, without the
// dev dependencies (which only count for the root module).
func BazelDeps(moduleFile []byte) ([]BazelDep, error) {
	f, err := build.ParseModule("MODULE.bazel", moduleFile)
	if err != nil {
		return nil, err
	}
	var deps []BazelDep
	for _, st := range f.Stmt {
		call, ok := st.(*build.CallExpr)
		if !ok || callName(call) != "bazel_dep" {
			continue
		}
		if dev, ok := kwarg(call, "dev_dependency").(*build.Ident); ok && dev.Name == "True" {
			continue
		}
		name, _ := kwarg(call, "name").(*build.StringExpr)
		ver, _ := kwarg(call, "version").(*build.StringExpr)
		if name == nil {
			continue
		}
		d := BazelDep{Name: name.Value}
		if ver != nil {
			d.Version = ver.Value
		}
		deps = append(deps, d)
	}
	return deps, nil
}

// DiscoveryOnly returns registry entries for the versions of the served
// modules that the pinned modules ask for but that are not pinned.
//
// Bazel reads the MODULE.bazel of every version any module asks for before it
// selects the highest (minimal version selection); the lower versions are
// never fetched or built. Serving each with a dependency-free MODULE.bazel
// ends the discovery walk there instead of pulling a chain of ever older
// releases (rules_go 0.59 -> gazelle 0.36 -> rules_go 0.46 -> ... -> 0.33,
// which has no MODULE.bazel at all) and yields the same selection, because
// older releases only ever ask for older versions of the served modules. A
// request above the pinned version is an error: the pin must move up.
func DiscoveryOnly(served []RegistryModule) ([]RegistryModule, error) {
	pinned := map[string]RegistryModule{}
	for _, m := range served {
		pinned[m.Name] = m
	}
	have := map[string]bool{}
	for _, m := range served {
		have[m.Name+"@"+m.Version] = true
	}
	var out []RegistryModule
	for _, m := range served {
		deps, err := BazelDeps(m.ModuleFile)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", m.Name, m.Version, err)
		}
		for _, d := range deps {
			p, ok := pinned[d.Name]
			if !ok || d.Version == "" || have[d.Name+"@"+d.Version] {
				continue
			}
			if versionLess(p.Version, d.Version) {
				return nil, fmt.Errorf("%s@%s asks for %s@%s, above the pinned %s: raise the pin in tools/pins",
					m.Name, m.Version, d.Name, d.Version, p.Version)
			}
			have[d.Name+"@"+d.Version] = true
			out = append(out, RegistryModule{
				Name:    d.Name,
				Version: d.Version,
				ModuleFile: []byte(fmt.Sprintf("# Discovery only: asked for by %s@%s, never selected (%s@%s is).\n"+
					"module(name = %q)\n", m.Name, m.Version, d.Name, p.Version, d.Name)),
				Path: p.Path,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return versionLess(out[i].Version, out[j].Version)
	})
	return out, nil
}

// versionLess compares dotted numeric versions ("0.46.0" < "0.59.0");
// non-numeric parts compare as strings.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		ai, aerr := strconv.Atoi(as[i])
		bi, berr := strconv.Atoi(bs[i])
		if aerr == nil && berr == nil {
			return ai < bi
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

func callName(c *build.CallExpr) string {
	if id, ok := c.X.(*build.Ident); ok {
		return id.Name
	}
	return ""
}

func kwarg(c *build.CallExpr, name string) build.Expr {
	for _, a := range c.List {
		if as, ok := a.(*build.AssignExpr); ok {
			if id, ok := as.LHS.(*build.Ident); ok && id.Name == name {
				return as.RHS
			}
		}
	}
	return nil
}

func setKwarg(c *build.CallExpr, name string, v build.Expr) {
	for _, a := range c.List {
		if as, ok := a.(*build.AssignExpr); ok {
			if id, ok := as.LHS.(*build.Ident); ok && id.Name == name {
				as.RHS = v
				return
			}
		}
	}
	c.List = append(c.List, &build.AssignExpr{LHS: &build.Ident{Name: name}, Op: "=", RHS: v})
}

// WriteRegistry writes a Bazel registry (the layout of the Bazel Central
// Registry, with `local_path` sources) into dir, replacing what was there:
//
//	dir/bazel_registry.json
//	dir/modules/NAME/metadata.json
//	dir/modules/NAME/VERSION/MODULE.bazel
//	dir/modules/NAME/VERSION/source.json   {"type": "local_path", "path": ...}
func WriteRegistry(dir string, mods []RegistryModule) error {
	if err := os.RemoveAll(filepath.Join(dir, "modules")); err != nil {
		return err
	}
	versions := map[string][]string{}
	for _, m := range mods {
		if m.Name == "" || m.Version == "" {
			return fmt.Errorf("registry module %+v: name and version are required", m)
		}
		if !filepath.IsAbs(m.Path) {
			return fmt.Errorf("registry module %s@%s: source path %q must be absolute", m.Name, m.Version, m.Path)
		}
		mf, err := SetModuleVersion(m.ModuleFile, m.Version)
		if err != nil {
			return fmt.Errorf("registry module %s@%s: %w", m.Name, m.Version, err)
		}
		vdir := filepath.Join(dir, "modules", m.Name, m.Version)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(vdir, "MODULE.bazel"), mf, 0o644); err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(vdir, "source.json"), map[string]string{"type": "local_path", "path": m.Path}); err != nil {
			return err
		}
		versions[m.Name] = append(versions[m.Name], m.Version)
	}
	for name, vs := range versions {
		sort.Strings(vs)
		meta := map[string]any{"versions": vs, "yanked_versions": map[string]string{}}
		if err := writeJSON(filepath.Join(dir, "modules", name, "metadata.json"), meta); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "bazel_registry.json"), map[string]any{"mirrors": []string{}})
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
