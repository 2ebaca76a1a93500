package toolroot

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// PinKind says where a pinned artifact comes from.
type PinKind string

const (
	// PinDeb is a Debian package installed into the root with apt.
	PinDeb PinKind = "deb"
	// PinGoMod is a Bazel module fetched as a Go module through the Go module
	// proxy; its sum is checked and it is served from the local registry.
	PinGoMod PinKind = "gomod"
	// PinSysroot is a Debian package of another architecture, downloaded with
	// apt and unpacked (not installed) under SysrootDir/ARCH: multiarch
	// cannot co-install development packages such as libdpdk-dev for two
	// architectures, and a guest arch's static libraries need no dpkg state.
	PinSysroot PinKind = "sysroot"
)

// SysrootDir is where sysroot pins are unpacked inside the root, one
// directory per Debian architecture (/opt/rules_go_vm/sysroot/arm64/usr/...).
const SysrootDir = "/opt/rules_go_vm/sysroot"

// Pin is one line of tools/pins.
//
//	deb     NAME VERSION
//	sysroot DEBIAN_ARCH NAME VERSION
//	gomod   GO_MODULE_PATH VERSION H1_SUM BAZEL_MODULE_NAME
type Pin struct {
	Kind    PinKind
	Name    string // Debian package or Go module path
	Arch    string // sysroot only: the Debian architecture (arm64)
	Version string
	Sum     string // gomod only: the go.sum "h1:" hash of the module zip
	Module  string // gomod only: the Bazel module name it is served as
	Line    int    // line number in the pins file, for messages
}

// Pins is the parsed pins file.
type Pins []Pin

// ParsePins reads the pins file format: one pin a line, '#' comments, blank
// lines ignored. Every error names the file and line.
func ParsePins(name string, r io.Reader) (Pins, error) {
	var pins Pins
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		p := Pin{Kind: PinKind(f[0]), Line: n}
		switch p.Kind {
		case PinDeb:
			if len(f) != 3 {
				return nil, fmt.Errorf("%s:%d: want `deb NAME VERSION`, got %d fields", name, n, len(f))
			}
			p.Name, p.Version = f[1], f[2]
		case PinSysroot:
			if len(f) != 4 {
				return nil, fmt.Errorf("%s:%d: want `sysroot DEBIAN_ARCH NAME VERSION`, got %d fields", name, n, len(f))
			}
			p.Arch, p.Name, p.Version = f[1], f[2], f[3]
			if !debianArch.MatchString(p.Arch) {
				return nil, fmt.Errorf("%s:%d: sysroot architecture %q is not a Debian architecture name (e.g. arm64)", name, n, p.Arch)
			}
		case PinGoMod:
			if len(f) != 5 {
				return nil, fmt.Errorf("%s:%d: want `gomod GO_MODULE VERSION h1:SUM BAZEL_MODULE`, got %d fields", name, n, len(f))
			}
			p.Name, p.Version, p.Sum, p.Module = f[1], f[2], f[3], f[4]
			if !strings.HasPrefix(p.Sum, "h1:") {
				return nil, fmt.Errorf("%s:%d: sum %q must be a go.sum h1: hash (see `go mod download -json %s@%s`)", name, n, p.Sum, p.Name, p.Version)
			}
			if !strings.HasPrefix(p.Version, "v") {
				return nil, fmt.Errorf("%s:%d: Go module version %q must start with v", name, n, p.Version)
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown pin kind %q (want deb, sysroot or gomod)", name, n, f[0])
		}
		key := string(p.Kind) + " " + p.AptName()
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s pinned twice (first at line %d)", name, n, p.Name, prev)
		}
		seen[key] = n
		pins = append(pins, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pins, nil
}

// debianArch is the syntax of a Debian architecture name.
var debianArch = regexp.MustCompile(`^[a-z0-9]+$`)

// AptName is the package name as apt takes it: NAME, or NAME:ARCH for a
// sysroot pin.
func (p Pin) AptName() string {
	if p.Kind == PinSysroot {
		return p.Name + ":" + p.Arch
	}
	return p.Name
}

// ReadPins parses the pins file at path.
func ReadPins(path string) (Pins, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParsePins(path, f)
}

// OfKind returns the pins of one kind, in file order.
func (ps Pins) OfKind(k PinKind) Pins {
	var out Pins
	for _, p := range ps {
		if p.Kind == k {
			out = append(out, p)
		}
	}
	return out
}

// DebChoice is the outcome of matching a Debian pin against what apt offers.
type DebChoice struct {
	Pin     Pin
	Install string // the version to install
	Missed  bool   // the pinned version is not offered: Install is the candidate instead
}

// ChooseDeb applies the fallback policy: install the pinned version when apt
// offers it; otherwise install apt's candidate and mark the pin as missed (the
// caller says so loudly), because Debian testing drops superseded versions.
// It fails when apt offers no version at all.
func ChooseDeb(p Pin, offered []string, candidate string) (DebChoice, error) {
	for _, v := range offered {
		if v == p.Version {
			return DebChoice{Pin: p, Install: v}, nil
		}
	}
	if candidate == "" || candidate == "(none)" {
		return DebChoice{}, fmt.Errorf("package %s (pins line %d): apt offers no version at all; "+
			"run `apt-get update` in the root or check the mirror", p.Name, p.Line)
	}
	return DebChoice{Pin: p, Install: candidate, Missed: true}, nil
}

// ParseMadison reads `apt-cache madison NAME...` output into the versions offered per package.
func ParseMadison(r io.Reader) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 2 {
			continue
		}
		name, ver := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if name == "" || ver == "" {
			continue
		}
		out[name] = append(out[name], ver)
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}
