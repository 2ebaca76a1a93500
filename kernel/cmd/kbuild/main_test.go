package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/kernel/kbuild"
	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

func TestLoadFragments(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.config")
	b := filepath.Join(dir, "b.config")
	os.WriteFile(a, []byte("CONFIG_A=y\n"), 0o644)
	os.WriteFile(b, []byte("CONFIG_B=y\n"), 0o644)
	tests := []struct {
		name, spec string
		want       []string
	}{
		{"embedded", "", nil},
		{"dir", dir, []string{"a.config", "b.config"}},
		{"list keeps order", b + "," + a, []string{"b.config", "a.config"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frags, err := loadFragments(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range frags {
				names = append(names, f.Name)
			}
			if tc.want == nil {
				if len(names) < 5 || names[0] != "00-base.config" {
					t.Errorf("embedded fragments %q", names)
				}
				return
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %q, want %q", names, tc.want)
			}
		})
	}
	bad := filepath.Join(dir, "bad.config")
	os.WriteFile(bad, []byte("CONFIG_A=y\nCONFIG_B yes\n"), 0o644)
	if _, err := loadFragments(bad); !errors.Is(err, kconfig.ErrSyntax) || !strings.Contains(err.Error(), "bad.config:2") {
		t.Errorf("got %v, want bad.config:2 syntax error", err)
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"bad flag", []string{"--bogus"}, errUsage},
		{"extra args", []string{"--source", "x", "y"}, errUsage},
		{"no source", []string{"--cache", t.TempDir()}, kbuild.ErrInvalidOptions},
		{"bad arch", []string{"--arch", "mips", "--source", "/dev/null", "--cache", t.TempDir()}, kbuild.ErrInvalidOptions},
		{"patches with a base tree", []string{"--base-tree", "t.tar.gz", "--patches", "x.patch", "--source", "x"}, errUsage},
		{"missing base tree", []string{"--base-tree", "/nonexistent/tree.tar.gz", "--source", "/dev/null", "--cache", t.TempDir()}, kbuild.ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoadPatches(t *testing.T) {
	dir := t.TempDir()
	diff := []byte("--- a/x/y\n+++ b/x/y\n@@ -1 +1 @@\n-a\n+b\n")
	a := filepath.Join(dir, "0001-a.patch")
	b := filepath.Join(dir, "0002-b.patch")
	os.WriteFile(a, diff, 0o644)
	os.WriteFile(b, diff, 0o644)
	tests := []struct {
		name, spec string
		want       string
	}{
		{"embedded", "", "0001-no-init-memory-poison.patch"},
		{"none", "none", ""},
		{"dir", dir, "0001-a.patch,0002-b.patch"},
		{"list keeps order", b + "," + a, "0002-b.patch,0001-a.patch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := loadPatches(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if got := strings.Join(names, ","); tc.name == "embedded" && !strings.HasPrefix(got, tc.want) || tc.name != "embedded" && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	bad := filepath.Join(dir, "bad.patch")
	os.WriteFile(bad, []byte("words\n"), 0o644)
	if _, err := loadPatches(bad); !errors.Is(err, kbuild.ErrInvalidPatch) || !strings.Contains(err.Error(), "bad.patch") {
		t.Errorf("got %v, want an ErrInvalidPatch naming bad.patch", err)
	}
	if _, err := loadPatches(filepath.Join(dir, "missing.patch")); err == nil {
		t.Error("a missing patch file was accepted")
	}
}

// fakeBin writes executable files (and one that is not) into a directory.
func fakeBin(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "not-executable"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestResolveTools(t *testing.T) {
	bin := fakeBin(t, "make", "tar", "xz", "patch", "gcc", "aarch64-linux-gnu-gcc", "flex", "bison", "bc", "perl", "flex2", "cc")
	other := fakeBin(t, "gcc")
	all := func() map[string]string {
		m := map[string]string{}
		for _, tool := range buildTools {
			m[tool.flag] = filepath.Join(bin, tool.name)
		}
		return m
	}
	with := func(flag, path string) map[string]string {
		m := all()
		if path == "" {
			delete(m, flag)
		} else {
			m[flag] = path
		}
		return m
	}
	nothing := func(name string) (string, error) { return "", exec.ErrNotFound }
	onPath := func(name string) (string, error) { return "/on/path/" + name, nil }
	tests := []struct {
		name     string
		arch     string
		cross    string
		given    map[string]string
		cc       string
		lookPath func(string) (string, error)
		// want is a substring of the error, "" for success.
		want string
		// wantCross and wantPath are checked on success.
		wantCross string
		wantPath  []string
	}{
		{name: "all declared, x86_64", arch: "x86_64", given: all(), cc: filepath.Join(other, "gcc"), lookPath: nothing,
			wantCross: "-", wantPath: []string{other, bin}},
		{name: "all declared, aarch64 cross prefix from --cc", arch: "aarch64", given: all(), cc: filepath.Join(bin, "aarch64-linux-gnu-gcc"), lookPath: nothing,
			wantCross: "aarch64-linux-gnu-", wantPath: []string{bin}},
		{name: "left out, found on PATH", arch: "x86_64", given: map[string]string{}, lookPath: onPath, wantPath: nil},
		{name: "flex missing everywhere", arch: "x86_64", given: with("flex", ""), cc: filepath.Join(bin, "gcc"), lookPath: nothing,
			want: "no flex on PATH (it generates Kconfig's lexer): pass --flex /path/to/flex"},
		{name: "compiler missing everywhere", arch: "aarch64", given: all(), lookPath: nothing,
			want: "no aarch64-linux-gnu-gcc on PATH for an aarch64 kernel: pass --cc /path/to/aarch64-linux-gnu-gcc"},
		{name: "path does not exist", arch: "x86_64", given: with("bc", "/nonexistent/bc"), cc: filepath.Join(bin, "gcc"), lookPath: nothing,
			want: "--bc /nonexistent/bc"},
		{name: "not executable", arch: "x86_64", given: with("make", filepath.Join(bin, "not-executable")), cc: filepath.Join(bin, "gcc"), lookPath: nothing,
			want: "not an executable file"},
		{name: "tool run by name under another name", arch: "x86_64", given: with("flex", filepath.Join(bin, "flex2")), cc: filepath.Join(bin, "gcc"), lookPath: nothing,
			want: "give a path whose file name is flex"},
		{name: "compiler not named gcc", arch: "x86_64", given: all(), cc: filepath.Join(bin, "cc"), lookPath: nothing,
			want: "the file name must end in gcc"},
		{name: "--cc and --cross-compile", arch: "x86_64", cross: "x-", given: all(), cc: filepath.Join(bin, "gcc"), lookPath: nothing,
			want: "--cc and --cross-compile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := &kbuild.Options{Arch: arch.Arch(tc.arch), CrossCompile: tc.cross}
			err := resolveTools(opts, tc.given, tc.cc, tc.lookPath)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want)
				}
				if !errors.Is(err, errTool) && !errors.Is(err, errUsage) {
					t.Errorf("error %v is neither errTool nor errUsage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.CrossCompile != tc.wantCross {
				t.Errorf("CrossCompile = %q, want %q", opts.CrossCompile, tc.wantCross)
			}
			if strings.Join(opts.Path, ":") != strings.Join(tc.wantPath, ":") {
				t.Errorf("Path = %q, want %q", opts.Path, tc.wantPath)
			}
			if tc.given["make"] != "" && opts.Make != tc.given["make"] {
				t.Errorf("Make = %q, want the flag's %q", opts.Make, tc.given["make"])
			}
			if len(opts.Tools) != len(buildTools)+1 {
				t.Errorf("Tools = %v, want the compiler and all %d tools", opts.Tools, len(buildTools))
			}
		})
	}
}

func TestScratchCache(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"with --cache", []string{"--scratch-cache", "--cache", t.TempDir(), "--out", t.TempDir(), "--source", "x"}, "--scratch-cache and --cache"},
		{"without --out", []string{"--scratch-cache", "--source", "x"}, "--scratch-cache without --out"},
		{"empty tool path", []string{"--flex=", "--source", "x"}, "empty path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}

// TestScratchCacheLeavesOnlyOutputs runs kbuild with fake tools given by
// flag and --scratch-cache: the outputs land in --out, and nothing is left
// in $TMPDIR or written under $HOME (no default cache).
func TestScratchCacheLeavesOnlyOutputs(t *testing.T) {
	bin := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tar", "#!/bin/sh\nmkdir -p \"$4\" && echo extracted > \"$4/Makefile\"\n")
	write("make", `#!/bin/sh
for a in "$@"; do
  case "$a" in
  tinyconfig) echo '# tiny' > .config ;;
  olddefconfig) : ;;
  vmlinux) echo ELF > vmlinux ;;
  bzImage) mkdir -p arch/x86/boot && echo BZ > arch/x86/boot/bzImage ;;
  esac
done
mkdir -p include/config && echo 9.9.0 > include/config/kernel.release
`)
	write("gcc", "#!/bin/sh\necho 'fake gcc 1.0'\n")
	for _, n := range []string{"xz", "patch", "flex", "bison", "bc", "perl"} {
		write(n, "#!/bin/sh\necho "+n+" 1.0\n")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "linux.tar.xz")
	frag := filepath.Join(dir, "a.config")
	os.WriteFile(src, []byte("pretend tarball"), 0o644)
	os.WriteFile(frag, []byte("CONFIG_PRINTK=y\n"), 0o644)
	tmp, home, out := t.TempDir(), t.TempDir(), filepath.Join(dir, "out")
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	args := []string{"--arch", "x86_64", "--source", src, "--fragments", frag, "--patches", "none",
		"--scratch-cache", "--out", out, "--cc", filepath.Join(bin, "gcc"), "--host-cc", filepath.Join(bin, "gcc")}
	for _, n := range []string{"make", "tar", "xz", "patch", "flex", "bison", "bc", "perl"} {
		args = append(args, "--"+n, filepath.Join(bin, n))
	}
	// make's recipes (here: the fake's mkdir) find the shell utilities on
	// PATH after the tools' directory.
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, name := range []string{"vmlinux", "bzImage", "config", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("output %s: %v", name, err)
		}
	}
	for what, d := range map[string]string{"$TMPDIR": tmp, "$HOME": home} {
		if left, _ := os.ReadDir(d); len(left) != 0 {
			t.Errorf("%s holds %d entries after the build (%s...), want none", what, len(left), left[0].Name())
		}
	}
	m, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m), filepath.Join(bin, "flex")+": flex 1.0") {
		t.Errorf("manifest.json does not record the flex given by flag:\n%s", m)
	}
}
