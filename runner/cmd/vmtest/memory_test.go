package main

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/junit"
	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

// The launcher's memory bound, checked by TestFloodMemory.
const (
	// floodBytes is how much the synthetic guest test prints.
	floodBytes = 256 << 20
	// maxFloodHWM bounds the launcher's peak RSS (VmHWM) for floodBytes.
	maxFloodHWM = 64 << 20
	// floodChildEnv makes the test binary the launcher under test.
	floodChildEnv = "VMTEST_FLOOD_CHILD"
	// hwmPrefix starts the child's report line: "vmhwm_kib=12345".
	hwmPrefix = "vmhwm_kib="
)

// Shape of the synthetic output (the rest up to floodBytes is one line
// without a newline).
const (
	floodLinesBytes = 96 << 20 // TestLines: ~100-byte lines, some on stderr
	floodLongLines  = 16       // TestLongLines: lines of floodLongLine bytes
	floodLongLine   = 2 << 20
	floodFailing    = 100_000 // TestMany: failing subtests, each with a log line
	floodPassing    = 150_000 // TestPassing: passing subtests, framing only
	// floodTests counts the tests: 5 top-level ones and the subtests.
	floodTests = 5 + floodFailing + floodPassing
)

// TestFloodMemory runs the launcher's report pipeline (newReport, its two
// streams, writeXML with the real junit) on floodBytes of test2json-framed
// guest output in a subprocess, with the launcher's own GC settings, and
// checks the subprocess's peak RSS. The output has long runs of ordinary
// lines, multi-MiB lines, 250,000 subtests and a final line of over 100 MiB
// without a newline, from a test that never finishes (the guest then dies:
// the XML reports an abnormal end).
func TestFloodMemory(t *testing.T) {
	if os.Getenv(floodChildEnv) != "" {
		floodChild(t, os.Getenv(floodChildEnv))
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is read from /proc/self/status")
	}
	if testing.Short() {
		t.Skip("prints 256 MiB")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodMemory$", "-test.v")
	// The launcher's GC settings are the defaults: none from our caller.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=")
	})
	cmd.Env = append(cmd.Env, floodChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	hwm := -1
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), hwmPrefix); ok {
			hwm, err = strconv.Atoi(v)
			if err != nil {
				t.Fatalf("child said %q: %v", l, err)
			}
		}
	}
	if hwm < 0 {
		t.Fatalf("child did not report its VmHWM:\n%s", out)
	}
	t.Logf("launcher pipeline, %d MiB of guest output: VmHWM %d KiB (%.1f MiB)", floodBytes>>20, hwm, float64(hwm)/1024)
	if hwm<<10 >= maxFloodHWM {
		t.Errorf("VmHWM %d KiB, want under %d KiB", hwm, maxFloodHWM>>10)
	}
	for _, f := range []string{"test.xml", EventsFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Logf("%s: %d MiB", f, fi.Size()>>20)
		}
	}
	checkFloodXML(t, filepath.Join(dir, "test.xml"))
}

// floodChild is the launcher: it prints its VmHWM after writing the XML.
func floodChild(t *testing.T, dir string) {
	limitMemory(os.Getenv) // as the launcher's main does
	b := bazel{xml: filepath.Join(dir, "test.xml"), outputs: dir, target: "//pkg:flood_vm_test"}
	// The plain output goes to a file, as the launcher's goes to Bazel's
	// test.log.
	log, err := os.Create(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rep := newReport(b, log, log)
	stdout := bufio.NewWriterSize(chunks{rep.stdout}, protocol.MaxChunk)
	stderr := bufio.NewWriterSize(chunks{rep.stderr}, protocol.MaxChunk)
	if err := writeFlood(stdout, stderr); err != nil {
		t.Fatal(err)
	}
	// No verdict: the guest died while TestNoNewline ran.
	if err := rep.writeXML(b, runner.Result{}, nil); err != nil {
		t.Fatal(err)
	}
	hwm, err := vmHWM()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%d\n", hwmPrefix, hwm)
}

// chunks passes writes on in pieces of at most protocol.MaxChunk, as the
// guest's output frames arrive.
type chunks struct{ w io.Writer }

func (c chunks) Write(p []byte) (int, error) {
	for n := 0; n < len(p); {
		k := min(len(p)-n, protocol.MaxChunk)
		if _, err := c.w.Write(p[n : n+k]); err != nil {
			return n, err
		}
		n += k
	}
	return len(p), nil
}

// writeFlood prints floodBytes of framed test output.
func writeFlood(stdout, stderr *bufio.Writer) error {
	written := 0
	count := func(n int, err error) {
		written += n
	}
	frame := func(format string, args ...any) {
		count(fmt.Fprintf(stdout, "\x16"+format+"\n", args...))
	}
	pad := strings.Repeat("p", 64)

	frame("=== RUN   TestLines")
	for i := 0; written < floodLinesBytes; i++ {
		w := stdout
		if i%8 == 7 {
			w = stderr
		}
		count(fmt.Fprintf(w, "    lines_test.go:10: line %09d %s\n", i, pad))
	}
	stderr.Flush()
	frame("--- FAIL: TestLines (12.34s)")

	frame("=== RUN   TestLongLines")
	long := bytes.Repeat([]byte("L"), floodLongLine)
	for range floodLongLines {
		count(stdout.Write(long))
		count(stdout.WriteString("\n"))
	}
	frame("--- FAIL: TestLongLines (1.00s)")

	frame("=== RUN   TestMany")
	for i := range floodFailing {
		frame("=== RUN   TestMany/case_%06d", i)
		count(fmt.Fprintf(stdout, "    many_test.go:7: case %d failed: got 1, want 2\n", i))
		frame("--- FAIL: TestMany/case_%06d (0.00s)", i)
	}
	frame("=== NAME  TestMany")
	frame("--- FAIL: TestMany (3.00s)")

	frame("=== RUN   TestPassing")
	for i := range floodPassing {
		frame("=== RUN   TestPassing/case_%06d", i)
		frame("--- PASS: TestPassing/case_%06d (0.00s)", i)
	}
	frame("=== NAME  TestPassing")
	frame("--- PASS: TestPassing (2.00s)")

	frame("=== RUN   TestNoNewline")
	z := bytes.Repeat([]byte("z"), protocol.MaxChunk)
	for written < floodBytes {
		count(stdout.Write(z[:min(len(z), floodBytes-written)]))
	}
	return errors.Join(stdout.Flush(), stderr.Flush())
}

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM() (int, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("VmHWM: %w", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, fmt.Errorf("VmHWM: %q: %w", l, err)
			}
			return kib, nil
		}
	}
	return 0, fmt.Errorf("VmHWM: not in /proc/self/status")
}

// checkFloodXML checks the XML says what it dropped.
func checkFloodXML(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junit.Suites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("XML: %v", err)
	}
	cases := map[string]junit.Case{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			cases[c.Name] = c
		}
	}
	for _, tc := range []struct {
		name, message string
	}{
		{"TestLines", "Failed"},
		{"TestLongLines", "Failed"},
		{"TestNoNewline", "Interrupted: no verdict from the guest"},
	} {
		c, ok := cases[tc.name]
		if !ok || c.Failure == nil {
			t.Errorf("%s: no failure in the XML", tc.name)
			continue
		}
		if c.Failure.Message != tc.message || !strings.Contains(c.Failure.Contents, "bytes of earlier output dropped") ||
			len(c.Failure.Contents) > junit.MaxOutput+1024 {
			t.Errorf("%s: message %q, %d bytes of output starting %.200q", tc.name, c.Failure.Message, len(c.Failure.Contents), c.Failure.Contents)
		}
	}
	// The first failures stay listed, with their output; later ones may
	// have lost theirs, and the tests past MaxCases are counted.
	if c := cases["TestMany/case_000000"]; c.Failure == nil || !strings.Contains(c.Failure.Contents, "case 0 failed: got 1, want 2") {
		t.Errorf("the first failing subtest lost its output: %+v", c)
	}
	listed, unlisted, noted := 0, 0, 0
	for name, c := range cases {
		var n int
		if _, err := fmt.Sscanf(name, "[rules_go_vm: %d more testcases not listed]", &n); err == nil { // junit.UnlistedName
			unlisted = n
			if c.Failure == nil || !strings.Contains(c.Failure.Message, "failed") {
				t.Errorf("%s: %+v", name, c.Failure)
			}
			continue
		}
		listed++
		if c.Failure != nil && strings.HasPrefix(c.Failure.Contents, "[rules_go_vm: ") {
			noted++
		}
	}
	if unlisted == 0 || listed+unlisted != floodTests || noted == 0 {
		t.Errorf("%d testcases listed, %d counted as unlisted, want some unlisted and %d in all; %d bodies say they were cut",
			listed, unlisted, floodTests, noted)
	}
}

// TestEventsFileBounded: test.json stops taking output events at its bound
// (a guest printing bare newlines would otherwise make it ~60 times its
// output), keeps every other event, and says how many it dropped.
func TestEventsFileBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), EventsFile)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const bound = 4 << 10
	l := newEventsLog(f, bound)
	for i := range 1000 {
		l.add(testjson.Event{Action: testjson.ActionOutput, Test: "TestFlood", Output: "\n"})
		if i%100 == 0 {
			l.add(testjson.Event{Action: testjson.ActionRun, Test: fmt.Sprintf("TestFlood/%d", i)})
		}
	}
	l.add(testjson.Event{Action: testjson.ActionFail, Test: "TestFlood"})
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 2*bound {
		t.Errorf("%s: %d bytes, bound %d", EventsFile, len(b), bound)
	}
	text := string(b)
	for _, want := range []string{`"Test":"TestFlood/900"`, `"Action":"fail"`, "output events dropped"} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %s", EventsFile, want)
		}
	}
}
