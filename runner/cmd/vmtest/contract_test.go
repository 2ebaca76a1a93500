package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/junit"
)

func TestTimeoutBudget(t *testing.T) {
	for s := 1; s <= 4000; s++ {
		total := time.Duration(s) * time.Second
		b := timeoutBudget(total)
		// Bazel's SIGTERM at TEST_TIMEOUT comes first (the test has all of
		// it, as a go_test), then the guest's bound and its kill grace,
		// then the host's; the stacks fit in Bazel's SIGTERM grace.
		if !(total < b.Guest && b.Guest+protocol.DefaultKillGrace < b.Host) {
			t.Fatalf("TEST_TIMEOUT %v: %+v out of order", total, b)
		}
		if b.Stacks <= 0 || b.Stacks >= bazelTerminationGrace {
			t.Fatalf("TEST_TIMEOUT %v: stacks grace %v, Bazel's SIGKILL comes %v after its SIGTERM", total, b.Stacks, bazelTerminationGrace)
		}
	}
}

func TestWithTest2JSON(t *testing.T) {
	got := withTest2JSON([]string{"-test.v", "-test.run=X", "--test.v=false", "-test.v=true", "-test.count=1"})
	want := []string{"-test.v=test2json", "-test.run=X", "-test.count=1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestShardEnv(t *testing.T) {
	env := map[string]string{"TEST_TOTAL_SHARDS": "3", "TEST_SHARD_INDEX": "1", "TEST_SHARD_STATUS_FILE": "/host/path"}
	got := shardEnv(func(k string) string { return env[k] })
	want := []string{"TEST_TOTAL_SHARDS=3", "TEST_SHARD_INDEX=1", "TEST_SHARD_STATUS_FILE=" + GuestShardStatusFile}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := shardEnv(func(string) string { return "" }); got != nil {
		t.Errorf("unsharded: got %q", got)
	}
}

func TestPackageName(t *testing.T) {
	for target, want := range map[string]string{
		"//tests/x:y_vm_test":     "tests/x/y_vm_test",
		"@@//tests/x:y_vm_test":   "tests/x/y_vm_test",
		"@repo//pkg:t":            "repo/pkg/t",
		"//:root_test":            "root_test",
		"":                        "go_vm_test",
		"@@rules_go_vm~//a/b:c_d": "rules_go_vm~/a/b/c_d",
	} {
		if got := (bazel{target: target}).packageName(); got != want {
			t.Errorf("%q: got %q, want %q", target, got, want)
		}
	}
}

func TestAbortOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		res    runner.Result
		err    error
		result string
		want   string // "" = no abort
	}{
		{"pass", runner.Result{Pass: true, Verdict: &protocol.Verdict{Pass: true}}, nil, "pass", ""},
		{"plain failure", runner.Result{Verdict: &protocol.Verdict{ExitCode: 1}}, nil, "fail", ""},
		{"panic", runner.Result{Reason: "test failed with exit code 2", Verdict: &protocol.Verdict{ExitCode: 2}}, nil, "", "test failed with exit code 2"},
		{"exit 1 without FAIL", runner.Result{Verdict: &protocol.Verdict{ExitCode: 1}}, nil, "", "test exited with code 1"},
		{"leak", runner.Result{Reason: "leaked", Verdict: &protocol.Verdict{Leaked: []string{"7 sleep"}}}, nil, "pass", "leaked; leaked processes: 7 sleep"},
		{"infra", runner.Result{}, fmt.Errorf("%w: x", runner.ErrNoQEMU), "", "infrastructure failure (not the test's): no usable QEMU: x"},
		{"kernel panic in the test", runner.Result{Boot: time.Second, ConsoleTail: "Kernel panic"}, fmt.Errorf("%w: x", runner.ErrGuestPanic), "", "guest kernel panic: x"},
	} {
		a := abortOf(tc.res, tc.err, tc.result)
		got := ""
		if a != nil {
			got = a.Reason
		}
		if got != tc.want {
			t.Errorf("%s: abort %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The whole launcher, up to a runner failure before any boot (the "test
// binary" is an empty file): it still writes the XML (one failing testcase
// named after the target), the infrastructure failure file, runner.log and
// the shard status file, and leaves no link in /tmp.
func TestRunInfrastructureFailure(t *testing.T) {
	rf, spec := writeSpec(t, goodSpec)
	dir := t.TempDir()
	tmp := filepath.Join(dir, strings.Repeat("deep/", 15)) // > 60 bytes: a /tmp link is made
	env := map[string]string{
		"XML_OUTPUT_FILE":                  filepath.Join(dir, "test.xml"),
		"TEST_UNDECLARED_OUTPUTS_DIR":      dir,
		"TEST_INFRASTRUCTURE_FAILURE_FILE": filepath.Join(dir, "infra"),
		"TEST_SHARD_STATUS_FILE":           filepath.Join(dir, "shard"),
		"TEST_TOTAL_SHARDS":                "3",
		"TEST_SHARD_INDEX":                 "0",
		"TEST_TARGET":                      "//pkg:x_vm_test",
		"TEST_TMPDIR":                      tmp,
		"TEST_TIMEOUT":                     "60",
	}
	before, _ := filepath.Glob("/tmp/vmtest-*")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-runfiles", rf, "-spec", spec}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != runner.ExitUsage {
		t.Errorf("exit code %d, want %d (ErrInvalidOptions)\n%s", code, runner.ExitUsage, stderr.String())
	}
	var doc junit.Suites
	b, err := os.ReadFile(env["XML_OUTPUT_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 1 || doc.Suites[0].Cases[0].Name != "//pkg:x_vm_test" ||
		doc.Suites[0].Cases[0].Failure == nil || !strings.Contains(doc.Suites[0].Cases[0].Failure.Message, "infrastructure failure") {
		t.Errorf("XML:\n%s", b)
	}
	infra, err := os.ReadFile(env["TEST_INFRASTRUCTURE_FAILURE_FILE"])
	if err != nil || !strings.Contains(string(infra), "invalid options") {
		t.Errorf("infrastructure failure file: %q, %v", infra, err)
	}
	if _, err := os.Stat(env["TEST_SHARD_STATUS_FILE"]); err != nil {
		t.Errorf("shard status file not touched: %v", err)
	}
	if log, err := os.ReadFile(filepath.Join(dir, RunnerLog)); err != nil || !strings.Contains(string(log), "infrastructure failure true") {
		t.Errorf("runner.log: %q, %v", log, err)
	}
	after, _ := filepath.Glob("/tmp/vmtest-*")
	for _, l := range after {
		if !slices.Contains(before, l) {
			t.Errorf("link %s left behind", l)
		}
	}
}
