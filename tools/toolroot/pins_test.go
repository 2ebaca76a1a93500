package toolroot

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePins(t *testing.T) {
	in := `# comment
deb  bazel-bootstrap 7.7.1+ds-8+b1   # trailing comment

gomod github.com/bazelbuild/rules_go v0.59.0 h1:abc= rules_go
sysroot arm64 libdpdk-dev 25.11.4-1
deb libdpdk-dev 25.11.4-1
`
	ps, err := ParsePins("pins", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Pins{
		{Kind: PinDeb, Name: "bazel-bootstrap", Version: "7.7.1+ds-8+b1", Line: 2},
		{Kind: PinGoMod, Name: "github.com/bazelbuild/rules_go", Version: "v0.59.0", Sum: "h1:abc=", Module: "rules_go", Line: 4},
		{Kind: PinSysroot, Arch: "arm64", Name: "libdpdk-dev", Version: "25.11.4-1", Line: 5},
		{Kind: PinDeb, Name: "libdpdk-dev", Version: "25.11.4-1", Line: 6},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("got %+v\nwant %+v", ps, want)
	}
	if got := ps.OfKind(PinGoMod); len(got) != 1 || got[0].Module != "rules_go" {
		t.Errorf("OfKind(gomod) = %+v", got)
	}
	// The same package pinned natively and for a sysroot is two pins, and
	// apt names the sysroot one with its architecture.
	if got := ps.OfKind(PinSysroot); len(got) != 1 || got[0].AptName() != "libdpdk-dev:arm64" {
		t.Errorf("OfKind(sysroot) = %+v", got)
	}
	if got := ps[3].AptName(); got != "libdpdk-dev" {
		t.Errorf("deb AptName = %q", got)
	}
}

func TestParsePinsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"deb a\n", "pins:1: want `deb NAME VERSION`"},
		{"\nrpm a 1\n", "pins:2: unknown pin kind \"rpm\""},
		{"gomod m v1 sha256:x mod\n", "must be a go.sum h1: hash"},
		{"gomod m 1.0 h1:x mod\n", "must start with v"},
		{"gomod m v1 h1:x\n", "want `gomod GO_MODULE VERSION h1:SUM BAZEL_MODULE`"},
		{"deb a 1\ndeb a 2\n", "pins:2: a pinned twice (first at line 1)"},
		{"sysroot a 1\n", "want `sysroot DEBIAN_ARCH NAME VERSION`"},
		{"sysroot ARM64 a 1\n", "not a Debian architecture name"},
		{"sysroot arm64 a 1\nsysroot arm64 a 2\n", "pins:2: a pinned twice"},
	} {
		_, err := ParsePins("pins", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePins(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestChooseDeb(t *testing.T) {
	p := Pin{Kind: PinDeb, Name: "qemu-system-x86", Version: "1:11.1.2+ds-3", Line: 7}
	for _, tc := range []struct {
		name      string
		offered   []string
		candidate string
		want      DebChoice
		wantErr   bool
	}{
		{"pinned offered", []string{"1:11.1.2+ds-3", "1:11.2.0+ds-1"}, "1:11.2.0+ds-1", DebChoice{Pin: p, Install: "1:11.1.2+ds-3"}, false},
		{"pin gone: loud fallback", []string{"1:11.2.0+ds-1"}, "1:11.2.0+ds-1", DebChoice{Pin: p, Install: "1:11.2.0+ds-1", Missed: true}, false},
		{"nothing offered", nil, "", DebChoice{}, true},
	} {
		got, err := ChooseDeb(p, tc.offered, tc.candidate)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v (err %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseMadison(t *testing.T) {
	in := ` bazel-bootstrap | 7.7.1+ds-8+b1 | http://mirror forky/main amd64 Packages
qemu-system-x86 | 1:11.1.2+ds-3 | http://mirror forky/main amd64 Packages
qemu-system-x86 | 1:11.0.0+ds-1 | http://mirror forky/main amd64 Packages
garbage line
`
	got := ParseMadison(strings.NewReader(in))
	want := map[string][]string{
		"bazel-bootstrap": {"7.7.1+ds-8+b1"},
		"qemu-system-x86": {"1:11.0.0+ds-1", "1:11.1.2+ds-3"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
