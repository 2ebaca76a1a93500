package testjson

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The testdata/*.test files are the output of the test binary built from
// testdata/src with -test.v=test2json; the *.json files are what
// `go tool test2json -t` made of them. The converter must produce the same
// events (Time aside, and the package's own Elapsed, which is wall time).
func TestMatchesGoTest2JSON(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		input, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := readEvents(t, strings.TrimSuffix(f, ".test")+".json")
		for _, chunk := range []int{len(input), 1, 7, 100} {
			t.Run(fmt.Sprintf("%s/chunk%d", filepath.Base(f), chunk), func(t *testing.T) {
				var got []Event
				var plain bytes.Buffer
				c := New(Options{Emit: func(e Event) { got = append(got, e) }})
				w := c.Stream(&plain)
				for rest := input; len(rest) > 0; {
					n := min(chunk, len(rest))
					if _, err := w.Write(rest[:n]); err != nil {
						t.Fatal(err)
					}
					rest = rest[n:]
				}
				c.Close()
				if filepath.Base(f) == "panic.test" {
					// Unlike test2json, Close flushes the reports still
					// pending: the report of the test that panicked.
					if n := len(got); n == 0 || got[n-1].Action != ActionFail || got[n-1].Test != "TestPanic" {
						t.Fatalf("last event %v, want the pending fail of TestPanic", got[n-1:])
					}
					got = got[:len(got)-1]
				}
				compare(t, got, want)
				if wantPlain := bytes.ReplaceAll(input, []byte{Marker}, nil); !bytes.Equal(plain.Bytes(), wantPlain) {
					t.Errorf("plain output differs from the input without markers:\n%q", plain.Bytes())
				}
			})
		}
	}
}

func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		var e Event
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		events = append(events, e)
	}
	return events
}

func compare(t *testing.T, got, want []Event) {
	t.Helper()
	norm := func(es []Event) []Event {
		out := make([]Event, len(es))
		for i, e := range es {
			e.Time = time.Time{}
			if e.Test == "" && e.Action != ActionOutput {
				e.Elapsed = nil
			}
			out[i] = e
		}
		return out
	}
	g, w := norm(got), norm(want)
	for i := 0; i < max(len(g), len(w)); i++ {
		var ge, we Event
		if i < len(g) {
			ge = g[i]
		}
		if i < len(w) {
			we = w[i]
		}
		if !reflect.DeepEqual(ge, we) {
			t.Fatalf("event %d:\ngot  %s\nwant %s", i, show(ge), show(we))
		}
	}
}

func show(e Event) string {
	b, _ := json.Marshal(e)
	return string(b)
}

// Two streams (the guest's stdout and stderr) written in random
// interleavings of whole and partial lines: each line is handled whole.
func TestStreamsKeepLinesWhole(t *testing.T) {
	out := "\x16=== RUN   TestA\nout line one\nout line two\n"
	errs := "panic: boom\n\ngoroutine 1 [running]:\n"
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		var got []Event
		c := New(Options{Emit: func(e Event) { got = append(got, e) }})
		var plainOut, plainErr bytes.Buffer
		wo, we := c.Stream(&plainOut), c.Stream(&plainErr)
		o, e := out, errs
		for len(o)+len(e) > 0 {
			n := 1 + r.IntN(5)
			if len(e) == 0 || len(o) > 0 && r.IntN(2) == 0 {
				n = min(n, len(o))
				wo.Write([]byte(o[:n]))
				o = o[n:]
			} else {
				n = min(n, len(e))
				we.Write([]byte(e[:n]))
				e = e[n:]
			}
		}
		c.Close()
		whole := strings.SplitAfter(strings.TrimPrefix(out, "\x16")+errs, "\n")
		var lines []string
		for _, ev := range got {
			if ev.Action == ActionOutput {
				lines = append(lines, ev.Output)
				if !slices.Contains(whole, ev.Output) {
					t.Errorf("seed %d: output %q is not a whole line", seed, ev.Output)
				}
			}
		}
		if len(lines) != 6 {
			t.Errorf("seed %d: %d output lines, want 6: %q", seed, len(lines), lines)
		}
		if plainOut.String() != strings.TrimPrefix(out, "\x16") || plainErr.String() != errs {
			t.Errorf("seed %d: plain %q / %q", seed, plainOut.String(), plainErr.String())
		}
	}
}

func TestConverter(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10) + "\n"
	for _, tc := range []struct {
		name, in string
		want     []string // action:test, output events as "out:test:text"
		result   string
	}{
		{
			name:   "marker mid-line ends the line",
			in:     "\x16=== RUN   TestA\npartial\x16--- PASS: TestA (0.50s)\n\x16PASS\n",
			want:   []string{"start:", "run:TestA", "out:TestA:=== RUN   TestA\n", "out:TestA:partial", "out:TestA:--- PASS: TestA (0.50s)\n", "pass:TestA", "out::PASS\n", "pass:"},
			result: ActionPass,
		},
		{
			name:   "unmarked framing after marked framing is output",
			in:     "\x16=== RUN   TestA\n--- FAIL: TestA (0.00s)\nFAIL\n\x16--- PASS: TestA (0.00s)\n",
			want:   []string{"start:", "run:TestA", "out:TestA:=== RUN   TestA\n", "out:TestA:--- FAIL: TestA (0.00s)\n", "out:TestA:FAIL\n", "out:TestA:--- PASS: TestA (0.00s)\n", "pass:TestA"},
			result: "",
		},
		{
			name:   "a long line is output only, in pieces",
			in:     "\x16=== RUN   TestA\n" + long,
			want:   []string{"start:", "run:TestA", "out:TestA:=== RUN   TestA\n", "out:TestA:" + long[:MaxLine], "out:TestA:" + long[MaxLine:]},
			result: "",
		},
		{
			name:   "test never finished",
			in:     "\x16=== RUN   TestA\n\x16=== RUN   TestA/sub\nworking",
			want:   []string{"start:", "run:TestA", "out:TestA:=== RUN   TestA\n", "run:TestA/sub", "out:TestA/sub:=== RUN   TestA/sub\n", "out:TestA/sub:working"},
			result: "",
		},
		{
			name:   "pause and cont",
			in:     "\x16=== RUN   TestP\n\x16=== PAUSE TestP\n\x16=== CONT  TestP\n\x16--- SKIP: TestP (0.00s)\n",
			want:   []string{"start:", "run:TestP", "out:TestP:=== RUN   TestP\n", "out:TestP:=== PAUSE TestP\n", "pause:TestP", "cont:TestP", "out:TestP:=== CONT  TestP\n", "out:TestP:--- SKIP: TestP (0.00s)\n", "skip:TestP"},
			result: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			c := New(Options{Emit: func(e Event) {
				if e.Action == ActionOutput {
					got = append(got, "out:"+e.Test+":"+e.Output)
				} else {
					got = append(got, e.Action+":"+e.Test)
				}
			}})
			c.Stream(nil).Write([]byte(tc.in))
			if res := c.Close(); res != tc.result {
				t.Errorf("result %q, want %q", res, tc.result)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestTimestampsAndPackage(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	c := New(Options{Package: "pkg/x", Now: func() time.Time { return now }, Emit: Encoder(&buf)})
	c.Stream(nil).Write([]byte("\x16=== RUN   TestA\n\x16--- PASS: TestA (1.25s)\n"))
	c.Close()
	want := `{"Time":"2026-01-02T03:04:05Z","Action":"pass","Package":"pkg/x","Test":"TestA","Elapsed":1.25}`
	if !strings.Contains(buf.String(), want+"\n") {
		t.Errorf("JSON lines lack %s:\n%s", want, buf.String())
	}
}

// floodChunk is the size of the writes in TestFloodKeepsNoLine: the guest's
// output frames (protocol.MaxChunk).
const floodChunk = 32 << 10

// Whatever a test prints, a stream holds at most one MaxLine of it, and
// every output event is at most MaxLine long.
func TestFloodKeepsNoLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		gen  func(i int) byte
	}{
		{"no newline", 64 << 20, func(int) byte { return 'z' }},
		{"1 MiB lines", 64 << 20, func(i int) byte { return "\nl"[min(1, (i+1)%(1<<20))] }},
		{"markers only", 4 << 20, func(int) byte { return Marker }},
		{"framing-looking line without end", 16 << 20, func(i int) byte { return "\x16=== RUN   T"[min(i, 11)] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, longest := 0, 0
			c := New(Options{Emit: func(e Event) {
				events++
				longest = max(longest, len(e.Output))
			}})
			s := c.Stream(io.Discard).(*stream)
			chunk := make([]byte, floodChunk)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for n := 0; n < tc.size; n += len(chunk) {
				for i := range chunk {
					chunk[i] = tc.gen(n + i)
				}
				if _, err := s.Write(chunk); err != nil {
					t.Fatal(err)
				}
				if cap(s.buf) > MaxLine {
					t.Fatalf("after %d bytes, the stream holds a %d-byte buffer (MaxLine %d)", n, cap(s.buf), MaxLine)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			c.Close()
			if longest > MaxLine || events < tc.size/MaxLine {
				t.Errorf("%d events, the longest output %d bytes (MaxLine %d)", events, longest, MaxLine)
			}
			if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
				t.Errorf("heap grew by %d bytes over %d bytes of output", grown, tc.size)
			}
		})
	}
}
