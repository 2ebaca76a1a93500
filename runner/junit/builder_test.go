package junit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/runner/testjson"
)

// feed converts test output (as printed with -test.v=test2json) into b.
func feed(t *testing.T, b *Builder, out string) {
	t.Helper()
	c := testjson.New(testjson.Options{Package: "tests/x", Emit: b.Add})
	if _, err := c.Stream(nil).Write([]byte(out)); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestTail(t *testing.T) {
	const size = 8
	for _, tc := range []struct {
		writes  []string
		want    string
		dropped int
	}{
		{[]string{"abc"}, "abc", 0},
		{[]string{"abc", "defgh"}, "abcdefgh", 0},
		{[]string{"abc", "defghi"}, "bcdefghi", 1},
		{[]string{"abcdefgh", "ij", "klm"}, "fghijklm", 5},
		{[]string{"abc", "0123456789"}, "23456789", 5},
		{[]string{"abcdefg", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"}, "jklmnopq", 9},
		{[]string{"abcdefghijklmnopqrstuvwxyz"}, "stuvwxyz", 18},
	} {
		var tl tail
		dropped := 0
		for _, w := range tc.writes {
			dropped += tl.write(w, size)
			if cap(tl.buf) > size {
				t.Errorf("%q: buffer of %d bytes, limit %d", tc.writes, cap(tl.buf), size)
			}
		}
		if got := tl.String(); got != tc.want || dropped != tc.dropped {
			t.Errorf("%q: kept %q, dropped %d; want %q, %d", tc.writes, got, dropped, tc.want, tc.dropped)
		}
	}
}

// A tail written a byte at a time grows by doubling, up to its limit.
func TestTailGrowth(t *testing.T) {
	const size = 1000
	var tl tail
	grown, last := 0, 0
	for range 2 * size {
		tl.write("x", size)
		if c := cap(tl.buf); c != last {
			grown, last = grown+1, c
		}
	}
	if last != size || grown > 11 {
		t.Errorf("buffer grew %d times to %d bytes; want at most 11 times, to %d", grown, last, size)
	}
}

// run is the framed output of one test printing lines and ending in end
// ("PASS", "FAIL", "SKIP" or "" for never).
func run(name string, end string, lines ...string) string {
	s := "\x16=== RUN   " + name + "\n"
	for _, l := range lines {
		s += l + "\n"
	}
	if end != "" {
		s += "\x16--- " + end + ": " + name + " (0.00s)\n"
	}
	return s
}

func TestBuilderLimits(t *testing.T) {
	small := limits{output: 64, total: 1 << 10, cases: 4, names: 1 << 10}
	long := strings.Repeat("x", 100)
	abort := &Abort{Reason: "guest died"}
	for _, tc := range []struct {
		name  string
		lim   limits
		out   string
		abort *Abort
		want  []string // "name=state: body" per testcase, in order
	}{
		{
			name: "a body keeps its end and says what it lost",
			lim:  small,
			out:  run("TestA", "FAIL", "first", long, "last"),
			want: []string{"TestA=fail: [rules_go_vm: 88 bytes of earlier output dropped; full output in test.log]\n" +
				strings.Repeat("x", 34) + "\nlast\n--- FAIL: TestA (0.00s)\n"},
		},
		{
			name:  "a pass keeps nothing; the running test's output stays",
			lim:   small,
			out:   run("TestA", "PASS", long) + run("TestB", "FAIL", "b1") + run("TestC", "", "c1", "c2"),
			want:  []string{"TestA=pass: ", "TestB=fail: === RUN   TestB\nb1\n--- FAIL: TestB (0.00s)\n", "TestC=fail:Interrupted: guest died: === RUN   TestC\nc1\nc2\n\nguest died\n"},
			abort: abort,
		},
		{
			name: "past the total, the tests that finished last lose their bodies first",
			lim:  limits{output: 64, total: 3 * (TailOverhead + 64), cases: 10, names: 1 << 10},
			out:  run("TestA", "FAIL", long) + run("TestB", "FAIL", long) + run("TestC", "FAIL", long) + run("TestD", "", long),
			want: []string{
				"TestA=fail: [rules_go_vm: 77 bytes of earlier output dropped]\n" + strings.Repeat("x", 39) + "\n--- FAIL: TestA (0.00s)\n",
				"TestB=fail: [rules_go_vm: 77 bytes of earlier output dropped]\n" + strings.Repeat("x", 39) + "\n--- FAIL: TestB (0.00s)\n",
				"TestC=fail: [rules_go_vm: 141 bytes of earlier output dropped]\n",
				"TestD=error:No pass/skip/fail event found for test: [rules_go_vm: 53 bytes of earlier output dropped]\n" + strings.Repeat("x", 63) + "\n",
			},
		},
		{
			name: "past MaxCases, passed tests make room first, then the last failures",
			lim:  small,
			out: run("TestA", "FAIL", "a") + run("TestB", "PASS") + run("TestC", "FAIL", "c") + run("TestD", "SKIP") +
				run("TestE", "PASS") + run("TestF", "FAIL") + run("TestG", "", "g"),
			abort: abort,
			want: []string{
				"TestA=fail: === RUN   TestA\na\n--- FAIL: TestA (0.00s)\n",
				"TestC=fail: === RUN   TestC\nc\n--- FAIL: TestC (0.00s)\n",
				"TestD=skip: === RUN   TestD\n--- SKIP: TestD (0.00s)\n",
				"TestG=fail:Interrupted: guest died: === RUN   TestG\ng\n\nguest died\n",
				"[rules_go_vm: 3 more testcases not listed]=fail:3 tests past the limit of 4 testcases not listed: 2 passed, 1 failed, 0 skipped, 0 unfinished; 120 bytes of their output dropped: ",
			},
		},
		{
			name:  "unfinished tests stay listed; later ones are counted, and fail the run with the abort",
			lim:   limits{output: 64, total: 1 << 10, cases: 2, names: 1 << 10},
			out:   run("TestA", "", "a") + "\x16=== RUN   TestA/b\n\x16=== RUN   TestA/b/c\nc\n",
			abort: abort,
			want: []string{
				"TestA=fail:Interrupted: guest died: === RUN   TestA\na\n\nguest died\n",
				"TestA/b=fail:Interrupted: guest died: === RUN   TestA/b\n\nguest died\n",
				"[rules_go_vm: 1 more testcases not listed]=fail:Interrupted: guest died; 1 tests past the limit of 2 testcases not listed: 0 passed, 0 failed, 0 skipped, 1 unfinished; 22 bytes of their output dropped: \nguest died\n",
			},
		},
		{
			name: "long names count against MaxNameBytes",
			lim:  limits{output: 64, total: 1 << 10, cases: 10, names: 10},
			out:  run("TestLong", "PASS") + run("TestLonger", "PASS") + run("TestA", "FAIL"),
			want: []string{
				"TestA=fail: === RUN   TestA\n--- FAIL: TestA (0.00s)\n",
				"[rules_go_vm: 2 more testcases not listed]=pass: ",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(tc.lim)
			feed(t, b, tc.out)
			full := ""
			if strings.HasPrefix(tc.name, "a body keeps") {
				full = "test.log"
			}
			doc := b.Doc(Options{Package: "tests/x", Abort: tc.abort, FullOutput: full})
			var got []string
			for _, s := range doc.Suites {
				for _, c := range s.Cases {
					got = append(got, caseString(c))
				}
			}
			if strings.Join(got, "\n|") != strings.Join(tc.want, "\n|") {
				t.Errorf("cases\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func caseString(c Case) string {
	switch {
	case c.Failure != nil && c.Failure.Message == "Failed":
		return c.Name + "=fail: " + c.Failure.Contents
	case c.Failure != nil:
		return c.Name + "=fail:" + c.Failure.Message + ": " + c.Failure.Contents
	case c.Error != nil:
		return c.Name + "=error:" + c.Error.Message + ": " + c.Error.Contents
	case c.Skipped != nil:
		return c.Name + "=skip: " + c.Skipped.Contents
	}
	return c.Name + "=pass: "
}

// Whatever the events, the Builder stays within its limits, and its count
// of kept output matches what it keeps.
func TestBuilderStaysWithinLimits(t *testing.T) {
	lim := limits{output: 50, total: 4 * (TailOverhead + 50), cases: 6, names: 40}
	actions := []string{testjson.ActionRun, testjson.ActionPass, testjson.ActionFail, testjson.ActionSkip, testjson.ActionOutput, testjson.ActionOutput, testjson.ActionOutput}
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 2))
		b := newBuilder(lim)
		for i := range 2000 {
			e := testjson.Event{Action: actions[r.IntN(len(actions))], Test: fmt.Sprintf("Test%d", r.IntN(20))}
			if r.IntN(10) == 0 {
				e.Test = ""
			}
			if e.Action == testjson.ActionOutput {
				e.Output = strings.Repeat("o", r.IntN(80))
			}
			b.Add(e)
			kept, names := b.pkg.cost(), 0
			for name, c := range b.cases {
				kept += c.cost()
				names += len(name)
			}
			if kept != b.kept || kept > lim.total || names != b.names || names > lim.names || len(b.cases) > lim.cases {
				t.Fatalf("seed %d, event %d: kept %d (counted %d, limit %d), names %d (counted %d), %d cases",
					seed, i, kept, b.kept, lim.total, names, b.names, len(b.cases))
			}
		}
		var buf bytes.Buffer
		if err := b.WriteXML(&buf, Options{Package: "p", Abort: &Abort{Reason: "r"}}); err != nil {
			t.Fatal(err)
		}
		var doc Suites
		if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// cost is what c's output counts against lim.total.
func (c *testCase) cost() int {
	if c.out == nil {
		return 0
	}
	return cap(c.out.buf) + TailOverhead
}

// WriteXML writes what Write writes of Doc, which is what
// xml.MarshalIndent makes of it.
func TestWriteXMLIsMarshalIndent(t *testing.T) {
	abort := &Abort{Reason: "guest kernel panic", Detail: "Kernel panic - not syncing"}
	for _, tc := range []struct {
		name, out string
		abort     *Abort
	}{
		{"tests", passing + crashed, abort},
		{"timeout", timingOut, nil},
		{"nothing ran", "", abort},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Package: "tests/x", Target: "//tests/x:x_vm_test", Abort: tc.abort}
			b := NewBuilder()
			feed(t, b, tc.out)
			var streamed, written bytes.Buffer
			if err := b.WriteXML(&streamed, o); err != nil {
				t.Fatal(err)
			}
			doc := b.Doc(o)
			if err := Write(&written, doc); err != nil {
				t.Fatal(err)
			}
			m, err := xml.MarshalIndent(doc, "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			marshalled := xml.Header + string(m) + "\n"
			if streamed.String() != marshalled || written.String() != marshalled {
				t.Errorf("WriteXML:\n%s\nWrite:\n%s\nMarshalIndent:\n%s", streamed.String(), written.String(), marshalled)
			}
		})
	}
}
