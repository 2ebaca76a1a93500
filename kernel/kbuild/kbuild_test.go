package kbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/kernel"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

func frag(t *testing.T, name, text string) *kconfig.Fragment {
	t.Helper()
	f, err := kconfig.Parse(name, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestKey(t *testing.T) {
	base := frag(t, "base.config", "CONFIG_A=y\n")
	virtio := frag(t, "virtio.config", "CONFIG_B=y\n")
	in := KeyInputs{SourceSHA256: "aa", Arch: arch.X86_64, Fragments: []*kconfig.Fragment{base, virtio}, CompilerVersion: "gcc 12"}
	k := Key(in)
	if len(k) != 64 {
		t.Fatalf("key %q is not hex SHA-256", k)
	}
	// Stable: same inputs (fresh parses) give the same key.
	again := in
	again.Fragments = []*kconfig.Fragment{frag(t, "base.config", "CONFIG_A=y\n"), frag(t, "virtio.config", "CONFIG_B=y\n")}
	if Key(again) != k {
		t.Error("key is not stable")
	}
	// Golden value: changing the key derivation must be deliberate (bump
	// keyVersion).
	if k != goldenKey {
		t.Errorf("key = %s, want %s (bump keyVersion when the build changes)", k, goldenKey)
	}

	mutations := map[string]func(*KeyInputs){
		"source":   func(in *KeyInputs) { in.SourceSHA256 = "bb" },
		"arch":     func(in *KeyInputs) { in.Arch = arch.AArch64 },
		"compiler": func(in *KeyInputs) { in.CompilerVersion = "gcc 16" },
		"fragment content": func(in *KeyInputs) {
			in.Fragments = []*kconfig.Fragment{base, frag(t, "virtio.config", "CONFIG_B=n\n")}
		},
		"fragment comment": func(in *KeyInputs) {
			in.Fragments = []*kconfig.Fragment{base, frag(t, "virtio.config", "# x\nCONFIG_B=y\n")}
		},
		"fragment name":     func(in *KeyInputs) { in.Fragments = []*kconfig.Fragment{base, frag(t, "other.config", "CONFIG_B=y\n")} },
		"fragment order":    func(in *KeyInputs) { in.Fragments = []*kconfig.Fragment{virtio, base} },
		"fragment dropped":  func(in *KeyInputs) { in.Fragments = []*kconfig.Fragment{base} },
		"boundary shifting": func(in *KeyInputs) { in.SourceSHA256, in.CompilerVersion = "a", "agcc 12" },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			m := in
			mutate(&m)
			if Key(m) == k {
				t.Errorf("key unchanged after changing %s", name)
			}
		})
	}
}

const goldenKey = "b74364b55bccea43bbd6f2cce57d1285b6a74f63e14285bf8c9e61f698d22b3a"

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "linux-source-9.9.tar.xz")
	if err := os.WriteFile(src, []byte("not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := kconfig.LoadDir(kernel.Fragments())
	if err != nil {
		t.Fatal(err)
	}
	x86only := frag(t, "x.config", "# arch: x86_64\nCONFIG_PVH=y\n")
	good := Options{Arch: arch.X86_64, Source: src, Fragments: all, CacheDir: filepath.Join(dir, "cache")}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string // substring of the error; "" = valid
	}{
		{"valid", func(*Options) {}, ""},
		{"valid aarch64", func(o *Options) { o.Arch = arch.AArch64 }, ""},
		{"bad arch", func(o *Options) { o.Arch = "riscv64" }, `arch "riscv64"`},
		{"no source", func(o *Options) { o.Source = "" }, "no source"},
		{"missing source", func(o *Options) { o.Source = filepath.Join(dir, "nope.tar.xz") }, "no such file"},
		{"source is a dir", func(o *Options) { o.Source = dir }, "not a regular file"},
		{"no fragments", func(o *Options) { o.Fragments = nil }, "no configuration fragments"},
		{"no fragment for arch", func(o *Options) { o.Arch, o.Fragments = arch.AArch64, []*kconfig.Fragment{x86only} }, "no fragment applies"},
		{"no cache", func(o *Options) { o.CacheDir = "" }, "no cache directory"},
		{"negative jobs", func(o *Options) { o.Jobs = -1 }, "jobs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mutate(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalidOptions containing %q", err, tc.want)
			}
		})
	}
}

func TestEmbeddedFragmentsPerArch(t *testing.T) {
	all, err := kconfig.LoadDir(kernel.Fragments())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arch      arch.Arch
		must      []string
		mustNotBe []string
	}{
		{arch.X86_64, []string{"PVH", "SERIAL_8250_CONSOLE", "VIRTIO_VSOCKETS", "E1000E", "VFIO_PCI", "HUGETLBFS", "PVPANIC", "INTEL_IOMMU"}, []string{"SERIAL_AMBA_PL011", "ARM_SMMU_V3"}},
		{arch.AArch64, []string{"ARM_GIC_V3", "ARM_PSCI_FW", "SERIAL_AMBA_PL011_CONSOLE", "PCI_HOST_GENERIC", "ARM_SMMU_V3", "RTC_DRV_PL031", "VIRTIO_VSOCKETS"}, []string{"PVH", "SERIAL_8250"}},
	} {
		o := Options{Arch: tc.arch, Fragments: all}
		m := kconfig.Merge(o.applicable()...)
		if len(m.Conflicts) != 0 {
			t.Errorf("%s: fragments conflict: %v", tc.arch, m.Conflicts)
		}
		got := map[string]string{}
		for _, opt := range m.Options {
			got[opt.Name] = opt.Value
		}
		for _, n := range tc.must {
			if got[n] != "y" {
				t.Errorf("%s: CONFIG_%s = %q, want y", tc.arch, n, got[n])
			}
		}
		for _, n := range tc.mustNotBe {
			if _, ok := got[n]; ok {
				t.Errorf("%s: CONFIG_%s requested, belongs to another arch", tc.arch, n)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("ab", 32)
	if _, ok := Lookup(dir, key); ok {
		t.Fatal("hit in an empty cache")
	}
	// An entry without a manifest (never installed by Build) is a miss,
	// and so is one whose manifest names another key.
	if err := os.MkdirAll(filepath.Join(dir, key), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := Lookup(dir, key); ok {
		t.Error("hit without manifest")
	}
	if err := os.WriteFile(filepath.Join(dir, key, "manifest.json"), []byte(`{"key":"other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := Lookup(dir, key); ok {
		t.Error("hit with a foreign manifest")
	}
	if err := os.WriteFile(filepath.Join(dir, key, "manifest.json"), []byte(`{"key":"`+key+`","arch":"x86_64"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, ok := Lookup(dir, key)
	if !ok || !r.Cached || r.Path("vmlinux") != filepath.Join(dir, key, "vmlinux") {
		t.Errorf("Lookup = %+v, %v", r, ok)
	}
}

// TestBuildIntegration builds a real kernel; it takes minutes. Run with
// KBUILD_INTEGRATION=1 [KBUILD_SOURCE=/usr/src/linux-source-7.2.tar.xz]
// [KBUILD_ARCH=aarch64] [KBUILD_CACHE=dir].
func TestBuildIntegration(t *testing.T) {
	if os.Getenv("KBUILD_INTEGRATION") != "1" {
		t.Skip("set KBUILD_INTEGRATION=1 to build a real kernel")
	}
	src := os.Getenv("KBUILD_SOURCE")
	if src == "" {
		matches, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
		if len(matches) == 0 {
			t.Skip("no /usr/src/linux-source-*.tar.xz")
		}
		src = matches[len(matches)-1]
	}
	a := arch.Arch(os.Getenv("KBUILD_ARCH"))
	if a == "" {
		a = arch.X86_64
	}
	cache := os.Getenv("KBUILD_CACHE")
	if cache == "" {
		cache = t.TempDir()
	}
	all, err := kconfig.LoadDir(kernel.Fragments())
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{Arch: a, Source: src, Fragments: all, CacheDir: cache}
	r, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(Outputs(a), "config", "manifest.json") {
		if fi, err := os.Stat(r.Path(name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	again, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Dir != r.Dir {
		t.Errorf("second build: cached=%v dir=%s, want a hit in %s", again.Cached, again.Dir, r.Dir)
	}
}
