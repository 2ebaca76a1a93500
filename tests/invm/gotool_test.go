//go:build !bazel

// The cases here need the go tool and the source tree, which Bazel's test
// sandbox does not give: they run in `go test ./tests/invm/` only (the
// Bazel target is built with the bazel tag and leaves this file out, so
// they are absent there, not skipped).

package invm

import (
	"os"
	"os/exec"
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
