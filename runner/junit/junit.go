// Package junit turns test2json events into the JUnit XML Bazel reads from
// XML_OUTPUT_FILE, in the shape rules_go's go_test writes: one <testsuite>
// per top-level test named "<package>.<Test>", one <testcase> per test and
// subtest (name "TestX/sub", classname the last element of the package),
// <failure message="Failed">, <skipped message="Skipped"> and <error> for a
// test interrupted by its own -test.timeout, each holding the test's output.
//
// It does two things rules_go's bzltestutil cannot.
//
// It reports runs that ended abnormally (guest kernel panic, QEMU death, a
// missing verdict, a host timeout): with an Abort, every test that started
// but never finished becomes a failure carrying the abort's reason and
// detail (the console tail), and when no test could be blamed, one testcase
// named after the target reports it, so a failed run never leaves an XML
// file that reads as a pass.
//
// Its memory is bounded whatever the test prints (bzltestutil buffers the
// whole test2json stream, then every test's whole output): a Builder takes
// the events as they come and keeps, per testcase, its state and timing but
// only the end of its output (MaxOutput); at most MaxTotalOutput of output
// over all testcases (a passed test's goes at once: a pass shows none); and
// at most MaxCases testcases (MaxNameBytes of names), the others counted in
// one testcase that says so. A body that lost output starts with a note
// saying how many bytes it lost and where the full output is
// ("[rules_go_vm: 1234 bytes of earlier output dropped; full output in
// test.log]"). WriteXML writes the document one testcase at a time.
package junit

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"iter"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

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
	// FullOutput says where the complete output is (e.g. "test.log"), for
	// the note in bodies that lost some; empty leaves it unsaid.
	FullOutput string
}

// Build makes the document from the events of one test binary run.
func Build(events []testjson.Event, o Options) *Suites {
	b := NewBuilder()
	for _, e := range events {
		b.Add(e)
	}
	return b.Doc(o)
}

// Doc returns the whole document. It holds every body at once: WriteXML
// writes the same in less memory.
func (b *Builder) Doc(o Options) *Suites {
	doc := &Suites{}
	for s, cases := range b.suites(o) {
		for c := range cases {
			s.Cases = append(s.Cases, c)
		}
		doc.Suites = append(doc.Suites, s)
	}
	return doc
}

// WriteXML writes the document as Write would write Doc's, making one
// testcase at a time.
func (b *Builder) WriteXML(w io.Writer, o Options) error {
	return write(w, b.suites(o))
}

func topOf(name string) string {
	top, _, _ := strings.Cut(name, "/")
	return top
}

// suites yields the document's suites in order, each with its counts and
// time but no testcases: ranging over the second value makes them.
func (b *Builder) suites(o Options) iter.Seq2[Suite, iter.Seq[Case]] {
	return func(yield func(Suite, iter.Seq[Case]) bool) {
		names := b.sortedNames()
		classname := path.Base(o.Package)
		blamed := false
		for len(names) > 0 {
			top := topOf(names[0])
			n := 1
			for n < len(names) && topOf(names[n]) == top {
				n++
			}
			group := names[:n]
			names = names[n:]
			s, blames := b.suite(o, top, group)
			blamed = blamed || blames
			cases := func(yield func(Case) bool) {
				for _, name := range group {
					if !yield(b.testcase(name, classname, o)) {
						return
					}
				}
			}
			if !yield(s, cases) {
				return
			}
		}
		if s, own := b.ownSuite(o, classname, blamed); len(own) > 0 {
			yield(s, slices.Values(own))
		}
	}
}

// sortedNames lists the testcases by top-level test, then name.
func (b *Builder) sortedNames() []string {
	names := make([]string, 0, len(b.cases))
	for n := range b.cases {
		names = append(names, n)
	}
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(strings.Compare(topOf(x), topOf(y)), strings.Compare(x, y))
	})
	return names
}

// suite counts the <testsuite> of top-level test top (its testcases are
// group) and reports whether it blames a test for the run's end.
func (b *Builder) suite(o Options, top string, group []string) (Suite, bool) {
	s := Suite{Name: o.Package + "." + top, Time: "0.000"}
	blamed := false
	for _, name := range group {
		c := b.cases[name]
		s.Tests++
		switch c.state {
		case statePass:
		case stateSkip:
			s.Skipped++
		case stateFail:
			s.Failures++
			blamed = true
		case stateInterrupt:
			s.Errors++
			blamed = true
		default:
			blamed = true
			if o.Abort != nil {
				s.Failures++
			} else {
				s.Errors++
			}
		}
		if name == top {
			d := 0.0
			if c.hasElapsed {
				d = c.elapsed
			}
			if c.start != 0 && c.end > c.start {
				d = max(d, float64(c.end-c.start)/float64(time.Second)) // parallel subtests
			}
			s.Time = fmt.Sprintf("%.3f", d)
		}
	}
	return s, blamed
}

// ownSuite is the target's own suite: the tests past MaxCases, and an
// abort no test was blamed for (none when both are absent).
func (b *Builder) ownSuite(o Options, classname string, blamed bool) (Suite, []Case) {
	var own []Case
	if u := b.over; u.started > 0 {
		c := Case{Classname: classname, Name: fmt.Sprintf(UnlistedName, u.started), Time: "0.000"}
		if u.failed > 0 || u.unfinished() > 0 {
			blamed = true
			msg := &Message{Message: fmt.Sprintf("%d tests past the limit of %d testcases not listed: %d passed, %d failed, %d skipped, %d unfinished; %d bytes of their output dropped",
				u.started, b.lim.cases, u.passed, u.failed, u.skipped, u.unfinished(), u.dropped)}
			if u.unfinished() > 0 && o.Abort != nil {
				msg.Message = "Interrupted: " + o.Abort.Reason + "; " + msg.Message
				msg.Contents = detail(o.Abort)
			}
			c.Failure = msg
		}
		own = append(own, c)
	}
	if o.Abort != nil && !blamed {
		name := o.Target
		if name == "" {
			name = classname
		}
		own = append(own, Case{Classname: classname, Name: name, Time: "0.000", Failure: &Message{
			Message: o.Abort.Reason, Contents: b.body(&b.pkg, detail(o.Abort), o),
		}})
	}
	s := Suite{Name: o.Package, Tests: len(own), Time: "0.000"}
	for _, c := range own {
		if c.Failure != nil {
			s.Failures++
		}
	}
	return s, own
}

// testcase makes the <testcase> of a listed test.
func (b *Builder) testcase(name, classname string, o Options) Case {
	c := b.cases[name]
	tc := Case{Classname: classname, Name: name, Time: "0.000"}
	if c.hasElapsed {
		tc.Time = fmt.Sprintf("%.3f", c.elapsed)
	}
	switch c.state {
	case statePass:
	case stateSkip:
		tc.Skipped = &Message{Message: "Skipped", Contents: b.body(c, "", o)}
	case stateFail:
		tc.Failure = &Message{Message: "Failed", Contents: b.body(c, "", o)}
	case stateInterrupt:
		tc.Error = &Message{Message: "Interrupted", Contents: b.body(c, "", o)}
	default: // started, never finished
		if o.Abort != nil {
			tc.Failure = &Message{Message: "Interrupted: " + o.Abort.Reason, Contents: b.body(c, detail(o.Abort), o)}
		} else {
			tc.Error = &Message{Message: "No pass/skip/fail event found for test", Contents: b.body(c, "", o)}
		}
	}
	return tc
}

func detail(a *Abort) string {
	s := "\n" + a.Reason + "\n"
	if a.Detail != "" {
		s += a.Detail + "\n"
	}
	return s
}

// Write writes doc as indented XML with the XML header.
func Write(w io.Writer, doc *Suites) error {
	return write(w, func(yield func(Suite, iter.Seq[Case]) bool) {
		for _, s := range doc.Suites {
			cases := s.Cases
			s.Cases = nil
			if !yield(s, slices.Values(cases)) {
				return
			}
		}
	})
}

// write writes the suites as xml.MarshalIndent(doc, "", "\t") would, one
// testcase at a time.
func write(w io.Writer, suites iter.Seq2[Suite, iter.Seq[Case]]) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "\t")
	root := xml.StartElement{Name: xml.Name{Local: "testsuites"}}
	testcase := xml.StartElement{Name: xml.Name{Local: "testcase"}}
	err := enc.EncodeToken(root)
	for s, cases := range suites {
		if err != nil {
			break
		}
		start := suiteElement(s)
		err = enc.EncodeToken(start)
		for c := range cases {
			if err != nil {
				break
			}
			err = enc.EncodeElement(c, testcase)
		}
		if err == nil {
			err = enc.EncodeToken(start.End())
		}
	}
	if err == nil {
		err = enc.EncodeToken(root.End())
	}
	if err == nil {
		err = enc.Flush()
	}
	if err == nil {
		_, err = io.WriteString(w, "\n")
	}
	return err
}

// suiteElement is the start tag of s, with Suite's attributes in order.
func suiteElement(s Suite) xml.StartElement {
	attr := func(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }
	return xml.StartElement{Name: xml.Name{Local: "testsuite"}, Attr: []xml.Attr{
		attr("name", s.Name),
		attr("tests", strconv.Itoa(s.Tests)),
		attr("failures", strconv.Itoa(s.Failures)),
		attr("errors", strconv.Itoa(s.Errors)),
		attr("skipped", strconv.Itoa(s.Skipped)),
		attr("time", s.Time),
	}}
}
