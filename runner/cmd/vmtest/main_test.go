package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

func TestBazelTestArgs(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, nil},
		{map[string]string{"TESTBRIDGE_TEST_ONLY": "TestA,TestB"}, []string{"-test.run=TestA|TestB"}},
		{map[string]string{"TESTBRIDGE_TEST_ONLY": "TestA,-TestSlow,-TestB"}, []string{"-test.run=TestA", "-test.skip=TestSlow|TestB"}},
		{map[string]string{"TESTBRIDGE_TEST_RUNNER_FAIL_FAST": "1"}, []string{"-test.failfast"}},
	} {
		got := bazelTestArgs(func(k string) string { return tc.env[k] })
		if !slices.Equal(got, tc.want) {
			t.Errorf("env %v: got %q, want %q", tc.env, got, tc.want)
		}
	}
}

// writeSpec lays out a fake runfiles tree with a spec and the files it names.
func writeSpec(t *testing.T, spec string) (runfiles, specPath string) {
	t.Helper()
	runfiles = t.TempDir()
	for _, f := range []string{"_main/k/vmlinux", "_main/base.cpio", "_main/t.cpio", "_main/pkg/x_test"} {
		p := filepath.Join(runfiles, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	specPath = filepath.Join(runfiles, "_main/pkg/x.vm.json")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return runfiles, specPath
}

const goodSpec = `{"arch":"x86_64","kernel":"_main/k/vmlinux","layers":["_main/base.cpio","_main/t.cpio"],
"shape":{"accel":"auto","backend":"qemu","memory":"512M","cpus":"2","nics":[],"host_pages":"4k","guest_hugepages":"",
"iommu":"false","cmdline":["quiet"],"tcg_timeout_scale":"1","transport":"auto","mgmt_nic":""},
"env":{"B":"2","A":"1"},"args":["-test.v"],"test":"/invm/runfiles/_main/pkg/x_test","workdir":"/invm/runfiles/_main/pkg"}`

func TestOptions(t *testing.T) {
	rf, spec := writeSpec(t, goodSpec)
	env := map[string]string{
		"TEST_TIMEOUT":                "300",
		"TEST_TMPDIR":                 "/tmp/tt",
		"TEST_UNDECLARED_OUTPUTS_DIR": "/tmp/out",
		"TESTBRIDGE_TEST_ONLY":        "TestX",
	}
	o, err := options([]string{"-runfiles", rf, "-spec", spec, "--", "-test.count=1"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.TestBinary != filepath.Join(rf, "_main/pkg/x_test") || o.GuestTestPath != "/invm/runfiles/_main/pkg/x_test" {
		t.Errorf("test binary %q / guest path %q", o.TestBinary, o.GuestTestPath)
	}
	if o.BaseLayerFile != filepath.Join(rf, "_main/base.cpio") || len(o.ExtraLayers) != 1 || o.Kernel != filepath.Join(rf, "_main/k/vmlinux") {
		t.Errorf("layers %q + %q, kernel %q", o.BaseLayerFile, o.ExtraLayers, o.Kernel)
	}
	if !slices.Equal(o.Env, []string{"A=1", "B=2"}) || o.MemoryMiB != 512 || o.CPUs != 2 || o.Accel != "" {
		t.Errorf("env %q memory %d cpus %d accel %q", o.Env, o.MemoryMiB, o.CPUs, o.Accel)
	}
	args := strings.Join(o.Args, " ")
	for _, want := range []string{"-test.v", "-test.run=TestX", "-test.count=1"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "-test.timeout") {
		t.Errorf("args %q: the launcher sets no -test.timeout (the test has all of TEST_TIMEOUT, as a go_test)", args)
	}
	if !o.ExternalDeadline {
		t.Error("TEST_TIMEOUT is an external deadline: the runner must shorten the guest's timeouts by its own time")
	}
	// Bazel's SIGTERM at TEST_TIMEOUT comes first, then the guest's bound,
	// then the host's; the stacks grace fits Bazel's SIGTERM grace.
	if !(300*time.Second < o.TestTimeout && o.TestTimeout < o.Timeout) || o.StacksGrace != stacksGrace || o.KVMTestTimeout != 0 {
		t.Errorf("test timeout %v, host timeout %v, stacks %v, KVM %v: want TEST_TIMEOUT < test < host", o.TestTimeout, o.Timeout, o.StacksGrace, o.KVMTestTimeout)
	}
	if o.StateDir != "/tmp/tt/vmtest" || o.ConsoleLog != "/tmp/out/console.log" || o.OutputsDir != "/tmp/out" {
		t.Errorf("state %q console %q outputs %q", o.StateDir, o.ConsoleLog, o.OutputsDir)
	}
}

// TestOptionsCoverage: under `bazel coverage` (COVERAGE_DIR set) the guest
// test gets the coverage variables of a go_test, pointing into the guest's
// coverage directory, and the runner brings its files to COVERAGE_DIR; a
// plain run has neither.
func TestOptionsCoverage(t *testing.T) {
	rf, spec := writeSpec(t, goodSpec)
	wd, _ := os.Getwd()
	for _, tc := range []struct {
		name, dir string
		wantDir   string
		wantEnv   []string
	}{
		{"plain run", "", "", []string{"A=1", "B=2"}},
		{"coverage", "/tmp/cov", "/tmp/cov", []string{"A=1", "B=2", "COVERAGE=1", "COVERAGE_DIR=/invm/coverage", "COVERAGE_OUTPUT_FILE=" + GuestCoverageOutputFile}},
		{"relative", "_coverage", filepath.Join(wd, "_coverage"), []string{"A=1", "B=2", "COVERAGE=1", "COVERAGE_DIR=/invm/coverage", "COVERAGE_OUTPUT_FILE=" + GuestCoverageOutputFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := options([]string{"-runfiles", rf, "-spec", spec}, func(k string) string {
				return map[string]string{"COVERAGE_DIR": tc.dir}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			if o.CoverageDir != tc.wantDir || !slices.Equal(o.Env, tc.wantEnv) {
				t.Errorf("coverage dir %q, env %q; want %q, %q", o.CoverageDir, o.Env, tc.wantDir, tc.wantEnv)
			}
		})
	}
}

// TestOptionsShape checks the VM shape fields reach the runner options.
func TestOptionsShape(t *testing.T) {
	shaped := strings.NewReplacer(`"nics":[]`, `"nics":["e1000","virtio_net"]`, `"mgmt_nic":""`, `"mgmt_nic":"virtio_net"`, `"iommu":"false"`, `"iommu":"true"`,
		`"guest_hugepages":""`, `"guest_hugepages":"2M:16"`, `"host_pages":"4k"`, `"host_pages":"2M"`).Replace(goodSpec)
	rf, spec := writeSpec(t, shaped)
	o, err := options([]string{"-runfiles", rf, "-spec", spec}, func(k string) string {
		return map[string]string{"TEST_TARGET": "//pkg:x_test"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.NICs, []string{"e1000", "virtio_net"}) || !o.IOMMU || o.HostPages != "2M" ||
		o.GuestHugepages.String() != "2M:16" || o.NICSeed != "//pkg:x_test" || o.Backend != "qemu" || o.MgmtNIC != "virtio_net" {
		t.Errorf("shape: nics %q mgmt nic %q iommu %v host pages %q guest hugepages %v seed %q backend %q",
			o.NICs, o.MgmtNIC, o.IOMMU, o.HostPages, o.GuestHugepages, o.NICSeed, o.Backend)
	}
}

// TestOptionsDebug checks the .debug target's flag: console, shell, long bound.
func TestOptionsDebug(t *testing.T) {
	rf, spec := writeSpec(t, goodSpec)
	env := map[string]string{"INVM_SHELL_BUSYBOX": "/opt/bb"}
	o, err := options([]string{"-debug", "-runfiles", rf, "-spec", spec}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !o.Verbose || !o.Shell || o.ShellBusybox != "/opt/bb" || o.Timeout < DebugTimeout {
		t.Errorf("debug: verbose %v shell %v busybox %q timeout %v", o.Verbose, o.Shell, o.ShellBusybox, o.Timeout)
	}
	o, err = options([]string{"-runfiles", rf, "-spec", spec}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if o.Shell || o.Verbose {
		t.Errorf("without -debug: shell %v verbose %v", o.Shell, o.Verbose)
	}
}

func TestOptionsErrors(t *testing.T) {
	rf, spec := writeSpec(t, strings.Replace(goodSpec, `"cpus":"2"`, `"cpus":"0"`, 1))
	if _, err := options([]string{"-runfiles", rf, "-spec", spec}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), `cpus: "0" is not a whole number from 1 to 64`) {
		t.Errorf("cpus 0: got %v", err)
	}
	if _, err := options(nil, func(string) string { return "" }); err == nil {
		t.Error("no flags: want an error")
	}
}

// TestLauncherFilesReserved: every file the launcher writes into the
// undeclared outputs is a name no guest output file may take, so the two
// never collide.
func TestLauncherFilesReserved(t *testing.T) {
	for _, f := range launcherFiles {
		if !slices.Contains(protocol.ReservedOutputNames, f) {
			t.Errorf("%s is not in protocol.ReservedOutputNames: a guest file could overwrite it", f)
		}
		if err := protocol.ValidOutputPath(f); err == nil {
			t.Errorf("a guest may send %s", f)
		}
	}
}
