package junit

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

// events converts test output (as printed with -test.v=test2json) to events.
func events(t *testing.T, out string) []testjson.Event {
	t.Helper()
	var es []testjson.Event
	c := testjson.New(testjson.Options{Package: "tests/x", Emit: func(e testjson.Event) { es = append(es, e) }})
	if _, err := c.Stream(nil).Write([]byte(out)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return es
}

// summary is "name=state" per case, state one of pass, fail, skip, error,
// plus the message for non-passes.
func summary(doc *Suites) []string {
	var s []string
	for _, su := range doc.Suites {
		for _, c := range su.Cases {
			switch {
			case c.Failure != nil:
				s = append(s, c.Name+"=fail:"+c.Failure.Message)
			case c.Error != nil:
				s = append(s, c.Name+"=error:"+c.Error.Message)
			case c.Skipped != nil:
				s = append(s, c.Name+"=skip")
			default:
				s = append(s, c.Name+"=pass")
			}
		}
	}
	return s
}

const (
	passing = "\x16=== RUN   TestA\n    a_test.go:1: hi\n\x16--- PASS: TestA (0.25s)\n" +
		"\x16=== RUN   TestB\n\x16=== RUN   TestB/one\n\x16--- SKIP: TestB/one (0.00s)\n    b_test.go:3: later\n" +
		"\x16=== RUN   TestB/two\n    b_test.go:4: bad\n\x16--- FAIL: TestB/two (0.01s)\n\x16=== NAME  TestB\n\x16--- FAIL: TestB (0.02s)\n\x16FAIL\n"
	panicking = "\x16=== RUN   TestP\n\x16--- FAIL: TestP (0.00s)\npanic: boom [recovered]\n\ngoroutine 7 [running]:\n"
	timingOut = "\x16=== RUN   TestOK\n\x16--- PASS: TestOK (0.00s)\n\x16=== RUN   TestHang\n\x16=== RUN   TestHang/sub\n" +
		"panic: test timed out after 1s\n\trunning tests:\n\t\tTestHang (1s)\n\t\tTestHang/sub (1s)\n\ngoroutine 3 [running]:\n"
	crashed = "\x16=== RUN   TestOK\n\x16--- PASS: TestOK (0.00s)\n\x16=== RUN   TestCrash\n\x16=== RUN   TestCrash/sub\nabout to crash\n"
)

func TestBuild(t *testing.T) {
	abort := &Abort{Reason: "guest kernel panic", Detail: "[    1.0] Kernel panic - not syncing: sysrq"}
	for _, tc := range []struct {
		name  string
		out   string
		abort *Abort
		want  []string
	}{
		{"pass fail skip subtests", passing, nil, []string{"TestA=pass", "TestB=fail:Failed", "TestB/one=skip", "TestB/two=fail:Failed"}},
		{"panic", panicking, &Abort{Reason: "test exited with code 2"}, []string{"TestP=fail:Failed"}},
		{"own timeout", timingOut, &Abort{Reason: "test exited with code 2"}, []string{"TestHang=error:Interrupted", "TestHang/sub=error:Interrupted", "TestOK=pass"}},
		{"crash mid-test", crashed, abort, []string{"TestCrash=fail:Interrupted: guest kernel panic", "TestCrash/sub=fail:Interrupted: guest kernel panic", "TestOK=pass"}},
		{"unfinished without abort", crashed, nil, []string{"TestCrash=error:No pass/skip/fail event found for test", "TestCrash/sub=error:No pass/skip/fail event found for test", "TestOK=pass"}},
		{"nothing ran", "", abort, []string{"//tests/x:x_vm_test=fail:guest kernel panic"}},
		{"all passed, then the run failed", "\x16=== RUN   TestA\n\x16--- PASS: TestA (0.00s)\n\x16PASS\n", &Abort{Reason: "leaked processes: 7 sleep"},
			[]string{"TestA=pass", "//tests/x:x_vm_test=fail:leaked processes: 7 sleep"}},
		{"nothing ran, no abort", "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := Build(events(t, tc.out), Options{Package: "tests/x", Target: "//tests/x:x_vm_test", Abort: tc.abort})
			if got := summary(doc); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("cases\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestShapeAndContents(t *testing.T) {
	abort := &Abort{Reason: "guest kernel panic", Detail: "Kernel panic - not syncing: sysrq triggered crash"}
	doc := Build(events(t, passing+crashed), Options{Package: "tests/x", Abort: abort})
	var buf bytes.Buffer
	if err := Write(&buf, doc); err != nil {
		t.Fatal(err)
	}
	// It parses back, and has the rules_go shape.
	var back Suites
	if err := xml.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.HasPrefix(buf.String(), xml.Header) {
		t.Errorf("no XML header")
	}
	byName := map[string]Suite{}
	for _, s := range back.Suites {
		byName[s.Name] = s
	}
	b := byName["tests/x.TestB"]
	if b.Tests != 3 || b.Failures != 2 || b.Skipped != 1 || b.Errors != 0 || b.Time != "0.020" {
		t.Errorf("suite TestB: %+v", b)
	}
	if c := b.Cases[2]; c.Classname != "x" || c.Name != "TestB/two" || c.Time != "0.010" || !strings.Contains(c.Failure.Contents, "b_test.go:4: bad") {
		t.Errorf("case TestB/two: %+v", c)
	}
	if c := b.Cases[1]; !strings.Contains(c.Skipped.Contents, "b_test.go:3: later") {
		t.Errorf("skip reason lost: %+v", c.Skipped)
	}
	crash := byName["tests/x.TestCrash"]
	if crash.Failures != 2 {
		t.Fatalf("suite TestCrash: %+v", crash)
	}
	sub := crash.Cases[1].Failure.Contents
	for _, want := range []string{"about to crash", "guest kernel panic", "sysrq triggered crash"} {
		if !strings.Contains(sub, want) {
			t.Errorf("TestCrash/sub failure lacks %q:\n%s", want, sub)
		}
	}
}

func TestInvalidXMLCharactersAndLongOutput(t *testing.T) {
	out := "\x16=== RUN   TestA\n\x1b[31mred\x00\n" + strings.Repeat("y", MaxOutput) + "\n\x16--- FAIL: TestA (0.00s)\n"
	var buf bytes.Buffer
	if err := Write(&buf, Build(events(t, out), Options{Package: "p"})); err != nil {
		t.Fatal(err)
	}
	var back Suites
	if err := xml.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if c := back.Suites[0].Cases[0].Failure.Contents; len(c) > MaxOutput+100 || !strings.HasPrefix(c, "[rules_go_vm: 51 bytes of earlier output dropped]\n") {
		t.Errorf("output not cut to its tail: %d bytes", len(c))
	}
}
