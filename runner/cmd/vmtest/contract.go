package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/junit"
	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

// Files the launcher writes into TEST_UNDECLARED_OUTPUTS_DIR, beside the
// guest test's own output files. Each is one of
// protocol.ReservedOutputNames, which no guest file may use.
const (
	// RunnerLog is the runner's diagnostics: accelerator choice, timings,
	// the result and, on failure, the report with the console tail.
	RunnerLog = "runner.log"
	// EventsFile holds the test2json events, one JSON object a line.
	EventsFile = "test.json"
	// ConsoleFile is the guest console (its head and tail, runner.ConsoleHead
	// and runner.ConsoleTail).
	ConsoleFile = "console.log"
	// CommandFile reproduces the run: the vsock daemon's and QEMU's command
	// lines.
	CommandFile = "qemu-command.txt"
)

// launcherFiles are the files above, for the reserved-name check.
var launcherFiles = []string{RunnerLog, EventsFile, ConsoleFile, CommandFile}

// GuestShardStatusFile is the TEST_SHARD_STATUS_FILE the guest test gets
// (rules_go's test main touches it and dies if it cannot).
const GuestShardStatusFile = "/tmp/.invm-shard-status"

// bazel is the part of Bazel's test environment the launcher answers to
// (besides the timeout, filter and fail-fast mapped by options).
type bazel struct {
	xml         string // XML_OUTPUT_FILE
	outputs     string // TEST_UNDECLARED_OUTPUTS_DIR
	infra       string // TEST_INFRASTRUCTURE_FAILURE_FILE
	shardStatus string // TEST_SHARD_STATUS_FILE
	shards      string // TEST_TOTAL_SHARDS
	target      string // TEST_TARGET
}

func bazelEnv(getenv func(string) string) bazel {
	return bazel{
		xml:         getenv("XML_OUTPUT_FILE"),
		outputs:     getenv("TEST_UNDECLARED_OUTPUTS_DIR"),
		infra:       getenv("TEST_INFRASTRUCTURE_FAILURE_FILE"),
		shardStatus: getenv("TEST_SHARD_STATUS_FILE"),
		shards:      getenv("TEST_TOTAL_SHARDS"),
		target:      getenv("TEST_TARGET"),
	}
}

// touchShardStatus tells Bazel the runner supports sharding.
func (b bazel) touchShardStatus() error {
	if b.shardStatus == "" || b.shards == "" {
		return nil
	}
	f, err := os.OpenFile(b.shardStatus, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("TEST_SHARD_STATUS_FILE: %w", err)
	}
	return f.Close()
}

// shardEnv forwards Bazel's shard selection into the guest: the go_test
// main rules_go generates keeps the top-level tests with index % total ==
// shard (and touches the status file, here a guest path).
func shardEnv(getenv func(string) string) []string {
	total, index := getenv("TEST_TOTAL_SHARDS"), getenv("TEST_SHARD_INDEX")
	if total == "" || index == "" {
		return nil
	}
	return []string{"TEST_TOTAL_SHARDS=" + total, "TEST_SHARD_INDEX=" + index, "TEST_SHARD_STATUS_FILE=" + GuestShardStatusFile}
}

// diagnostics returns the writer for the runner's diagnostics: stderr, and
// RunnerLog in the undeclared outputs.
func (b bazel) diagnostics(stderr io.Writer) (io.Writer, func()) {
	if b.outputs == "" {
		return stderr, func() {}
	}
	f, err := os.Create(filepath.Join(b.outputs, RunnerLog))
	if err != nil {
		fmt.Fprintln(stderr, "vmtest: runner log:", err)
		return stderr, func() {}
	}
	return io.MultiWriter(stderr, f), func() { f.Close() }
}

// packageName names the XML suites: the target's label as a path
// ("//tests/x:y_vm_test" -> "tests/x/y_vm_test").
func (b bazel) packageName() string {
	if b.target == "" {
		return "go_vm_test"
	}
	repo, label, _ := strings.Cut(strings.TrimLeft(b.target, "@"), "//")
	return strings.Trim(repo+"/"+strings.ReplaceAll(label, ":", "/"), "/")
}

// finish logs the outcome, writes the XML and the infrastructure failure
// file, and returns the exit code.
func (b bazel) finish(diag io.Writer, res runner.Result, err error, rep *report) int {
	code := runner.ExitCode(res, err)
	infra := runner.IsInfrastructure(res, err)
	if err != nil || code == runner.ExitVerdictFail || (res.Verdict != nil && res.Verdict.Signal != "") {
		// Not a plain test failure (whose output says why): explain.
		runner.WriteReport(diag, res, err)
	}
	logSummary(diag, res, err, code, infra)
	if rep != nil {
		if werr := rep.writeXML(b, res, err); werr != nil {
			fmt.Fprintln(diag, "vmtest: XML_OUTPUT_FILE:", werr)
			if code == runner.ExitPass {
				code = runner.ExitInternal
			}
		}
	}
	if infra && b.infra != "" {
		reason := "rules_go_vm runner: " + err.Error() + "\n"
		if werr := os.WriteFile(b.infra, []byte(reason), 0o644); werr != nil {
			fmt.Fprintln(diag, "vmtest: TEST_INFRASTRUCTURE_FAILURE_FILE:", werr)
		}
	}
	return code
}

// logSummary writes what ran, how long each phase took and the result.
func logSummary(w io.Writer, res runner.Result, err error, code int, infra bool) {
	if res.Accel != "" {
		fmt.Fprintf(w, "vmtest: %s guest, accel %s (%s), kernel %s, %s\n", res.Arch, res.Accel, res.AccelReason, res.Kernel, res.QEMU)
	}
	if res.Verdict != nil || res.Total > 0 {
		fmt.Fprintf(w, "vmtest: timings: %s\n", res.Timings())
	}
	switch {
	case err != nil:
		fmt.Fprintf(w, "vmtest: result: FAIL, exit code %d, infrastructure failure %v: %v\n", code, infra, err)
	case res.Pass:
		fmt.Fprintf(w, "vmtest: result: PASS\n")
	default:
		fmt.Fprintf(w, "vmtest: result: FAIL, exit code %d (the test's): %s\n", code, res.Reason)
	}
}

// report turns the guest test's output into test2json events, written to
// EventsFile as they come and taken by a junit.Builder, which keeps a
// bounded part of them for the XML.
type report struct {
	conv           *testjson.Converter
	stdout, stderr io.Writer
	xml            *junit.Builder
	jsonFile       *eventsLog
	result         string
	closed         bool
}

func newReport(b bazel, stdout, stderr io.Writer) *report {
	r := &report{xml: junit.NewBuilder()}
	if b.outputs != "" {
		if f, err := os.Create(filepath.Join(b.outputs, EventsFile)); err == nil {
			r.jsonFile = newEventsLog(f, MaxEventsFile)
		}
	}
	r.conv = testjson.New(testjson.Options{Package: b.packageName(), Now: time.Now, Emit: func(e testjson.Event) {
		r.xml.Add(e)
		if r.jsonFile != nil {
			r.jsonFile.add(e)
		}
	}})
	r.stdout, r.stderr = r.conv.Stream(stdout), r.conv.Stream(stderr)
	return r
}

func (r *report) close() {
	if !r.closed {
		r.closed = true
		r.result = r.conv.Close()
		if r.jsonFile != nil {
			_ = r.jsonFile.close()
		}
	}
}

// MaxEventsFile bounds EventsFile on disk. A test2json event costs ~120
// bytes whatever its output, so a guest printing bare newlines would
// otherwise write ~60 times what it printed; past the bound, output events
// are dropped (counted in a last output event) and the others (run, pass,
// fail: one per test) are still written.
const MaxEventsFile = 64 << 20

// eventsLog writes test2json events to a file, buffered, within a bound.
type eventsLog struct {
	f        *os.File
	w        *bufio.Writer
	enc      func(testjson.Event)
	written  countingWriter
	max      int64
	dropped  int64
	lastTime time.Time
}

func newEventsLog(f *os.File, max int64) *eventsLog {
	l := &eventsLog{f: f, w: bufio.NewWriterSize(f, 64<<10), max: max}
	l.written.w = l.w
	l.enc = testjson.Encoder(&l.written)
	return l
}

func (l *eventsLog) add(e testjson.Event) {
	l.lastTime = e.Time
	if e.Action == testjson.ActionOutput && l.written.n >= l.max {
		l.dropped++
		return
	}
	l.enc(e)
}

func (l *eventsLog) close() error {
	if l.dropped > 0 {
		l.enc(testjson.Event{Time: l.lastTime, Action: testjson.ActionOutput,
			Output: fmt.Sprintf("[rules_go_vm: %d output events dropped: %s is capped at %d bytes; test.log has all the output]\n", l.dropped, EventsFile, l.max)})
	}
	return errors.Join(l.w.Flush(), l.f.Close())
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fullOutput says where the complete output is, for the XML's notes on
// output it dropped: the test log, and the events file when there is one.
func (r *report) fullOutput() string {
	if r.jsonFile != nil && r.jsonFile.dropped == 0 {
		return "test.log and " + EventsFile
	}
	return "test.log"
}

func (r *report) writeXML(b bazel, res runner.Result, err error) error {
	r.close()
	f, ferr := os.Create(b.xml)
	if ferr != nil {
		return ferr
	}
	werr := r.xml.WriteXML(f, junit.Options{
		Package: b.packageName(), Target: b.target, Abort: abortOf(res, err, r.result), FullOutput: r.fullOutput(),
	})
	return errors.Join(werr, f.Close())
}

// abortOf says why a run ended without the test binary's complete account
// (nil when its own PASS/FAIL stands): an infrastructure error, a missing
// verdict, or a failing verdict the test's output does not explain (panic,
// timeout, signal, leaked process, exit without the final FAIL line).
func abortOf(res runner.Result, err error, result string) *junit.Abort {
	var reason, detail string
	v := res.Verdict
	switch {
	case err != nil:
		reason = err.Error()
		if runner.IsInfrastructure(res, err) {
			reason = "infrastructure failure (not the test's): " + reason
		}
		detail = consoleDetail(res)
	case v == nil:
		reason, detail = "no verdict from the guest", consoleDetail(res)
	case v.Pass:
		return nil
	case result == testjson.ActionFail && v.ExitCode == 1 && v.Signal == "" && len(v.Leaked) == 0:
		return nil // a plain test failure, told by the test's own output
	default:
		reason = verdictReason(v, res.Reason)
		if v.Signal != "" {
			detail = consoleDetail(res)
		}
	}
	return &junit.Abort{Reason: reason, Detail: detail}
}

func verdictReason(v *protocol.Verdict, reason string) string {
	if len(v.Leaked) > 0 {
		reason += "; leaked processes: " + strings.Join(v.Leaked, "; ")
	}
	if reason == "" {
		reason = fmt.Sprintf("test exited with code %d", v.ExitCode)
	}
	return reason
}

func consoleDetail(res runner.Result) string {
	var s strings.Builder
	if res.QEMUStderr != "" {
		fmt.Fprintf(&s, "QEMU said:\n%s\n", res.QEMUStderr)
	}
	if res.ConsoleTail != "" {
		fmt.Fprintf(&s, "guest console (last %d lines):\n%s\n", runner.ConsoleTailLines, res.ConsoleTail)
	}
	return s.String()
}

// verboseFlag matches the test binary's -test.v flag in any form.
var verboseFlag = regexp.MustCompile(`^--?test\.v(=.*)?$`)

// withTest2JSON makes the test frame its output for test2json
// (-test.v=test2json), replacing any -test.v the args had.
func withTest2JSON(args []string) []string {
	out := []string{"-test.v=test2json"}
	for _, a := range args {
		if !verboseFlag.MatchString(a) {
			out = append(out, a)
		}
	}
	return out
}

// budget maps Bazel's TEST_TIMEOUT to the run's bounds the way a rules_go
// go_test meets it: the test gets the whole TEST_TIMEOUT (no -test.timeout
// of the launcher's own), Bazel's SIGTERM at TEST_TIMEOUT ends it (status
// TIMEOUT) and the launcher answers the SIGTERM by having the guest test
// dump its goroutine stacks (SIGQUIT) into the log within StacksGrace,
// before Bazel's SIGKILL. The guest's and the host's own bounds only fire
// when no SIGTERM comes (the launcher run by hand), and in that order.
type budget struct {
	// Guest bounds the test process in the guest from its start (init
	// sends SIGQUIT, then SIGKILL after protocol.DefaultKillGrace):
	// TEST_TIMEOUT plus guestAfterTimeout, so Bazel's SIGTERM comes first.
	Guest time.Duration
	// Host bounds the whole run (QEMU is killed): TEST_TIMEOUT plus
	// hostAfterTimeout, after the guest's bound and its kill grace.
	Host time.Duration
	// Stacks is how long the run goes on after the SIGTERM, collecting the
	// stacks, the verdict and writing the XML: inside Bazel's grace.
	Stacks time.Duration
}

// What timeoutBudget adds to TEST_TIMEOUT.
const (
	// guestAfterTimeout puts the guest's own bound after Bazel's SIGTERM.
	guestAfterTimeout = 2 * time.Second
	// hostAfterTimeout puts the host's bound after the guest's bound, its
	// kill grace and a boot (the guest's bound counts from the test's
	// start, the host's from the launcher's).
	hostAfterTimeout = guestAfterTimeout + protocol.DefaultKillGrace + 10*time.Second
	// bazelTerminationGrace is Bazel's default --local_termination_grace_seconds:
	// SIGTERM to SIGKILL.
	bazelTerminationGrace = 15 * time.Second
	// stacksGrace is the launcher's time after the SIGTERM: the guest test's
	// stack dump, its verdict and the XML, with room to spare before the
	// SIGKILL.
	stacksGrace = bazelTerminationGrace * 2 / 3
	// launchGrace is the launcher's whole time after the SIGTERM (the
	// stacks, the run's teardown, the XML): Bazel's grace less
	// launcherExitMargin, so that the launcher exits by itself, its
	// reports written, before the SIGKILL.
	launchGrace = bazelTerminationGrace - launcherExitMargin
	// launcherExitMargin is what launchGrace leaves of Bazel's grace.
	launcherExitMargin = time.Second
)

// timeoutBudget returns the budget for a TEST_TIMEOUT of total.
func timeoutBudget(total time.Duration) budget {
	return budget{Guest: total + guestAfterTimeout, Host: total + hostAfterTimeout, Stacks: stacksGrace}
}
