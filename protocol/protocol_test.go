package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// frame encodes one frame or fails the test.
func frame(t testing.TB, ft FrameType, p []byte) []byte {
	t.Helper()
	b, err := AppendFrame(nil, ft, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func helloFrame(t testing.TB, version uint16) []byte {
	return frame(t, FrameHello, EncodeHello(Hello{Version: version, Role: RoleControl, Agent: "test"}))
}

func verdictFrame(t testing.TB, v Verdict) []byte {
	t.Helper()
	p, err := EncodeVerdict(v)
	if err != nil {
		t.Fatal(err)
	}
	return frame(t, FrameVerdict, p)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	big := bytes.Repeat([]byte("x"), 3*MaxChunk+7)
	if err := w.Hello(RoleControl, 0, "agent"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Stream(FrameStdout).Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Stream(FrameStderr).Write([]byte("err")); err != nil {
		t.Fatal(err)
	}
	if err := w.Event([]byte(`{"Action":"run"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Diag("mounted"); err != nil {
		t.Fatal(err)
	}
	if err := w.Verdict(Verdict{Pass: true}); err != nil {
		t.Fatal(err)
	}
	if err := w.Ack(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	var types []FrameType
	var stdout []byte
	for {
		f, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, f.Type)
		if f.Type == FrameStdout {
			stdout = append(stdout, f.Payload...)
		}
		if f.Type == FrameEvent && string(f.Payload) != `{"Action":"run"}` {
			t.Errorf("event payload %q", f.Payload)
		}
	}
	want := []FrameType{FrameHello, FrameStdout, FrameStdout, FrameStdout, FrameStdout, FrameStderr, FrameEvent, FrameDiag, FrameVerdict, FrameAck}
	if len(types) != len(want) {
		t.Fatalf("types %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("types %v, want %v", types, want)
		}
	}
	if !bytes.Equal(stdout, big) {
		t.Errorf("stdout: %d bytes, want %d", len(stdout), len(big))
	}
}

func TestReaderErrors(t *testing.T) {
	good := frame(t, FrameDiag, []byte("hello"))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty is EOF", nil, io.EOF},
		{"short header", good[:5], ErrTruncated},
		{"short payload", good[:len(good)-1], ErrTruncated},
		{"bad magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrBadFrame},
		{"flags", mut(func(b []byte) []byte { b[3] = 1; return b }), ErrBadFrame},
		{"bad crc", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrBadFrame},
		{"type changed", mut(func(b []byte) []byte { b[2] = byte(FrameStdout); return b }), ErrBadFrame},
		{"unknown type", mut(func(b []byte) []byte { b[2] = 200; return b }), ErrUnknownFrame},
		{"zero type", mut(func(b []byte) []byte { b[2] = 0; return b }), ErrUnknownFrame},
		{"too large", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], MaxDiag+1); return b }), ErrFrameTooLarge},
		{"huge", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 0xffffffff); return b }), ErrFrameTooLarge},
		{"ack with payload", mut(func(b []byte) []byte { b[2] = byte(FrameAck); return b }), ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.in))
			_, err := r.ReadFrame()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, err2 := r.ReadFrame(); tc.want != io.EOF && !errors.Is(err2, tc.want) {
				t.Errorf("error not sticky: %v", err2)
			}
		})
	}
}

func TestAppendFrameLimits(t *testing.T) {
	if _, err := AppendFrame(nil, FrameStdout, make([]byte, MaxChunk+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized chunk: %v", err)
	}
	if _, err := AppendFrame(nil, FrameType(99), nil); !errors.Is(err, ErrUnknownFrame) {
		t.Errorf("unknown type: %v", err)
	}
	for ft := range frameNames {
		if MaxPayloadFor(ft) > MaxPayload {
			t.Errorf("%v limit %d > MaxPayload", ft, MaxPayloadFor(ft))
		}
	}
}

func TestDecodeVerdict(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pass bool
		err  bool
	}{
		{`{"pass":true,"exit_code":0}`, true, false},
		{`{"pass":false,"exit_code":1,"reason":"x"}`, false, false},
		{`{"pass":true,"exit_code":0} `, true, false},
		{`{"exit_code":0}`, false, true},
		{`{"pass":true}`, false, true},
		{`{"pass":true,"exit_code":1}`, false, true},
		{`{"pass":true,"exit_code":0,"signal":"SIGKILL"}`, false, true},
		{`{"pass":true,"exit_code":0,"leaked":["1 sleep"]}`, false, true},
		{`{"pass":"true","exit_code":0}`, false, true},
		{`{"pass":true,"exit_code":0}{"pass":false,"exit_code":0}`, false, true},
		{`{"pass":true,"exit_code":0}x`, false, true},
		{`n-it-result pass`, false, true},
		{``, false, true},
		{`null`, false, true},
		{`{"pass":false,"exit_code":255}`, false, false},
		{`{"pass":false,"exit_code":-1,"signal":"SIGKILL"}`, false, false},
		{`{"pass":false,"exit_code":256}`, false, true},
		{`{"pass":false,"exit_code":512}`, false, true},
		{`{"pass":false,"exit_code":-2}`, false, true},
		{`{"pass":false,"exit_code":4294967296}`, false, true},
	} {
		v, err := DecodeVerdict([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("DecodeVerdict(%q) err = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadVerdict) {
			t.Errorf("DecodeVerdict(%q) err = %v, want ErrBadVerdict", tc.in, err)
		}
		if v.Pass != tc.pass {
			t.Errorf("DecodeVerdict(%q).Pass = %v", tc.in, v.Pass)
		}
	}
}

func TestVerdictEncodeLimits(t *testing.T) {
	leaked := make([]string, 1000)
	for i := range leaked {
		leaked[i] = strings.Repeat("p", 1000)
	}
	p, err := EncodeVerdict(Verdict{ExitCode: -1, Reason: strings.Repeat("é", MaxVerdict), Leaked: leaked})
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeVerdict(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Reason) > MaxReason || len(v.Leaked) != maxLeaked+1 {
		t.Errorf("reason %d bytes, %d leaked", len(v.Reason), len(v.Leaked))
	}
}

func TestHello(t *testing.T) {
	want := Hello{Version: Version, Role: RoleControl, Streams: StreamsOf(RoleOutput, RoleDiag), Agent: "a"}
	h, err := DecodeHello(EncodeHello(want))
	if err != nil || h != want {
		t.Fatalf("got %+v, %v", h, err)
	}
	// Another version decodes to its version only (the caller says ErrVersion).
	if h, err := DecodeHello(EncodeHello(Hello{Version: 7, Agent: "a"})); err != nil || h != (Hello{Version: 7}) {
		t.Fatalf("version 7: got %+v, %v", h, err)
	}
	for _, p := range []string{"", "RGVMPRO", "XXXXXXXX\x00\x01", "RGVMPROT\x00\x02",
		"RGVMPROT\x00\x02\x09\x00", // unknown role
		"RGVMPROT\x00\x02\x01\x03", // streams bit 0/1: no such data roles
		"RGVMPROT\x00\x02\x02\x04", // a data stream declaring streams
		"RGVMPROT\x00\x02\x01\x00\xff"} {
		if _, err := DecodeHello([]byte(p)); !errors.Is(err, ErrBadHello) {
			t.Errorf("DecodeHello(%q) = %v, want ErrBadHello", p, err)
		}
	}
}

// byteStream is a one-way test transport: reads from a fixed byte slice, writes
// are recorded.
type byteStream struct {
	io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (s *byteStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func TestCollect(t *testing.T) {
	hello := helloFrame(t, Version)
	pass := verdictFrame(t, Verdict{Pass: true})
	fail := verdictFrame(t, Verdict{ExitCode: 3, Reason: "test failed"})
	out := frame(t, FrameStdout, []byte("out\n"))
	garbled := bytes.Clone(pass)
	garbled[len(garbled)-3] ^= 0x20
	for _, tc := range []struct {
		name   string
		in     []byte
		pass   bool
		exit   int
		err    error
		stdout string
	}{
		{"pass", cat(hello, out, pass), true, 0, nil, "out\n"},
		{"failing test", cat(hello, out, fail), false, 3, nil, "out\n"},
		{"empty stream", nil, false, -1, ErrNoVerdict, ""},
		{"no verdict", cat(hello, out), false, -1, ErrNoVerdict, "out\n"},
		{"no hello", cat(out, pass), false, -1, ErrBadHello, ""},
		{"unknown version", cat(helloFrame(t, Version+1), pass), false, -1, ErrVersion, ""},
		{"truncated verdict", cat(hello, pass[:len(pass)-2]), false, -1, ErrTruncated, ""},
		{"garbled verdict", cat(hello, garbled), false, -1, ErrBadFrame, ""},
		{"bad verdict json", cat(hello, frame(t, FrameVerdict, []byte(`{"pass":true`))), false, -1, ErrBadVerdict, ""},
		{"duplicate verdict", cat(hello, pass, pass), false, 0, ErrDuplicateVerdict, ""},
		{"pass then fail", cat(hello, pass, fail), false, 0, ErrDuplicateVerdict, ""},
		{"frame after verdict", cat(hello, pass, out), false, 0, ErrFrameAfterVerdict, ""},
		{"garbage after verdict", cat(hello, pass, []byte("junk junk junk")), false, 0, ErrBadFrame, ""},
		{"second hello", cat(hello, hello, pass), false, -1, ErrUnexpectedFrame, ""},
		{"ack from guest", cat(hello, frame(t, FrameAck, nil), pass), false, -1, ErrUnexpectedFrame, ""},
		{"plain text", []byte("n-it-result pass\n"), false, -1, ErrBadFrame, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			res, err := Collect(context.Background(), &byteStream{Reader: bytes.NewReader(tc.in)}, CollectOptions{Stdout: &stdout})
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if res.Pass != tc.pass || res.ExitCode() != tc.exit {
				t.Errorf("pass=%v exit=%d, want %v %d (reason %q)", res.Pass, res.ExitCode(), tc.pass, tc.exit, res.Reason)
			}
			if !res.Pass && res.Reason == "" {
				t.Errorf("failure without a reason")
			}
			if got := stdout.String(); !strings.HasPrefix(got, tc.stdout) {
				t.Errorf("stdout %q, want %q", got, tc.stdout)
			}
		})
	}
}

func TestCollectContext(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	go func() { _, _ = guest.Write(helloFrame(t, Version)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := Collect(ctx, host, CollectOptions{})
	if !errors.Is(err, ErrNoVerdict) || res.Pass {
		t.Fatalf("res %+v err %v, want ErrNoVerdict", res, err)
	}
}

// TestSession runs both sides over a synchronous in-memory pipe.
func TestSession(t *testing.T) {
	for _, pass := range []bool{true, false} {
		host, guest := net.Pipe()
		errc := make(chan error, 1)
		go func() {
			g, err := NewGuest(guest, "test")
			if err != nil {
				errc <- err
				return
			}
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := g.Stdout()
					if i%2 == 1 {
						w = g.Stderr()
					}
					for range 100 {
						_, _ = w.Write([]byte("line\n"))
					}
					_ = g.Diag("diag")
				}()
			}
			wg.Wait()
			v := Verdict{Pass: pass}
			if !pass {
				v.ExitCode, v.Reason = 1, "boom"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = g.Finish(ctx, v)
			guest.Close() // "power off"
			errc <- err
		}()
		var stdout, stderr, diag bytes.Buffer
		res, err := Collect(context.Background(), host, CollectOptions{Stdout: &stdout, Stderr: &stderr, Diag: &diag})
		if err != nil {
			t.Fatal(err)
		}
		if gerr := <-errc; gerr != nil {
			t.Fatalf("guest: %v", gerr)
		}
		if res.Pass != pass || stdout.Len() != 1000 || stderr.Len() != 1000 || diag.String() != strings.Repeat("diag\n", 4) {
			t.Errorf("pass %v (want %v), stdout %d, stderr %d, diag %q", res.Pass, pass, stdout.Len(), stderr.Len(), diag.String())
		}
		if !pass && res.Reason != "boom" {
			t.Errorf("reason %q", res.Reason)
		}
		host.Close()
	}
}

func TestFinishNoAck(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	go func() { _, _ = io.Copy(io.Discard, host) }() // a host that never acks
	g, err := NewGuest(guest, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Finish(ctx, Verdict{Pass: true}); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Finish = %v, want ErrNoAck", err)
	}
}

func TestFinishStuckTransport(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	go func() { _, _ = io.ReadFull(host, make([]byte, HeaderSize+helloFixed+4)) }() // the Hello, then nothing: the verdict write blocks
	g, err := NewGuest(guest, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Finish(ctx, Verdict{Pass: true}); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Finish = %v, want ErrNoAck", err)
	}
}

func TestFinishHostEOF(t *testing.T) {
	s := &byteStream{Reader: bytes.NewReader(nil)}
	g, err := NewGuest(s, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Finish(context.Background(), Verdict{Pass: true}); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Finish = %v, want ErrNoAck", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

func TestWriterSticky(t *testing.T) {
	w := NewWriter(failWriter{})
	if err := w.Diag("a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v", err)
	}
	if err := w.Ack(); !errors.Is(err, ErrClosed) || w.Err() == nil {
		t.Fatalf("not sticky: %v", err)
	}
}
