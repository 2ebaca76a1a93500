package kbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

// fakeToolchain writes fake tar, make and gcc scripts into a directory and
// returns Options using them. make appends every invocation to make.log;
// olddefconfig drops the options listed in $dir/drop (one name per line),
// emulating unmet dependencies.
func fakeToolchain(t *testing.T) (*Options, string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	src := write("linux-source-9.9.tar.xz", "pretend tarball")
	tar := write("tar", `#!/bin/sh
# tar -xf SRC -C DIR --strip-components=1
mkdir -p "$4" && echo extracted > "$4/Makefile"
`)
	mk := write("make", `#!/bin/sh
echo "$@" >> `+dir+`/make.log
for a in "$@"; do
  case "$a" in
  tinyconfig) printf '# tiny\n# CONFIG_MODULES is not set\nCONFIG_PRINTK=n\n' > .config ;;
  olddefconfig)
    grep -v '^#' .config | grep . > .config.new || true
    if [ -f `+dir+`/drop ]; then
      while read o; do grep -v "^CONFIG_$o=" .config.new > .config.tmp; mv .config.tmp .config.new; echo "# CONFIG_$o is not set" >> .config.new; done < `+dir+`/drop
    fi
    mv .config.new .config ;;
  vmlinux) echo ELF > vmlinux ;;
  bzImage) mkdir -p arch/x86/boot && echo BZ > arch/x86/boot/bzImage ;;
  Image) mkdir -p arch/arm64/boot && echo IMG > arch/arm64/boot/Image ;;
  esac
done
mkdir -p include/config && echo 9.9.0-rules-go-vm > include/config/kernel.release
`)
	write("fake-gcc", "#!/bin/sh\necho 'fake gcc 1.0'\n")
	frags := []*kconfig.Fragment{
		frag(t, "00-base.config", "CONFIG_PRINTK=y\nCONFIG_LOCALVERSION=\"-rules-go-vm\"\n"),
		frag(t, "30-intel-e1000.config", "\n\nCONFIG_E1000E=y\n"),
		frag(t, "90-disable.config", "# CONFIG_MODULES is not set\n"),
	}
	return &Options{
		Arch: arch.X86_64, Source: src, Fragments: frags, CacheDir: filepath.Join(dir, "cache"),
		CrossCompile: filepath.Join(dir, "fake-"), Make: mk, Tar: tar, Jobs: 2,
	}, dir
}

func TestBuildFake(t *testing.T) {
	o, dir := fakeToolchain(t)
	ctx := context.Background()
	r, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached {
		t.Error("first build reported as cached")
	}
	for name, want := range map[string]string{"vmlinux": "ELF\n", "bzImage": "BZ\n"} {
		b, err := os.ReadFile(r.Path(name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	cfg, err := os.ReadFile(r.Path("config"))
	if err != nil || !strings.Contains(string(cfg), "CONFIG_E1000E=y") {
		t.Errorf("config = %q, %v", cfg, err)
	}
	if r.Manifest.KernelRelease != "9.9.0-rules-go-vm" || r.Manifest.CompilerVersion != "fake gcc 1.0" {
		t.Errorf("manifest %+v", r.Manifest)
	}
	log1, _ := os.ReadFile(filepath.Join(dir, "make.log"))
	if want := "ARCH=x86_64 CROSS_COMPILE=" + filepath.Join(dir, "fake-") + " -j2 bzImage vmlinux\n"; !strings.HasSuffix(string(log1), want) {
		t.Errorf("make calls:\n%s\nwant last %q", log1, want)
	}

	// Cache hit: nothing runs.
	r2, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	log2, _ := os.ReadFile(filepath.Join(dir, "make.log"))
	if !r2.Cached || r2.Dir != r.Dir || string(log2) != string(log1) {
		t.Errorf("second build: cached=%v dir=%s, make ran again: %v", r2.Cached, r2.Dir, string(log2) != string(log1))
	}
	// No temporary directories left in the cache.
	ents, _ := os.ReadDir(o.CacheDir)
	if len(ents) != 1 {
		t.Errorf("cache holds %d entries, want 1", len(ents))
	}

	// A fragment change is a miss.
	o.Fragments = append(o.Fragments, frag(t, "extra.config", "CONFIG_X=y\n"))
	r3, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Cached || r3.Dir == r.Dir {
		t.Errorf("changed fragments: cached=%v dir=%s", r3.Cached, r3.Dir)
	}
}

func TestBuildFakeDroppedOption(t *testing.T) {
	o, dir := fakeToolchain(t)
	if err := os.WriteFile(filepath.Join(dir, "drop"), []byte("E1000E\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func() error{
		"Build":       func() error { _, err := Build(context.Background(), o); return err },
		"CheckConfig": func() error { return CheckConfig(context.Background(), o) },
	} {
		err := run()
		if !errors.Is(err, kconfig.ErrNotSatisfied) {
			t.Fatalf("%s: got %v, want ErrNotSatisfied", name, err)
		}
		if want := "CONFIG_E1000E=y (30-intel-e1000.config:3): ended up not set"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q\ndoes not name %q", name, err, want)
		}
	}
	ents, _ := os.ReadDir(o.CacheDir)
	if len(ents) != 0 {
		t.Errorf("failed builds left %d cache entries", len(ents))
	}
	if strings.Contains(readFile(t, filepath.Join(dir, "make.log")), "vmlinux") {
		t.Error("build ran despite the failed check")
	}
}

func TestBuildFakeStepFailure(t *testing.T) {
	o, _ := fakeToolchain(t)
	o.Tar = "/bin/false"
	_, err := Build(context.Background(), o)
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "extract") {
		t.Errorf("got %v, want ErrBuild naming the extract step", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
