// Package testjson turns the output of a Go test binary run with
// -test.v=test2json into test2json events (the stream `go test -json`
// prints), and hands on a readable copy of that output with the framing
// markers removed.
//
// With -test.v=test2json the testing package prints its framing lines
// (=== RUN, === PAUSE, === CONT, === NAME, --- PASS/FAIL/SKIP/BENCH, the
// final PASS/FAIL) behind a ^V (0x16) byte, so they can be told apart from
// the test's own output. A Converter reads that stream line by line:
//
//   - "=== RUN/PAUSE/CONT  Name" emit a run/pause/cont event for Name;
//     "=== NAME  Name" only changes which test later output belongs to;
//   - "--- PASS/FAIL/SKIP/BENCH: Name (1.23s)", indented four spaces per
//     subtest level, are held back until the next framing line at the same
//     or a lower depth (the test's logged lines follow the report line), then
//     emitted as pass/fail/skip/bench events with Elapsed;
//   - the final "PASS", "FAIL" or "FAIL\t..." flushes every pending report
//     and sets the package result, emitted by Close;
//   - every line is also an output event, attributed to the test it belongs
//     to (by the last framing line, or by its indentation under pending
//     reports).
//
// Once one marked framing line was seen, unmarked look-alikes are treated as
// plain output (a test printing "--- FAIL: x" does not fool it). Lines longer
// than MaxLine are passed on as several output events, as `go tool
// test2json` does (so the events match go test -json's): a Converter holds
// at most MaxLine bytes per stream, whatever the test prints.
package testjson

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Marker is the byte the testing package puts before framing lines with
// -test.v=test2json.
const Marker = 0x16

// MaxLine is the longest line handled as one line; longer lines become
// several output events (and are never framing).
const MaxLine = 4096

// Event is one test2json event (see `go doc test2json`).
type Event struct {
	Time    time.Time `json:",omitzero"`
	Action  string
	Package string   `json:",omitempty"`
	Test    string   `json:",omitempty"`
	Elapsed *float64 `json:",omitempty"`
	Output  string   `json:",omitempty"`
}

// Actions of events.
const (
	ActionStart  = "start"
	ActionRun    = "run"
	ActionPause  = "pause"
	ActionCont   = "cont"
	ActionPass   = "pass"
	ActionFail   = "fail"
	ActionSkip   = "skip"
	ActionBench  = "bench"
	ActionOutput = "output"
)

// Options configure a Converter.
type Options struct {
	// Package is put in every event's Package field.
	Package string
	// Emit receives each event, in order; required.
	Emit func(Event)
	// Now is the clock for Event.Time; nil means no timestamps.
	Now func() time.Time
}

// Converter turns test output into events. Its Stream writers may be used
// from several goroutines: whole lines are handled one at a time.
type Converter struct {
	o          Options
	mu         sync.Mutex
	testName   string   // test that plain output belongs to
	reports    []*Event // pending --- reports, outermost first
	result     string   // package result from the final PASS/FAIL line
	needMarker bool     // framing lines must carry the marker
	streams    []*stream
	closed     bool
}

// New returns a Converter and emits the start event.
func New(o Options) *Converter {
	c := &Converter{o: o}
	c.emit(Event{Action: ActionStart})
	return c
}

// Stream returns a writer for one output stream of the test (stdout or
// stderr): bytes written to it reach plain at once with the markers
// removed, and whole lines reach the converter. Use one Stream per source so
// that lines of different sources are not mixed up.
func (c *Converter) Stream(plain io.Writer) io.Writer {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &stream{c: c, plain: plain}
	c.streams = append(c.streams, s)
	return s
}

// Close handles the streams' unterminated last lines, flushes pending
// reports and emits the package's pass/fail event if the test printed its
// final PASS or FAIL. It returns the package result ("pass", "fail" or ""
// when the test binary never said).
func (c *Converter) Close() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.result
	}
	c.closed = true
	for _, s := range c.streams {
		if len(s.buf) > 0 {
			c.line(s.buf, s.mid)
			s.buf = nil
		}
	}
	c.flushReports(0)
	if c.result != "" {
		c.emit(Event{Action: c.result})
	}
	return c.result
}

type stream struct {
	c     *Converter
	plain io.Writer
	buf   []byte // the current line so far
	mid   bool   // buf continues a line cut at MaxLine
}

// Write implements io.Writer.
func (s *stream) Write(p []byte) (int, error) {
	if s.plain != nil {
		if bytes.IndexByte(p, Marker) < 0 {
			if _, err := s.plain.Write(p); err != nil {
				return 0, err
			}
		} else if _, err := s.plain.Write(bytes.ReplaceAll(p, []byte{Marker}, nil)); err != nil {
			return 0, err
		}
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.closed {
		return len(p), nil
	}
	for _, b := range p {
		// A marker in the middle of a line starts a new line: the test
		// printed output without a newline before a framing line.
		if b == Marker && len(s.buf) > 0 {
			s.c.line(s.buf, s.mid)
			s.buf, s.mid = s.buf[:0], false
		}
		s.buf = append(s.buf, b)
		if b == '\n' || len(s.buf) >= MaxLine {
			s.c.line(s.buf, s.mid)
			s.buf, s.mid = s.buf[:0], b != '\n'
		}
	}
	return len(p), nil
}

var (
	updates = []string{"=== RUN   ", "=== PAUSE ", "=== CONT  ", "=== NAME  ", "=== PASS  ", "=== FAIL  ", "=== SKIP  "}
	reports = []string{"--- PASS: ", "--- FAIL: ", "--- SKIP: ", "--- BENCH: "}
)

// line handles one line (with its newline, if it had one); mid says it
// continues a line cut at MaxLine. c.mu is held.
func (c *Converter) line(raw []byte, mid bool) {
	marked := raw[0] == Marker
	line := string(raw)
	if marked {
		line = line[1:]
	}
	text := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	framing := marked || !c.needMarker
	if !framing || mid || !strings.HasSuffix(line, "\n") && len(raw) >= MaxLine {
		c.output(line)
		return
	}
	// Final PASS / FAIL of the binary.
	if text == "PASS" || text == "FAIL" || strings.HasPrefix(text, "FAIL\t") {
		c.flushReports(0)
		c.testName = ""
		c.needMarker = marked
		c.result = ActionPass
		if text != "PASS" {
			c.result = ActionFail
		}
		c.output(line)
		return
	}
	if text == "=== NAME" { // an empty name may lose its trailing spaces
		text = "=== NAME  "
	}
	for _, u := range updates {
		if strings.HasPrefix(text, u) {
			c.update(strings.ToLower(strings.TrimSpace(u[4:])), strings.TrimSpace(text[len(u):]), line, marked)
			return
		}
	}
	depth, rest := 0, text
	for strings.HasPrefix(rest, "    ") {
		rest = rest[4:]
		depth++
	}
	for _, r := range reports {
		if strings.HasPrefix(rest, r) && depth <= len(c.reports) {
			c.report(strings.ToLower(r[4:len(r)-2]), rest[len(r):], depth, line, marked)
			return
		}
	}
	// Plain output: indented lines belong to the pending report at that
	// depth (a finished test's log follows its report line).
	if depth > 0 && depth <= len(c.reports) {
		c.testName = c.reports[depth-1].Test
	}
	c.output(line)
}

// update handles an "=== ACTION  Name" line.
func (c *Converter) update(action, name, line string, marked bool) {
	c.needMarker = marked
	c.flushReports(0)
	c.testName = name
	switch action {
	case "name":
	case ActionPause:
		c.output(line)
		c.emit(Event{Action: action, Test: name})
	default:
		c.emit(Event{Action: action, Test: name})
		c.output(line)
	}
}

// report handles a "--- ACTION: Name (1.23s)" line at the given depth.
func (c *Converter) report(action, rest string, depth int, line string, marked bool) {
	name := rest
	e := &Event{Action: action}
	if i := strings.LastIndex(rest, " ("); i >= 0 && strings.HasSuffix(rest, "s)") {
		name = rest[:i]
		if secs, err := strconv.ParseFloat(rest[i+2:len(rest)-2], 64); err == nil {
			e.Elapsed = &secs
		}
	}
	e.Test = name
	c.needMarker = marked
	c.flushReports(depth)
	c.reports = append(c.reports, e)
	c.testName = name
	c.output(line)
}

// flushReports emits the pending reports deeper than depth, innermost first.
func (c *Converter) flushReports(depth int) {
	for len(c.reports) > depth {
		e := c.reports[len(c.reports)-1]
		c.reports = c.reports[:len(c.reports)-1]
		c.emit(*e)
	}
	c.testName = ""
}

func (c *Converter) output(s string) {
	c.emit(Event{Action: ActionOutput, Test: c.testName, Output: s})
}

func (c *Converter) emit(e Event) {
	e.Package = c.o.Package
	if c.o.Now != nil {
		e.Time = c.o.Now()
	}
	c.o.Emit(e)
}

// Encoder returns an Emit function writing events as JSON lines to w (the
// format of `go test -json`); write errors are dropped.
func Encoder(w io.Writer) func(Event) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return func(e Event) { _ = enc.Encode(e) }
}
