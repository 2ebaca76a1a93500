// Package junit turns test2json events into the JUnit XML Bazel reads from
// XML_OUTPUT_FILE, in the shape rules_go's go_test writes: one <testsuite>
// per top-level test named "<package>.<Test>", one <testcase> per test and
// subtest (name "TestX/sub", classname the last element of the package),
// <failure message="Failed">, <skipped message="Skipped"> and <error> for a
// test interrupted by its own -test.timeout, each holding the test's output.
//
// Unlike rules_go's, it also reports runs that ended abnormally (guest
// kernel panic, QEMU death, a missing verdict, a host timeout): with an
// Abort, every test that started but never finished becomes a failure
// carrying the abort's reason and detail (the console tail), and when no
// test could be blamed, one testcase named after the target reports it, so
// a failed run never leaves an XML file that reads as a pass.
package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

// MaxOutput caps the output kept per testcase (its end is kept).
const MaxOutput = 256 << 10

// Suites is the document: <testsuites>.
type Suites struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []Suite  `xml:"testsuite"`
}

// Suite is a <testsuite>: one top-level test and its subtests.
type Suite struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Skipped  int    `xml:"skipped,attr"`
	Time     string `xml:"time,attr"`
	Cases    []Case `xml:"testcase"`
}

// Case is a <testcase>.
type Case struct {
	Classname string   `xml:"classname,attr"`
	Name      string   `xml:"name,attr"`
	Time      string   `xml:"time,attr"`
	Failure   *Message `xml:"failure,omitempty"`
	Error     *Message `xml:"error,omitempty"`
	Skipped   *Message `xml:"skipped,omitempty"`
}

// Message is the body of <failure>, <error> or <skipped>.
type Message struct {
	Message  string `xml:"message,attr"`
	Type     string `xml:"type,attr"`
	Contents string `xml:",chardata"`
}

// Abort describes a run that ended without the test binary's own account
// of every test.
type Abort struct {
	// Reason is one line: why the run ended ("guest kernel panic: ...").
	Reason string
	// Detail is appended to the output of the tests it fails (e.g. the
	// guest console tail).
	Detail string
}

// Options describe one report.
type Options struct {
	// Package names the suites ("<Package>.<Test>"); its last element is
	// every testcase's classname. For Bazel, the target's label path.
	Package string
	// Target is the testcase name used when an Abort blames no test.
	Target string
	// Abort, when set, says the run ended abnormally.
	Abort *Abort
}

const timeoutPanic = "panic: test timed out after "

type testCase struct {
	state    string // run, pass, fail, skip, interrupt
	output   strings.Builder
	elapsed  *float64
	start    time.Time
	end      time.Time
	timedOut bool
}

// Build makes the document from the events of one test binary run.
func Build(events []testjson.Event, o Options) *Suites {
	cases := map[string]*testCase{}
	get := func(name string) *testCase {
		c := cases[name]
		if c == nil {
			c = &testCase{}
			cases[name] = c
		}
		return c
	}
	var pkgOutput strings.Builder
	inTimeout, inRunning := false, false
	for _, e := range events {
		switch e.Action {
		case testjson.ActionRun:
			if e.Test != "" {
				c := get(e.Test)
				c.state, c.start = e.Action, e.Time
			}
		case testjson.ActionPass, testjson.ActionFail, testjson.ActionSkip:
			if e.Test != "" {
				c := get(e.Test)
				c.state, c.elapsed, c.end = e.Action, e.Elapsed, e.Time
				if e.Action == testjson.ActionSkip {
					c.output.WriteString(e.Output)
				}
			}
		case testjson.ActionOutput:
			// "panic: test timed out after 1s" then "running tests:" and
			// one "\t\tTestX (1s)" line per test still running.
			text := strings.TrimSpace(e.Output)
			if strings.HasPrefix(text, timeoutPanic) {
				inTimeout = true
			} else if inTimeout && text == "running tests:" {
				inRunning = true
			} else if inRunning {
				name, dur, ok := runningTest(text)
				if !ok {
					inTimeout, inRunning = false, false
				} else if c := cases[name]; c != nil {
					c.state, c.timedOut = "interrupt", true
					secs := dur.Seconds()
					c.elapsed = &secs
				}
			}
			if e.Test != "" {
				c := get(e.Test)
				c.output.WriteString(e.Output)
				c.end = e.Time
			} else {
				pkgOutput.WriteString(e.Output)
			}
		}
	}
	return toXML(cases, pkgOutput.String(), o)
}

// runningTest parses "TestX/sub (2s)".
func runningTest(text string) (string, time.Duration, bool) {
	f := strings.Fields(text)
	if len(f) != 2 || !strings.HasPrefix(f[1], "(") || !strings.HasSuffix(f[1], ")") {
		return "", 0, false
	}
	d, err := time.ParseDuration(f[1][1 : len(f[1])-1])
	return f[0], d, err == nil
}

func toXML(cases map[string]*testCase, pkgOutput string, o Options) *Suites {
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	classname := path.Base(o.Package)
	doc := &Suites{}
	index := map[string]int{}
	blamed := false
	for _, name := range names {
		c := cases[name]
		top, _, _ := strings.Cut(name, "/")
		i, ok := index[top]
		if !ok {
			i = len(doc.Suites)
			index[top] = i
			doc.Suites = append(doc.Suites, Suite{Name: o.Package + "." + top, Time: "0.000"})
		}
		s := &doc.Suites[i]
		tc := Case{Classname: classname, Name: name, Time: seconds(c.elapsed)}
		if name == top {
			d := 0.0
			if c.elapsed != nil {
				d = *c.elapsed
			}
			if !c.start.IsZero() && c.end.After(c.start) {
				d = max(d, c.end.Sub(c.start).Seconds()) // parallel subtests
			}
			s.Time = fmt.Sprintf("%.3f", d)
		}
		out := tail(c.output.String())
		switch c.state {
		case testjson.ActionPass:
		case testjson.ActionSkip:
			s.Skipped++
			tc.Skipped = &Message{Message: "Skipped", Contents: out}
		case testjson.ActionFail:
			s.Failures++
			blamed = true
			tc.Failure = &Message{Message: "Failed", Contents: out}
		case "interrupt":
			s.Errors++
			blamed = true
			tc.Error = &Message{Message: "Interrupted", Contents: out}
		default: // started, never finished
			blamed = true
			if o.Abort != nil {
				s.Failures++
				tc.Failure = &Message{Message: "Interrupted: " + o.Abort.Reason, Contents: tail(out + detail(o.Abort))}
			} else {
				s.Errors++
				tc.Error = &Message{Message: "No pass/skip/fail event found for test", Contents: out}
			}
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	if o.Abort != nil && !blamed {
		name := o.Target
		if name == "" {
			name = classname
		}
		doc.Suites = append(doc.Suites, Suite{
			Name: o.Package, Tests: 1, Failures: 1, Time: "0.000",
			Cases: []Case{{Classname: classname, Name: name, Time: "0.000", Failure: &Message{
				Message: o.Abort.Reason, Contents: tail(pkgOutput + detail(o.Abort)),
			}}},
		})
	}
	return doc
}

func detail(a *Abort) string {
	s := "\n" + a.Reason + "\n"
	if a.Detail != "" {
		s += a.Detail + "\n"
	}
	return s
}

func seconds(p *float64) string {
	if p == nil {
		return "0.000"
	}
	return fmt.Sprintf("%.3f", *p)
}

func tail(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	return "[... output cut ...]\n" + s[len(s)-MaxOutput:]
}

// Write writes doc as indented XML with the XML header.
func Write(w io.Writer, doc *Suites) error {
	b, err := xml.MarshalIndent(doc, "", "\t")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%s\n", xml.Header, b)
	return err
}
