package kconfig

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func mustParse(t *testing.T, name, text string) *Fragment {
	t.Helper()
	f, err := Parse(name, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParse(t *testing.T) {
	f := mustParse(t, "base.config", `# base: comment mentioning CONFIG_FOO in text is fine
# arch: x86_64 aarch64

CONFIG_A=y
CONFIG_B=m
  CONFIG_C=n
# CONFIG_D is not set
CONFIG_E="quoted \"str\" with # hash"
CONFIG_F=16
CONFIG_G=0x1f
CONFIG_H=-3
CONFIG_I=""
`)
	want := []Option{
		{"A", "y", Pos{"base.config", 4}},
		{"B", "m", Pos{"base.config", 5}},
		{"C", "n", Pos{"base.config", 6}},
		{"D", "n", Pos{"base.config", 7}},
		{"E", `"quoted \"str\" with # hash"`, Pos{"base.config", 8}},
		{"F", "16", Pos{"base.config", 9}},
		{"G", "0x1f", Pos{"base.config", 10}},
		{"H", "-3", Pos{"base.config", 11}},
		{"I", `""`, Pos{"base.config", 12}},
	}
	if !reflect.DeepEqual(f.Options, want) {
		t.Errorf("options:\n got %v\nwant %v", f.Options, want)
	}
	if !reflect.DeepEqual(f.Arches, []string{"x86_64", "aarch64"}) {
		t.Errorf("arches %q", f.Arches)
	}
	if !f.AppliesTo("aarch64") || f.AppliesTo("riscv64") {
		t.Error("AppliesTo wrong")
	}
	if !mustParse(t, "x", "CONFIG_A=y\n").AppliesTo("riscv64") {
		t.Error("a fragment without arch directive applies everywhere")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text, pos string
	}{
		{"no value", "CONFIG_A=y\nCONFIG_B=\n", "f.config:2:"},
		{"bare word", "\n\nVIRTIO=y\n", "f.config:3:"},
		{"no prefix assignment", "A=y\n", "f.config:1:"},
		{"bad bool", "CONFIG_A=yes\n", "f.config:1:"},
		{"unterminated string", `CONFIG_A="abc` + "\n", "f.config:1:"},
		{"trailing after string", `CONFIG_A="abc" x` + "\n", "f.config:1:"},
		{"trailing comment", "CONFIG_A=y # comment\n", "f.config:1:"},
		{"spaces around =", "CONFIG_A = y\n", "f.config:1:"},
		{"not set typo", "# CONFIG_A is not sett\n", "f.config:1:"},
		{"not set without space", "#CONFIG_A is not set\n", "f.config:1:"},
		{"bad name", "CONFIG_A-B=y\n", "f.config:1:"},
		{"empty arch", "# arch:\n", "f.config:1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.config", strings.NewReader(tc.text))
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("got %v, want ErrSyntax", err)
			}
			if !strings.HasPrefix(err.Error(), tc.pos) {
				t.Errorf("error %q does not start with %q", err, tc.pos)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	base := mustParse(t, "base.config", "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=16\n")
	virtio := mustParse(t, "virtio.config", "CONFIG_B=y\nCONFIG_D=y\n")
	disable := mustParse(t, "disable.config", "# CONFIG_A is not set\nCONFIG_C=32\n")
	m := Merge(base, virtio, disable)

	want := []Option{
		{"A", "n", Pos{"disable.config", 1}},
		{"B", "y", Pos{"base.config", 2}},
		{"C", "32", Pos{"disable.config", 2}},
		{"D", "y", Pos{"virtio.config", 2}},
	}
	if !reflect.DeepEqual(m.Options, want) {
		t.Errorf("options:\n got %v\nwant %v", m.Options, want)
	}
	var conflicts []string
	for _, c := range m.Conflicts {
		conflicts = append(conflicts, c.String())
	}
	wantConflicts := []string{
		"CONFIG_A: base.config:1 sets y, disable.config:1 sets n (the later wins)",
		"CONFIG_C: base.config:3 sets 16, disable.config:2 sets 32 (the later wins)",
	}
	if !reflect.DeepEqual(conflicts, wantConflicts) {
		t.Errorf("conflicts:\n got %q\nwant %q", conflicts, wantConflicts)
	}

	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	// The written fragment parses back to the same settings.
	back := mustParse(t, "merged", buf.String())
	if got := Merge(back); len(got.Options) != len(want) || len(got.Conflicts) != 0 {
		t.Errorf("round trip: %v", got)
	}
	for i, o := range Merge(back).Options {
		if o.Name != want[i].Name || o.Value != want[i].Value {
			t.Errorf("round trip option %d: %v, want %v", i, o, want[i])
		}
	}
	if !strings.Contains(buf.String(), "# from disable.config:1\n# CONFIG_A is not set\n") {
		t.Errorf("merged fragment lacks origin comments:\n%s", buf.String())
	}
}

func TestMergeSameFileConflict(t *testing.T) {
	m := Merge(mustParse(t, "f.config", "CONFIG_A=y\nCONFIG_A=n\n"))
	if len(m.Conflicts) != 1 || m.Conflicts[0].String() != "CONFIG_A: f.config:1 sets y, f.config:2 sets n (the later wins)" {
		t.Errorf("conflicts %v", m.Conflicts)
	}
}

const finalConfig = `#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.0 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14) 12.2.0"
CONFIG_VIRTIO_PCI=y
# CONFIG_E1000E is not set
CONFIG_NR_CPUS=8
CONFIG_LOCALVERSION="-rules-go-vm"
CONFIG_PVPANIC=y
# CONFIG_MODULES is not set
`

func TestCheck(t *testing.T) {
	cfg, err := ParseConfig(".config", strings.NewReader(finalConfig))
	if err != nil {
		t.Fatal(err)
	}
	pos := Pos{"frag.config", 7}
	tests := []struct {
		name    string
		want    Option
		problem string // "" = satisfied
	}{
		{"kept y", Option{"VIRTIO_PCI", "y", pos}, ""},
		{"kept string", Option{"LOCALVERSION", `"-rules-go-vm"`, pos}, ""},
		{"kept n", Option{"MODULES", "n", pos}, ""},
		{"n absent is fine", Option{"SWAP", "n", pos}, ""},
		{"dropped to not set", Option{"E1000E", "y", pos},
			`CONFIG_E1000E=y (frag.config:7): ended up not set: a dependency is missing`},
		{"dropped absent", Option{"VIRTIO_VSOCKETS", "y", pos},
			`CONFIG_VIRTIO_VSOCKETS=y (frag.config:7): absent from the final .config: its dependencies are not met`},
		{"changed number", Option{"NR_CPUS", "16", pos},
			`CONFIG_NR_CPUS=16 (frag.config:7): ended up as 8`},
		{"n but selected", Option{"PVPANIC", "n", pos},
			`# CONFIG_PVPANIC is not set (frag.config:7): ended up as y: another option selects it`},
		{"m became y", Option{"VIRTIO_PCI", "m", pos},
			`CONFIG_VIRTIO_PCI=m (frag.config:7): ended up as y`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]Option{tc.want}, cfg)
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotSatisfied) {
				t.Fatalf("got %v, want ErrNotSatisfied", err)
			}
			var ce *CheckError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("got %#v, want one problem", err)
			}
			if !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.problem)
			}
		})
	}

	// All problems are reported at once.
	err = Check([]Option{{"E1000E", "y", pos}, {"VIRTIO_PCI", "y", pos}, {"NR_CPUS", "16", pos}}, cfg)
	var ce *CheckError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Errorf("got %v, want 2 problems", err)
	}
}

func TestLoadDir(t *testing.T) {
	fsys := fstest.MapFS{
		"90-disable.config": {Data: []byte("# CONFIG_MODULES is not set\n")},
		"00-base.config":    {Data: []byte("CONFIG_PRINTK=y\n")},
		"README.md":         {Data: []byte("not a fragment")},
		"40-x86.config":     {Data: []byte("# arch: x86_64\nCONFIG_PVH=y\n")},
	}
	frags, err := LoadDir(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range frags {
		names = append(names, f.Name)
	}
	if want := []string{"00-base.config", "40-x86.config", "90-disable.config"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if _, err := LoadDir(fstest.MapFS{}); err == nil {
		t.Error("empty dir: no error")
	}
	bad := fstest.MapFS{"a.config": {Data: []byte("CONFIG_A=y\nbogus\n")}}
	if _, err := LoadDir(bad); !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), "a.config:2:") {
		t.Errorf("got %v, want a.config:2: syntax error", err)
	}
}
