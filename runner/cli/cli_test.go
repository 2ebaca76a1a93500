package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
	"github.com/rules-go-vm/rules_go_vm/vmspec/vmspectest"
)

func TestTestTimeoutArg(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
		ok   bool
	}{
		{[]string{"-test.v=true", "-test.timeout=10m0s"}, 10 * time.Minute, true},
		{[]string{"--test.timeout", "3s"}, 3 * time.Second, true},
		{[]string{"-test.timeout=0s"}, 0, true},
		{[]string{"-test.run=X"}, 0, false},
	} {
		got, ok := testTimeoutArg(tc.args)
		if got != tc.want || ok != tc.ok {
			t.Errorf("testTimeoutArg(%q) = %v, %v; want %v, %v", tc.args, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParse(t *testing.T) {
	env := map[string]string{"INVM_KERNEL": "/k/vmlinux", "INVM_MEMORY": "512M", "INVM_VERBOSE": "1"}
	getenv := func(k string) string { return env[k] }
	var stderr bytes.Buffer
	o, err := parse([]string{"-cpus", "2", "-memory", "384M", "-testdata", "none", "/tmp/x.test", "-test.v=true", "-test.timeout=1m"}, getenv, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.Kernel != "/k/vmlinux" || o.MemoryMiB != 384 || o.CPUs != 2 || !o.Verbose {
		t.Errorf("flags/env: %+v", o)
	}
	if o.TestBinary != "/tmp/x.test" || len(o.Args) != 2 || o.Args[1] != "-test.timeout=1m" {
		t.Errorf("binary/args: %q %q", o.TestBinary, o.Args)
	}
	if o.TestTimeout != time.Minute+5*time.Second {
		t.Errorf("TestTimeout = %v", o.TestTimeout)
	}
	if o.TestdataDir != "" {
		t.Errorf("TestdataDir = %q with -testdata none", o.TestdataDir)
	}
	if _, err := parse(nil, getenv, &stderr); !errors.Is(err, runner.ErrInvalidOptions) {
		t.Errorf("no binary: %v", err)
	}
	if _, err := parse([]string{"-bogus", "x"}, getenv, &stderr); !errors.Is(err, runner.ErrInvalidOptions) {
		t.Errorf("bad flag: %v", err)
	}
}

func TestParseDebugAndTransport(t *testing.T) {
	env := map[string]string{"INVM_TRANSPORT": "virtio-serial"}
	o, err := parse([]string{"-outputs-dir", "/out", "-command", "/bin/busybox ls /invm", "-shell", "x.test"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Transport != "virtio-serial" || o.OutputsDir != "/out" || !o.Shell || len(o.Command) != 3 || o.Command[2] != "/invm" {
		t.Errorf("got transport %q outputs %q shell %v command %q", o.Transport, o.OutputsDir, o.Shell, o.Command)
	}
	o, err = parse([]string{"x.test"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil || o.Transport != "auto" || o.Shell || o.Command != nil {
		t.Errorf("defaults: %+v %v", o, err)
	}
}

func TestParseTestdataDefault(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "testdata"), 0o755)
	t.Chdir(dir)
	o, err := parse([]string{"x.test"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.TestdataDir != filepath.Join(dir, "testdata") {
		t.Errorf("TestdataDir = %q", o.TestdataDir)
	}
}

func TestRunUsageExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), []string{"-memory", "1", "/nonexistent.test"}, func(string) string { return "" }, &stdout, &stderr); code != runner.ExitUsage {
		t.Errorf("exit %d, want %d; stderr %s", code, runner.ExitUsage, stderr.String())
	}
}

func TestParseShapeFlags(t *testing.T) {
	env := map[string]string{"INVM_HOST_PAGES": "2M"}
	getenv := func(k string) string { return env[k] }
	o, err := parse([]string{"-nics", "e1000,virtio_net", "-mgmt-nic", "e1000e", "-hugepages", "2M:32", "-iommu", "-testdata", "none", "/tmp/x.test"}, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.NICs) != 2 || o.NICs[0] != "e1000" || o.NICs[1] != "virtio_net" || !o.IOMMU || o.HostPages != "2M" ||
		o.GuestHugepages.String() != "2M:32" || o.NICSeed != "x.test" || o.MgmtNIC != "e1000e" {
		t.Errorf("shape flags: %+v", o)
	}
	o, err = parse([]string{"-guest-hugepages", "1G:1", "-memory", "2G", "-testdata", "none", "/tmp/x.test"}, getenv, &bytes.Buffer{})
	if err != nil || o.GuestHugepages.String() != "1G:1" {
		t.Errorf("-guest-hugepages: %v, %v", o.GuestHugepages, err)
	}
	if _, err := parse([]string{"-hugepages", "3M:1", "/tmp/x.test"}, getenv, &bytes.Buffer{}); !errors.Is(err, runner.ErrInvalidOptions) {
		t.Errorf("bad hugepages: %v", err)
	}
}

// TestSpecCases feeds the shared table of VM spec cases to invm's flags,
// to its $INVM_* variables and to //invm: directives in the working
// directory: each must resolve, or fail with the case's words.
func TestSpecCases(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range vmspectest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var args []string
			env := map[string]string{}
			for _, s := range c.Settings {
				f, ok := vmspec.Lookup(s.Field)
				if !ok {
					t.Fatalf("unknown field %s", s.Field)
				}
				args = append(args, "-"+f.Flag()+"="+s.Value)
				env[f.Env()] = s.Value
			}
			var directives strings.Builder
			directives.WriteString("package x_test\n\n")
			for _, s := range c.Settings {
				fmt.Fprintf(&directives, "//invm:%s %s\n", s.Field, s.Value)
			}
			for _, door := range []struct {
				name   string
				args   []string
				env    map[string]string
				source string
			}{
				{"flags", args, nil, ""},
				{"env", nil, env, ""},
				{"directives", nil, nil, directives.String()},
			} {
				_ = os.Remove("x_test.go")
				if door.source != "" {
					if err := os.WriteFile("x_test.go", []byte(door.source), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				_, err := parse(append(door.args, "x.test"), func(k string) string { return door.env[k] }, &bytes.Buffer{})
				switch {
				case c.Error == "" && err != nil:
					t.Errorf("%s: valid case: %v", door.name, err)
				case c.Error != "" && (err == nil || !strings.Contains(err.Error(), c.Error)):
					t.Errorf("%s: error %v, want %q", door.name, err, c.Error)
				case c.Error != "" && !errors.Is(err, runner.ErrInvalidOptions):
					t.Errorf("%s: error %v is not ErrInvalidOptions", door.name, err)
				}
			}
		})
	}
}

// TestSpecPrecedence: a flag overrides $INVM_*, which overrides a
// directive; -no-directives ignores them; bad $INVM_* values fail loudly.
func TestSpecPrecedence(t *testing.T) {
	t.Chdir(t.TempDir())
	src := "package x_test\n\n//invm:memory 1G\n//invm:nics e1000\n//invm:cpus 2\n//invm:kernel //k:k\n"
	if err := os.WriteFile("x_test.go", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"INVM_CPUS": "3"}
	var stderr bytes.Buffer
	o, err := parse([]string{"-memory", "512M", "-v", "x.test"}, func(k string) string { return env[k] }, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.MemoryMiB != 512 || o.CPUs != 3 || len(o.NICs) != 1 || o.NICs[0] != "e1000" {
		t.Errorf("memory %d cpus %d nics %q: want 512 (flag), 3 (env), [e1000] (directive)", o.MemoryMiB, o.CPUs, o.NICs)
	}
	if !strings.Contains(stderr.String(), `invm: VM spec: `) || !strings.Contains(stderr.String(), `memory="512M"`) {
		t.Errorf("-v does not print the resolved spec: %q", stderr.String())
	}
	o, err = parse([]string{"-no-directives", "x.test"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil || o.MemoryMiB != 256 || len(o.NICs) != 0 {
		t.Errorf("-no-directives: memory %d nics %q (%v)", o.MemoryMiB, o.NICs, err)
	}
	for _, kv := range [][2]string{{"INVM_MEMORY", "junk"}, {"INVM_VERBOSE", "maybe"}, {"INVM_TIMEOUT", "soon"}} {
		_, err := parse([]string{"x.test"}, func(k string) string {
			if k == kv[0] {
				return kv[1]
			}
			return ""
		}, &bytes.Buffer{})
		if !errors.Is(err, runner.ErrInvalidOptions) || !strings.Contains(err.Error(), "$"+kv[0]) {
			t.Errorf("%s=%s: %v, want an error naming it", kv[0], kv[1], err)
		}
	}
	if err := os.WriteFile("y_test.go", []byte("package x_test\n\n//invm:memory 2G\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parse([]string{"x.test"}, func(string) string { return "" }, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "conflicts with") {
		t.Errorf("conflicting directives: %v", err)
	}
}
