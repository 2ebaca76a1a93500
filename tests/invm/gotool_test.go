//go:build !bazel

// The cases here need the go tool and the source tree, which Bazel's test
// sandbox does not give: they run in `go test ./tests/invm/` only (the
// Bazel target is built with the bazel tag and leaves this file out, so
// they are absent there, not skipped).

package invm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner"
)

// TestGoTestExecHello runs tests/hello the way users do, `go test -exec
// invm`, for each guest arch that has a kernel (x86_64 is required).
func TestGoTestExecHello(t *testing.T) {
	needEnv(t)
	for _, tc := range []struct {
		arch   arch.Arch
		goarch string
	}{{arch.X86_64, "amd64"}, {arch.AArch64, "arm64"}} {
		t.Run(string(tc.arch), func(t *testing.T) {
			t.Parallel()
			kernel := env.kernel
			if tc.arch != arch.X86_64 {
				k, err := runner.FindKernel(tc.arch, runner.KernelDirs(env.cache)...)
				if err != nil {
					t.Fatalf("no %s kernel: %v", tc.arch, err)
				}
				kernel = k
			}
			vmSlots <- struct{}{}
			defer func() { <-vmSlots }()
			cmd := exec.Command("go", "test", "-count=1", "-v", "-exec", env.invm, "./tests/hello/")
			cmd.Dir = env.root
			cmd.Env = append(os.Environ(), "GOARCH="+tc.goarch, "CGO_ENABLED=0", "INVM_KERNEL="+kernel, "INVM_MODULE_ROOT="+env.root)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go test -exec invm (%s): %v\n%s", tc.arch, err, out)
			}
			for _, w := range []string{"--- PASS: TestPID1IsOurInit", "--- PASS: TestKernelIsOurs", "--- PASS: TestNotTheHost", "--- PASS: TestTestdataIsThere", "rules-go-vm " + string(tc.arch)} {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestGoTestExecDirectives: `go test -exec invm` boots the VM the test
// package's //invm: directives ask for (tests/nicgen says `//invm:nics
// e1000`), as the go_vm_test Gazelle writes for it does.
func TestGoTestExecDirectives(t *testing.T) {
	needEnv(t)
	vmSlots <- struct{}{}
	defer func() { <-vmSlots }()
	cmd := exec.Command("go", "test", "-count=1", "-v", "-exec", env.invm+" -v", "./tests/nicgen/")
	cmd.Dir = env.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "INVM_KERNEL="+env.kernel, "INVM_MODULE_ROOT="+env.root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -exec invm ./tests/nicgen/: %v\n%s", err, out)
	}
	for _, w := range []string{`nics="e1000"`, "1 //invm: directive(s)", "--- PASS: TestE1000"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestGoTestExecCoverage: `go test -exec invm -cover -coverprofile` of a
// test whose library runs only in the guest writes the profile the same
// test writes on the host (tests/coverage/covlib is deterministic), and
// -coverpkg instruments other packages run in the guest.
func TestGoTestExecCoverage(t *testing.T) {
	needEnv(t)
	dir := t.TempDir()
	goTest := func(t *testing.T, args ...string) string {
		t.Helper()
		if args[0] == "-exec" {
			vmSlots <- struct{}{}
			defer func() { <-vmSlots }()
		}
		cmd := exec.Command("go", append([]string{"test", "-count=1"}, args...)...)
		cmd.Dir = env.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "INVM_KERNEL="+env.kernel, "INVM_MODULE_ROOT="+env.root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go test %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	host, guest := filepath.Join(dir, "host.out"), filepath.Join(dir, "guest.out")
	goTest(t, "-covermode=atomic", "-coverprofile="+host, "./tests/coverage/covlib/")
	out := goTest(t, "-exec", env.invm, "-covermode=atomic", "-coverprofile="+guest, "./tests/coverage/covlib/")
	if !strings.Contains(out, "coverage: 85.7% of statements") {
		t.Errorf("go test output lacks the coverage line:\n%s", out)
	}
	if h, g := sortedLines(t, host), sortedLines(t, guest); h != g {
		t.Errorf("guest profile differs from the host's:\nhost:\n%s\nguest:\n%s", h, g)
	}
	out = goTest(t, "-exec", env.invm, "-coverpkg=./invm/", "-coverprofile="+guest, "./tests/hello/")
	if !strings.Contains(out, "of statements in ./invm/") {
		t.Errorf("-coverpkg: %s", out)
	}
	if p := sortedLines(t, guest); !strings.Contains(p, "rules_go_vm/invm/invm.go:") || !regexp.MustCompile(`invm\.go:\S+ \d+ [1-9]`).MatchString(p) {
		t.Errorf("-coverpkg profile has no hit line of package invm:\n%s", p)
	}
}

// TestGoTestExecCoverageCrash: a test binary that exits in the middle of a
// test (os.Exit(3)) writes no profile, but Go's runtime writes its counters
// to $GOCOVERDIR on the way out, and invm brings them to -test.gocoverdir.
func TestGoTestExecCoverageCrash(t *testing.T) {
	needEnv(t)
	dir := t.TempDir()
	bin, gocoverdir := filepath.Join(dir, "covlib.test"), filepath.Join(dir, "gocoverdir")
	if err := os.Mkdir(gocoverdir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "test", "-c", "-cover", "-o", bin, "./tests/coverage/covlib/")
	build.Dir, build.Env = env.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	o := runInvm(t, "", nil, "-env", "COVLIB_EXIT=3", bin, "-test.gocoverdir="+gocoverdir, "-test.coverprofile="+filepath.Join(dir, "c.out"))
	if o.code != 3 {
		t.Fatalf("exit code %d, want the test's 3\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.out")); err == nil {
		t.Error("a profile was written, but the test binary exited before writing one")
	}
	cmd := exec.Command("go", "tool", "covdata", "func", "-i="+gocoverdir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool covdata: %v\n%s", err, out)
	}
	// TestExitMidway runs Kind's fuse. branch just before it exits: only
	// counters written on the way out can show it.
	if !regexp.MustCompile(`Kind\s+85\.7%`).Match(out) {
		t.Errorf("covdata func lacks Kind at 85.7%% (the counters of the exiting test):\n%s", out)
	}
}

func sortedLines(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
