package kbuild

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// fakeObjects makes the fake make leave an "object" per build, so that a
// build tree has something in it: obj.o (newer than the sources), a
// patched-looking source and a symlink.
func fakeObjects(t *testing.T, o *Options, dir string) {
	t.Helper()
	b, err := os.ReadFile(o.Make)
	if err != nil {
		t.Fatal(err)
	}
	extra := `
case " $* " in *" vmlinux "*|*" Image "*)
  n=$(cat obj.o 2>/dev/null | wc -l); { cat obj.o 2>/dev/null; echo "build $((n+1)) $(grep -c . .config)"; } > obj.o.new; mv obj.o.new obj.o
  ln -sf obj.o link.o; echo patched > Makefile ;;
esac
`
	if err := os.WriteFile(o.Make, append(b, extra...), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestBuildFakeTree(t *testing.T) {
	o, dir := fakeToolchain(t)
	fakeObjects(t, o, dir)
	ctx := context.Background()

	// A cached entry without a tree is a miss when a tree is wanted, and
	// the rebuilt entry replaces it.
	plain, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if plain.HasTree() {
		t.Fatal("tree without Options.Tree")
	}
	o.Tree = true
	base, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if base.Cached || base.Dir != plain.Dir || !base.HasTree() || base.Manifest.Tree == nil || base.Manifest.Tree.Files < 3 {
		t.Fatalf("tree build: cached=%v dir=%s (want %s) tree=%v %+v", base.Cached, base.Dir, plain.Dir, base.HasTree(), base.Manifest.Tree)
	}
	if again, err := Build(ctx, o); err != nil || !again.Cached {
		t.Fatalf("tree build again: %v cached=%v", err, again != nil && again.Cached)
	}
	meta, err := readTreeMeta(base.Path(TreeFile))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Key != base.Manifest.Key || meta.Arch != arch.X86_64 || len(meta.Fragments) != 3 {
		t.Errorf("tree meta %+v", meta)
	}

	// An incremental build: the base tree's files are there, its
	// options are checked along with the extras.
	inc := *o
	inc.Tree = false
	inc.BaseTree = base.Path(TreeFile)
	inc.Fragments = []*kconfig.Fragment{frag(t, "extra.config", "CONFIG_NETEM=y\n")}
	r, err := Build(ctx, &inc)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached || r.Manifest.BaseKey != base.Manifest.Key || r.Manifest.BaseTreeSHA256 == "" {
		t.Errorf("incremental build manifest %+v", r.Manifest)
	}
	cfg := readFile(t, r.Path("config"))
	for _, want := range []string{"CONFIG_E1000E=y", "CONFIG_NETEM=y"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("incremental config lacks %s:\n%s", want, cfg)
		}
	}
	if frag := readFile(t, r.Path("fragment.config")); !strings.Contains(frag, "extra.config:1") || !strings.Contains(frag, "30-intel-e1000.config:3") {
		t.Errorf("incremental fragment.config does not merge base and extras:\n%s", frag)
	}
	if log := readFile(t, filepath.Join(dir, "make.log")); strings.Count(log, "tinyconfig") != 2 {
		t.Errorf("the incremental build ran tinyconfig:\n%s", log)
	}
	if r2, err := Build(ctx, &inc); err != nil || !r2.Cached || r2.Dir != r.Dir {
		t.Errorf("incremental again: %v", err)
	}

	// The object the base left is what make found (it appended a line),
	// and a build over a base tree can save its own tree.
	inc2 := inc
	inc2.Tree = true
	inc2.Fragments = []*kconfig.Fragment{frag(t, "extra.config", "CONFIG_NETEM=y\nCONFIG_X=y\n")}
	r3, err := Build(ctx, &inc2)
	if err != nil {
		t.Fatal(err)
	}
	var obj string
	if err := walkTree(r3.Path(TreeFile), func(hdr *tar.Header, rd io.Reader) (bool, error) {
		if hdr.Name == "obj.o" {
			b, err := io.ReadAll(rd)
			obj = string(b)
			return false, err
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(obj, "build ") != 2 {
		t.Errorf("obj.o of a build over the base = %q, want 2 build lines (the base's and this one's)", obj)
	}

	// A dropped extra fails naming it; so does a dropped base option.
	for _, drop := range []string{"NETEM", "E1000E"} {
		if err := os.WriteFile(filepath.Join(dir, "drop"), []byte(drop+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		bad := inc
		bad.Fragments = []*kconfig.Fragment{frag(t, "extra.config", "CONFIG_NETEM=y\n# another\n")}
		_, err := Build(ctx, &bad)
		if !errors.Is(err, kconfig.ErrNotSatisfied) || !strings.Contains(err.Error(), "CONFIG_"+drop+"=y") {
			t.Errorf("dropped %s: got %v", drop, err)
		}
	}
	os.Remove(filepath.Join(dir, "drop"))

	// Another arch's tree, or another source's, is refused.
	wrong := inc
	wrong.Arch = arch.AArch64
	if _, err := Build(ctx, &wrong); !errors.Is(err, ErrBaseTree) || !strings.Contains(err.Error(), "x86_64") {
		t.Errorf("aarch64 build on an x86_64 tree: %v", err)
	}
	other := inc
	other.Source = filepath.Join(dir, "other.tar.xz")
	if err := os.WriteFile(other.Source, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, &other); !errors.Is(err, ErrBaseTree) || !strings.Contains(err.Error(), "built from source") {
		t.Errorf("another source: %v", err)
	}
}

func TestTreeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	write := func(rel, text string, mtime time.Time) {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	write("a.c", "pristine", old)
	write("gone.c", "deleted by a patch", old)
	write("same.h", "unchanged", old)
	before, err := snapshot(src)
	if err != nil {
		t.Fatal(err)
	}
	newer := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	write("a.c", "patched", newer)
	write("dir/a.o", "object", newer.Add(time.Nanosecond))
	write("dir/.a.o.cmd", "cmd_dir/a.o := gcc -o "+src+"/dir/a.o "+src+"/a.c", newer)
	write("dir/.a.o.d", src+"/dir/a.o: "+src+"/a.c", newer)
	write("dir/other", "not a make file: "+src, newer)
	if err := os.Remove(filepath.Join(src, "gone.c")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.o", filepath.Join(src, "dir/l.o")); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, TreeFile)
	st, err := writeTree(src, before, tree, &TreeMeta{Key: "k", Arch: arch.X86_64, Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 6 {
		t.Errorf("tree has %d files, want 6 (a.c, dir/.a.o.cmd, dir/.a.o.d, dir/a.o, dir/l.o, dir/other)", st.Files)
	}
	meta, err := readTreeMeta(tree)
	if err != nil || meta.Key != "k" || len(meta.Deleted) != 1 || meta.Deleted[0] != "gone.c" {
		t.Fatalf("meta %+v, %v", meta, err)
	}

	// Over a fresh "extraction".
	dst := filepath.Join(dir, "dst")
	src = dst
	write("a.c", "pristine", old)
	write("gone.c", "deleted by a patch", old)
	write("same.h", "unchanged", old)
	if err := extractTree(tree, dst, meta); err != nil {
		t.Fatal(err)
	}
	// make's files name the new directory; other files are as they were.
	for rel, want := range map[string]string{
		"a.c": "patched", "dir/a.o": "object", "dir/l.o": "object", "same.h": "unchanged",
		"dir/.a.o.cmd": "cmd_dir/a.o := gcc -o " + dst + "/dir/a.o " + dst + "/a.c",
		"dir/.a.o.d":   dst + "/dir/a.o: " + dst + "/a.c",
		"dir/other":    "not a make file: " + filepath.Join(dir, "src"),
	} {
		if got := readFile(t, filepath.Join(dst, rel)); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "gone.c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gone.c still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, treeMetaPath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the tree's record was extracted: %v", err)
	}
	for rel, want := range map[string]time.Time{"dir/a.o": newer.Add(time.Nanosecond), "dir/.a.o.cmd": newer} {
		fi, err := os.Stat(filepath.Join(dst, rel))
		if err != nil || !fi.ModTime().Equal(want) {
			t.Errorf("%s mtime %v, want %v (nanoseconds kept)", rel, fi.ModTime(), want)
		}
	}
}

// TestPathDeclaresTools: with Make, Tar and the compiler given by name
// only, every one comes from Options.Path (ahead of $PATH), make sees that
// PATH, the manifest records Tools with their versions, and the key
// depends on the compiler's --version, not on its directory.
func TestPathDeclaresTools(t *testing.T) {
	o, dir := fakeToolchain(t)
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"make", "tar"} {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A make that also records the PATH it was given.
	mk := filepath.Join(bin, "make")
	b, err := os.ReadFile(mk)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte("echo \"PATH=$PATH\" >> "+dir+"/make.log\n")...)
	if err := os.WriteFile(mk, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "gcc"), []byte("#!/bin/sh\necho 'fake gcc 1.0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o.Make, o.Tar, o.CrossCompile = "", "", "-"
	o.Path = []string{bin}
	o.Tools = map[string]string{"cc": filepath.Join(bin, "gcc")}
	r, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(dir, "make.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "PATH="+bin+string(filepath.ListSeparator)) {
		t.Errorf("make did not get Path first in PATH:\n%s", log)
	}
	if got, want := r.Manifest.Tools["cc"], filepath.Join(bin, "gcc")+": fake gcc 1.0"; got != want {
		t.Errorf("manifest tools[cc] = %q, want %q", got, want)
	}
	if r.Manifest.CompilerVersion != "fake gcc 1.0" {
		t.Errorf("compiler version %q: not the gcc in Path", r.Manifest.CompilerVersion)
	}

	// The same compiler in another directory: the same key (a cache hit).
	other := filepath.Join(dir, "other")
	if err := os.Rename(bin, other); err != nil {
		t.Fatal(err)
	}
	o.Path = []string{other}
	again, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Manifest.Key != r.Manifest.Key {
		t.Errorf("moving the tools changed the key: cached=%v %s vs %s", again.Cached, again.Manifest.Key, r.Manifest.Key)
	}

	// A Path without the tools: the error names the missing program.
	o.Path = []string{t.TempDir()}
	t.Setenv("PATH", t.TempDir())
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "gcc") {
		t.Errorf("got %v, want an error naming the missing gcc", err)
	}
}
