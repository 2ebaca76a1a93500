package invmcli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
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
	env := map[string]string{"INVM_KERNEL": "/k/vmlinux", "INVM_MEMORY": "512", "INVM_VERBOSE": "1"}
	getenv := func(k string) string { return env[k] }
	var stderr bytes.Buffer
	o, err := parse([]string{"-cpus", "2", "-memory", "384", "-testdata", "none", "/tmp/x.test", "-test.v=true", "-test.timeout=1m"}, getenv, &stderr)
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
	o, err = parse([]string{"-guest-hugepages", "1G:1", "-testdata", "none", "/tmp/x.test"}, getenv, &bytes.Buffer{})
	if err != nil || o.GuestHugepages.String() != "1G:1" {
		t.Errorf("-guest-hugepages: %v, %v", o.GuestHugepages, err)
	}
	if _, err := parse([]string{"-hugepages", "3M:1", "/tmp/x.test"}, getenv, &bytes.Buffer{}); !errors.Is(err, runner.ErrInvalidOptions) {
		t.Errorf("bad hugepages: %v", err)
	}
}
