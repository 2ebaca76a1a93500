// Package nestedbazel runs Bazel from inside a Bazel test, on a copy of a
// user's module that depends on this checkout (local_path_override), each
// invocation in a private output root: what //tests/e2e and //tests/remote
// share. It also reads what those invocations leave behind: the execution
// log (--execution_log_json_file) and the gRPC log (--remote_grpc_log).
//
// Test-only: every helper that can fail returns an error, and the callers
// (tests) decide; nothing here skips.
package nestedbazel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Where tools/setup puts things, and the variables that override them.
const (
	// DefaultBazelrc is the toolchain root's bazelrc (registry, caches).
	DefaultBazelrc = "/opt/rules_go_vm/bazelrc"
	// BazelEnv names the Bazel binary to run (else "bazel" on PATH).
	BazelEnv = "RULES_GO_VM_E2E_BAZEL"
	// BazelrcEnv names the startup --bazelrc (else DefaultBazelrc, if it exists).
	BazelrcEnv = "RULES_GO_VM_E2E_BAZELRC"
)

// Bazel's exit codes (bazel.build/run/scripts).
const (
	ExitOK          = 0
	ExitTestsFailed = 3
)

// ModuleOverride is the local_path_override path in a testdata module's
// MODULE.bazel (relative to the module's place in this checkout), which
// CopyTree points at the checkout under test.
const ModuleOverride = `path = "../../../.."`

// Bazel runs Bazel commands in one workspace and one output root.
type Bazel struct {
	Binary  string // the bazel binary
	Bazelrc string // startup --bazelrc; empty for none
	Root    string // --output_user_root: its own server, output base, install base
	Dir     string // the workspace the commands run in
	// Prefix starts each summary line ("e2e: bazel test ... → exit 3 in
	// 12s") written to Log; a nil Log writes none.
	Prefix string
	Log    io.Writer
}

// Find returns the Bazel binary and startup bazelrc to run: $BazelEnv,
// else "bazel" on PATH; $BazelrcEnv, else DefaultBazelrc when it exists,
// else none.
func Find() (binary, bazelrc string, err error) {
	binary = os.Getenv(BazelEnv)
	if binary == "" {
		if binary, err = exec.LookPath("bazel"); err != nil {
			return "", "", fmt.Errorf("no bazel on PATH (%w): run this test through tools/bazel, or set $%s", err, BazelEnv)
		}
	}
	bazelrc = os.Getenv(BazelrcEnv)
	if bazelrc == "" {
		if _, err := os.Stat(DefaultBazelrc); err == nil {
			bazelrc = DefaultBazelrc
		}
	}
	return binary, bazelrc, nil
}

// Command returns the command for `bazel args...` (startup options first).
func (b *Bazel) Command(args ...string) *exec.Cmd {
	startup := []string{"--output_user_root=" + b.Root}
	if b.Bazelrc != "" {
		startup = append(startup, "--bazelrc="+b.Bazelrc)
	}
	cmd := exec.Command(b.Binary, append(startup, args...)...)
	cmd.Dir = b.Dir
	return cmd
}

// Run runs `bazel args...` and returns its combined output and exit code.
// Bazel's own failures are an exit code; err is for not being able to run
// it at all.
func (b *Bazel) Run(args ...string) (out string, code int, err error) {
	cmd := b.Command(args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	code, err = ExitCode(cmd.Run())
	if err != nil {
		return buf.String(), code, fmt.Errorf("bazel %s: %w", strings.Join(args, " "), err)
	}
	b.logf("bazel %s → exit %d in %v", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	return buf.String(), code, nil
}

// Info returns `bazel info flags... key` (the last line of its output:
// Bazel may print warnings first).
func (b *Bazel) Info(key string, flags ...string) (string, error) {
	out, code, err := b.Run(append(append([]string{"info"}, flags...), key)...)
	if err != nil {
		return "", err
	}
	if code != ExitOK {
		return "", fmt.Errorf("bazel info %s: exit %d\n%s", key, code, Tail(out))
	}
	return LastLine(out), nil
}

// Shutdown stops the output root's Bazel server (a no-op when none runs).
func (b *Bazel) Shutdown() error {
	out, code, err := b.Run("shutdown")
	if err == nil && code != ExitOK {
		err = fmt.Errorf("bazel shutdown: exit %d\n%s", code, Tail(out))
	}
	return err
}

func (b *Bazel) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "%s: %s\n", b.Prefix, fmt.Sprintf(format, args...))
	}
}

// ExitCode maps a command's Wait error to its exit code; err is non-nil
// only when the command did not run to an exit (not started, I/O).
func ExitCode(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	default:
		return -1, err
	}
}

// RepoRoot finds the checkout under test through the MODULE.bazel runfile
// of the test's workspace (a symlink to the source tree: the tests using
// this run without a sandbox).
func RepoRoot() (string, error) {
	dir := os.Getenv("TEST_SRCDIR")
	if dir == "" {
		return "", errors.New("TEST_SRCDIR is not set: run this test with tools/bazel test")
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dir, os.Getenv("TEST_WORKSPACE"), "MODULE.bazel"))
	if err != nil {
		return "", fmt.Errorf("finding the checkout under test: %w", err)
	}
	return filepath.Dir(real), nil
}

// CopyTree copies the directory from into to (merging into what is there,
// so an overlay can follow a module). A MODULE.bazel at its top gets its
// ModuleOverride pointed at repo; one without it is an error.
func CopyTree(from, to, repo string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file or directory", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "MODULE.bazel" {
			if !bytes.Contains(b, []byte(ModuleOverride)) {
				return fmt.Errorf("%s: no %s to point at the checkout", p, ModuleOverride)
			}
			b = bytes.Replace(b, []byte(ModuleOverride), fmt.Appendf(nil, "path = %q", repo), 1)
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// RemoveAll deletes a tree Bazel wrote (it leaves directories read-only).
func RemoveAll(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// CheckStatus checks Bazel's test summary in out: each target reported
// with its status (PASSED, FAILED, TIMEOUT, ...; "(cached)" allowed). It
// returns one error per target that is not.
func CheckStatus(out string, want map[string]string) error {
	var errs []error
	for target, status := range want {
		re := regexp.MustCompile(regexp.QuoteMeta(target) + `\s+(\(cached\)\s+)?` + regexp.QuoteMeta(status) + `\b`)
		if !re.MatchString(out) {
			errs = append(errs, fmt.Errorf("%s is not reported %s", target, status))
		}
	}
	return errors.Join(errs...)
}

// LastLine is the last non-empty line of s, trimmed.
func LastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndex(s, "\n")+1:])
}

// tailBytes is how much of a long output Tail keeps.
const tailBytes = 6000

// Tail is the end of a long output, for error messages.
func Tail(s string) string {
	if len(s) > tailBytes {
		return "..." + s[len(s)-tailBytes:]
	}
	return s
}
