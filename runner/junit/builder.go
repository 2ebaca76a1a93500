package junit

import (
	"fmt"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

// Limits on what a Builder keeps, whatever the test prints. What they drop
// is counted, and the count said in the XML.
const (
	// MaxOutput caps the output kept per testcase: its last MaxOutput bytes.
	MaxOutput = 256 << 10
	// MaxTotalOutput caps the memory for output over all testcases (and the
	// package's own output), TailOverhead per testcase keeping some
	// included. Past it, bodies are dropped: first those of the tests that
	// finished last, then those of running tests written to longest ago.
	MaxTotalOutput = 8 << 20
	// TailOverhead is what MaxTotalOutput counts per testcase keeping
	// output, besides the output itself.
	TailOverhead = 64
	// MaxCases caps the testcases listed one by one, and MaxNameBytes the
	// length of their names together. A test starting past them takes the
	// place of listed ones that finished: the ones that passed first, else
	// the ones that failed or skipped last (the first failures stay). The
	// unlisted are counted, by outcome, in one testcase (UnlistedName).
	// Tests that have not finished stay listed.
	MaxCases     = 50_000
	MaxNameBytes = 4 << 20
)

// UnlistedName is the name of the testcase that counts the tests past
// MaxCases; %d is their number.
const UnlistedName = "[rules_go_vm: %d more testcases not listed]"

const timeoutPanic = "panic: test timed out after "

// state is where a testcase is; the zero value is a test that started (or
// printed) but never finished.
type state uint8

const (
	stateUnfinished state = iota
	statePass
	stateFail
	stateSkip
	stateInterrupt // named by the test binary's own timeout panic
)

var states = map[string]state{testjson.ActionPass: statePass, testjson.ActionFail: stateFail, testjson.ActionSkip: stateSkip}

// listID names one of a Builder's lists of testcases.
type listID uint8

const (
	noList listID = iota
	// Listed testcases that finished, in the order they did (fin links).
	passedList
	doneList // failed or skipped
	// Testcases keeping output (tail links): those that finished (failed or
	// skipped) in the order they did, the others least recently written
	// first.
	doneOutput
	runningOutput
	numLists
)

// links chain testcases in a list.
type links struct {
	prev, next *testCase
	in         listID
}

// testCase is what a Builder keeps of one test.
type testCase struct {
	name       string
	out        *tail // nil while it keeps no output
	dropped    int64 // output bytes not kept
	start, end int64 // Unix nanoseconds of its run event and its last event; 0: unknown
	elapsed    float64
	fin        links
	state      state
	hasElapsed bool
}

// tail is the end of a testcase's output: a ring of at most lim.output
// bytes.
type tail struct {
	buf  []byte
	head int // the oldest byte, once the ring is full
	links
}

// list is a doubly linked list of testcases.
type list struct {
	first, last *testCase
	link        func(*testCase) *links
}

func (l *list) push(c *testCase, id listID) {
	k := l.link(c)
	k.prev, k.next, k.in = l.last, nil, id
	if l.last != nil {
		l.link(l.last).next = c
	} else {
		l.first = c
	}
	l.last = c
}

func (l *list) remove(c *testCase) {
	k := l.link(c)
	if k.prev != nil {
		l.link(k.prev).next = k.next
	} else {
		l.first = k.next
	}
	if k.next != nil {
		l.link(k.next).prev = k.prev
	} else {
		l.last = k.prev
	}
	k.prev, k.next, k.in = nil, nil, noList
}

// unlisted counts the tests past MaxCases.
type unlisted struct {
	started, passed, failed, skipped int
	dropped                          int64 // bytes of their output
}

func (u *unlisted) count(s state) {
	switch s {
	case statePass:
		u.passed++
	case stateFail:
		u.failed++
	case stateSkip:
		u.skipped++
	}
}

func (u unlisted) unfinished() int {
	return max(0, u.started-u.passed-u.failed-u.skipped)
}

// limits are a Builder's caps (the package's constants; smaller in tests).
type limits struct {
	output, total, cases, names int
}

// Builder makes the document from the events of one test binary run, as
// they come, in bounded memory (see the package doc and the limits above).
// It is not safe for concurrent use.
type Builder struct {
	lim       limits
	cases     map[string]*testCase
	pkg       testCase // the package's own output (events without a Test)
	lists     [numLists]list
	kept      int // memory for output over all testcases
	names     int // bytes of the listed testcases' names
	over      unlisted
	inTimeout bool
	inRunning bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return newBuilder(limits{output: MaxOutput, total: MaxTotalOutput, cases: MaxCases, names: MaxNameBytes})
}

func newBuilder(lim limits) *Builder {
	b := &Builder{lim: lim, cases: map[string]*testCase{}}
	for id := range b.lists {
		b.lists[id].link = func(c *testCase) *links { return &c.fin }
		if listID(id) >= doneOutput {
			b.lists[id].link = func(c *testCase) *links { return &c.out.links }
		}
	}
	return b
}

// Add takes the next event of the run.
func (b *Builder) Add(e testjson.Event) {
	switch e.Action {
	case testjson.ActionRun:
		if e.Test == "" {
			break
		}
		if c := b.get(e.Test, true); c != nil {
			b.setState(c, stateUnfinished)
			c.start = nanos(e.Time)
		} else {
			b.over.started++
		}
	case testjson.ActionPass, testjson.ActionFail, testjson.ActionSkip:
		if e.Test == "" {
			break
		}
		c := b.get(e.Test, false)
		if c == nil {
			b.over.count(states[e.Action])
			break
		}
		b.setState(c, states[e.Action])
		c.end = nanos(e.Time)
		c.hasElapsed = e.Elapsed != nil
		if c.hasElapsed {
			c.elapsed = *e.Elapsed
		}
		if c.state == stateSkip {
			b.write(c, e.Output)
		}
	case testjson.ActionOutput:
		b.timeoutReport(e.Output)
		if e.Test == "" {
			b.write(&b.pkg, e.Output)
		} else if c := b.get(e.Test, false); c != nil {
			b.write(c, e.Output)
			c.end = nanos(e.Time)
		} else {
			b.over.dropped += int64(len(e.Output))
		}
	}
}

// get returns the testcase of a test: a new one while it fits within the
// limits or, for a test that starts (run), one that takes the place of
// finished ones; nil for a test past the limits.
func (b *Builder) get(name string, run bool) *testCase {
	if c := b.cases[name]; c != nil {
		return c
	}
	fits := func() bool { return len(b.cases) < b.lim.cases && b.names+len(name) <= b.lim.names }
	for !fits() {
		if !run || len(name) > b.lim.names || !b.unlistOne() {
			return nil
		}
	}
	c := &testCase{name: strings.Clone(name)} // not the line it was cut from
	b.cases[c.name] = c
	b.names += len(name)
	return c
}

// unlistOne forgets a listed testcase that finished (see MaxCases),
// counting it; false when every listed test is unfinished.
func (b *Builder) unlistOne() bool {
	c := b.lists[passedList].first
	if c == nil {
		c = b.lists[doneList].last
	}
	if c == nil {
		return false
	}
	b.release(c)
	b.lists[c.fin.in].remove(c)
	delete(b.cases, c.name)
	b.names -= len(c.name)
	b.over.started++
	b.over.count(c.state)
	b.over.dropped += c.dropped
	return true
}

// setState moves c to state s and the lists that go with it.
func (b *Builder) setState(c *testCase, s state) {
	c.state = s
	if c.fin.in != noList {
		b.lists[c.fin.in].remove(c)
	}
	switch s {
	case statePass:
		b.lists[passedList].push(c, passedList)
		b.release(c) // a pass shows no output
	case stateFail, stateSkip:
		b.lists[doneList].push(c, doneList)
		b.moveOutput(c, doneOutput)
	default:
		b.moveOutput(c, runningOutput)
	}
}

// moveOutput moves c's output, if any, to the newest end of list id.
func (b *Builder) moveOutput(c *testCase, id listID) {
	if c.out == nil {
		return
	}
	b.lists[c.out.in].remove(c)
	b.lists[id].push(c, id)
}

// timeoutReport follows the test binary's own timeout panic: "panic: test
// timed out after 1s", then "running tests:" and one "\t\tTestX (1s)" line
// per test still running, which it marks interrupted.
func (b *Builder) timeoutReport(output string) {
	text := strings.TrimSpace(output)
	switch {
	case strings.HasPrefix(text, timeoutPanic):
		b.inTimeout = true
	case b.inTimeout && text == "running tests:":
		b.inRunning = true
	case b.inRunning:
		name, dur, ok := runningTest(text)
		if !ok {
			b.inTimeout, b.inRunning = false, false
		} else if c := b.cases[name]; c != nil {
			b.setState(c, stateInterrupt)
			c.elapsed, c.hasElapsed = dur.Seconds(), true
		}
	}
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

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// write keeps the end of s in c's output, within the limits.
func (b *Builder) write(c *testCase, s string) {
	if s == "" {
		return
	}
	if c.state == statePass {
		c.dropped += int64(len(s))
		return
	}
	id := runningOutput
	if c.state == stateFail || c.state == stateSkip {
		id = doneOutput
	}
	if c.out == nil {
		c.out = &tail{}
		b.lists[id].push(c, id)
		b.kept += TailOverhead
	} else if id == runningOutput {
		b.moveOutput(c, id) // least recently written first
	}
	before := cap(c.out.buf)
	c.dropped += int64(c.out.write(s, b.lim.output))
	b.kept += cap(c.out.buf) - before
	for b.kept > b.lim.total {
		v := b.victim(c)
		if v == nil {
			break
		}
		b.release(v)
	}
}

// victim returns the testcase whose output goes next (not c's): the
// finished test that finished last, else the running test written to
// longest ago.
func (b *Builder) victim(c *testCase) *testCase {
	if v := b.lists[doneOutput].last; v != nil && v != c {
		return v
	} else if v != nil && v.out.prev != nil {
		return v.out.prev
	}
	if v := b.lists[runningOutput].first; v != nil && v != c {
		return v
	} else if v != nil {
		return v.out.next
	}
	return nil
}

// release drops the output c keeps.
func (b *Builder) release(c *testCase) {
	if c.out == nil {
		return
	}
	b.lists[c.out.in].remove(c)
	b.kept -= cap(c.out.buf) + TailOverhead
	c.dropped += int64(len(c.out.buf))
	c.out = nil
}

// write appends s, keeping the last limit bytes; it returns how many bytes
// it dropped (of s or of what it kept).
func (t *tail) write(s string, limit int) int {
	if len(s) >= limit {
		dropped := len(t.buf) + len(s) - limit
		t.grow(limit, limit)
		t.buf = append(t.buf[:0], s[len(s)-limit:]...)
		t.head = 0
		return dropped
	}
	if n := len(t.buf) + len(s); n <= limit {
		t.grow(n, limit)
		t.buf = append(t.buf, s...)
		return 0
	}
	if k := limit - len(t.buf); k > 0 { // fill up, then go round
		t.grow(limit, limit)
		t.buf = append(t.buf, s[:k]...)
		s = s[k:]
	}
	dropped := len(s)
	for len(s) > 0 {
		k := copy(t.buf[t.head:], s)
		s = s[k:]
		t.head = (t.head + k) % limit
	}
	return dropped
}

// grow makes room for n bytes, doubling up to limit.
func (t *tail) grow(n, limit int) {
	if n <= cap(t.buf) {
		return
	}
	buf := make([]byte, len(t.buf), min(limit, max(2*cap(t.buf), n)))
	copy(buf, t.buf)
	t.buf = buf
}

func (t *tail) String() string {
	if t == nil {
		return ""
	}
	return string(t.buf[t.head:]) + string(t.buf[:t.head])
}

// body is c's output with extra appended, cut to its last lim.output bytes,
// after a note on what it lost.
func (b *Builder) body(c *testCase, extra string, o Options) string {
	s, dropped := c.out.String()+extra, c.dropped
	if len(s) > b.lim.output {
		dropped += int64(len(s) - b.lim.output)
		s = s[len(s)-b.lim.output:]
	}
	if dropped == 0 {
		return s
	}
	where := ""
	if o.FullOutput != "" {
		where = "; full output in " + o.FullOutput
	}
	return fmt.Sprintf("[rules_go_vm: %d bytes of earlier output dropped%s]\n", dropped, where) + s
}
