package protocol

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// seeds returns well-formed and broken streams for the fuzzers.
func seeds(t testing.TB) [][]byte {
	hello := helloFrame(t, Version)
	pass := verdictFrame(t, Verdict{Pass: true})
	return [][]byte{
		nil,
		hello,
		cat(hello, frame(t, FrameStdout, []byte("out")), frame(t, FrameEvent, []byte(`{"Action":"pass"}`)), pass),
		cat(hello, verdictFrame(t, Verdict{ExitCode: 1, Reason: "x", Leaked: []string{"7 sleep"}})),
		cat(hello, pass, pass),
		cat(hello, pass[:len(pass)-1]),
		[]byte("n-it-result pass\n"),
	}
}

// FuzzDecode feeds arbitrary bytes to the Reader: it must never panic,
// must return only frames that re-encode to the same bytes, and must end
// with EOF or one of its sentinel errors.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var re []byte
		for {
			fr, err := r.ReadFrame()
			if err == io.EOF {
				if !bytes.Equal(re, in) {
					t.Fatalf("re-encoding differs")
				}
				return
			}
			if err != nil {
				if !isDecodeError(err) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(fr.Payload) > MaxPayloadFor(fr.Type) {
				t.Fatalf("%v payload %d bytes", fr.Type, len(fr.Payload))
			}
			re, err = AppendFrame(re, fr.Type, fr.Payload)
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzCollect runs the host session on arbitrary bytes: a pass must only
// come from a stream of valid frames with a Hello, one passing Verdict and
// nothing after it; every failure must carry a reason.
func FuzzCollect(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := Collect(context.Background(), &byteStream{Reader: bytes.NewReader(in)}, CollectOptions{Stdout: io.Discard})
		if !passed(t, res, err) {
			return
		}
		r := NewReader(bytes.NewReader(in))
		var types []FrameType
		for {
			fr, err := r.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("pass on a stream with a decode error: %v", err)
			}
			types = append(types, fr.Type)
			if fr.Type == FrameVerdict {
				v, err := DecodeVerdict(fr.Payload)
				if err != nil || !v.Pass || v.ExitCode != 0 {
					t.Fatalf("pass from verdict %q (%v)", fr.Payload, err)
				}
			}
		}
		if len(types) < 2 || types[0] != FrameHello || types[len(types)-1] != FrameVerdict {
			t.Fatalf("pass from frames %v", types)
		}
	})
}

// FuzzDecodeVerdict checks that a decoded pass is consistent and survives a
// round trip.
func FuzzDecodeVerdict(f *testing.F) {
	for _, s := range []string{`{"pass":true,"exit_code":0}`, `{"pass":false,"exit_code":2,"reason":"r","leaked":["1 a"]}`, `{}`, `{"pass":true,"exit_code":0,"timings":{"boot_ns":5}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := DecodeVerdict(in)
		if err != nil {
			if !errors.Is(err, ErrBadVerdict) {
				t.Fatalf("error %v does not wrap ErrBadVerdict", err)
			}
			return
		}
		if v.Pass && (v.ExitCode != 0 || v.Signal != "" || len(v.Leaked) != 0) {
			t.Fatalf("inconsistent pass %+v", v)
		}
		p, err := EncodeVerdict(v)
		if err != nil {
			return // e.g. over-long fields: cut on encode, fine
		}
		v2, err := DecodeVerdict(p)
		if err != nil || v2.Pass != v.Pass || v2.ExitCode != v.ExitCode {
			t.Fatalf("round trip: %+v -> %+v (%v)", v, v2, err)
		}
	})
}

// FuzzParseConfig checks that whatever parses also validates and
// re-marshals, and holds the guest's reflection-free decoder to
// encoding/json: what it accepts, encoding/json decodes the same, and
// whatever encoding/json accepts, Marshal turns into a text it decodes the
// same.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"path":"/t","channel":{"kind":"vsock","port":1}}`))
	f.Add([]byte(`{"path":"/t","dir":"/","env":["A=b"],"timeout":"1s","channel":{"kind":"serial","device":"/dev/vport0p1"},"hugepage_sizes":["2M"]}`))
	f.Add([]byte(`{"path":"/t","channel":{"kind":"vsock","port":1},"vfio_nics":["0000:00:10.0","0000:00:1f.7"]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ref, refErr := referenceParseConfig(in)
		if refErr == nil {
			b, err := ref.Marshal()
			if err != nil {
				t.Fatalf("encoding/json's config does not marshal: %v", err)
			}
			if got, err := ParseConfig(b); err != nil || !reflect.DeepEqual(got, ref) {
				t.Fatalf("Marshal output %s\nparses to %#v, %v\nencoding/json: %#v", b, got, err, ref)
			}
		}
		c, err := ParseConfig(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		if refErr != nil || !reflect.DeepEqual(c, ref) {
			t.Fatalf("ParseConfig(%q) = %#v\nencoding/json: %#v, %v", in, c, ref, refErr)
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed config does not marshal: %v", err)
		}
		if _, err := ParseConfig(b); err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b)
		}
	})
}

// FuzzSessionFrames builds a stream of well-formed frames from the input
// (each: type byte, length byte, payload) so the fuzzer explores session
// rules rather than checksums: Collect may pass only for Hello(Version),
// output frames, and one final passing Verdict.
func FuzzSessionFrames(f *testing.F) {
	hello := EncodeHello(Hello{Version: Version, Role: RoleControl})
	pass, _ := EncodeVerdict(Verdict{Pass: true})
	seed := func(parts ...[]byte) []byte { return cat(parts...) }
	rec := func(t FrameType, p []byte) []byte { return append([]byte{byte(t), byte(len(p))}, p...) }
	f.Add(seed(rec(FrameHello, hello), rec(FrameStdout, []byte("x")), rec(FrameVerdict, pass)))
	f.Add(seed(rec(FrameHello, hello), rec(FrameVerdict, pass), rec(FrameVerdict, pass)))
	f.Add(seed(rec(FrameHello, hello), rec(FrameDiag, []byte("d")), rec(FrameAck, nil)))
	f.Fuzz(func(t *testing.T, in []byte) {
		var wire []byte
		var types []FrameType
		var payloads [][]byte
		for len(in) >= 2 {
			ft, n := FrameType(in[0]%11), int(in[1])
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			p := in[:n]
			in = in[n:]
			b, err := AppendFrame(wire, ft, p)
			if err != nil {
				continue
			}
			wire = b
			types = append(types, ft)
			payloads = append(payloads, p)
		}
		res, err := Collect(context.Background(), &byteStream{Reader: bytes.NewReader(wire)}, CollectOptions{})
		if !res.Pass {
			if res.Reason == "" {
				t.Fatalf("failure without a reason (%v)", err)
			}
			return
		}
		n := len(types)
		h, herr := DecodeHello(payloads[0])
		if n < 2 || types[0] != FrameHello || herr != nil || h.Version != Version || types[n-1] != FrameVerdict {
			t.Fatalf("pass from frames %v", types)
		}
		for i, ft := range types[1 : n-1] {
			if ft != FrameStdout && ft != FrameStderr && ft != FrameEvent && ft != FrameDiag && ft != FrameFile {
				t.Fatalf("pass with %v at %d", ft, i+1)
			}
		}
		if v, err := DecodeVerdict(payloads[n-1]); err != nil || !v.Pass {
			t.Fatalf("pass from verdict %q", payloads[n-1])
		}
	})
}

// FuzzDecodeHello: whatever decodes as this version re-encodes to the same
// payload and is consistent.
func FuzzDecodeHello(f *testing.F) {
	f.Add(EncodeHello(Hello{Version: Version, Role: RoleControl, Streams: StreamsOf(DataRoles...), Agent: "g"}))
	f.Add(EncodeHello(Hello{Version: Version, Role: RoleOutput}))
	f.Add(EncodeHello(Hello{Version: 1, Agent: "old"}))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := DecodeHello(p)
		if err != nil {
			if !errors.Is(err, ErrBadHello) {
				t.Fatalf("error %v does not wrap ErrBadHello", err)
			}
			return
		}
		if h.Version != Version {
			return
		}
		if !h.Streams.Valid() || (h.Role != RoleControl && h.Streams != 0) {
			t.Fatalf("inconsistent hello %+v", h)
		}
		if !bytes.Equal(EncodeHello(h), p) {
			t.Fatalf("round trip differs")
		}
	})
}

// FuzzDecodeFileChunk: a decoded chunk never names a path outside the
// outputs directory.
func FuzzDecodeFileChunk(f *testing.F) {
	for _, p := range []string{"a", "a/b/c.txt", "../x", "/abs", "a/../../b", "a//b"} {
		b, _ := EncodeFileChunk(FileChunk{Path: "ok", Data: []byte("d")})
		f.Add(append([]byte{0, byte(len(p))}, p...))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := DecodeFileChunk(p)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error %v does not wrap ErrBadFile", err)
			}
			return
		}
		if !filepath.IsLocal(c.Path) || strings.Contains(c.Path, "..") && slices.Contains(strings.Split(c.Path, "/"), "..") {
			t.Fatalf("path %q escapes", c.Path)
		}
		if filepath.Join("/out", c.Path) != "/out/"+c.Path {
			t.Fatalf("path %q is not clean", c.Path)
		}
	})
}

// FuzzCollectStreams feeds adversarial bytes as up to MaxStreams+1
// concurrent connections (the input split at 0xFF 0xFE): a pass needs one
// well-formed control stream with a passing verdict and every declared
// stream ended; anything else fails with a reason, within the bounds.
func FuzzCollectStreams(f *testing.F) {
	ctrl := cat(frame(f, FrameHello, EncodeHello(Hello{Version: Version, Role: RoleControl, Streams: StreamsOf(RoleOutput)})), verdictFrame(f, Verdict{Pass: true}))
	out := cat(frame(f, FrameHello, EncodeHello(Hello{Version: Version, Role: RoleOutput})), frame(f, FrameStdout, []byte("x")), frame(f, FrameEnd, nil))
	sep := []byte{0xFF, 0xFE}
	f.Add(cat(ctrl, sep, out))
	f.Add(cat(out, sep, ctrl))
	f.Add(cat(ctrl, sep, out, sep, out))
	f.Add(cat(ctrl[:len(ctrl)-1], sep, out))
	f.Fuzz(func(t *testing.T, in []byte) {
		parts := bytes.Split(in, sep)
		if len(parts) > MaxStreams+1 {
			return
		}
		conns := make(chan io.ReadWriter, len(parts))
		for _, p := range parts {
			conns <- &byteStream{Reader: bytes.NewReader(p)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := collect(ctx, conns, CollectOptions{Linger: -1, DrainTimeout: 100 * time.Millisecond}, false)
		res, err = finishResult(res, err)
		if !passed(t, res, err) {
			return
		}
		if res.Verdict == nil || !res.Verdict.Pass || res.Hello.Role != RoleControl {
			t.Fatalf("pass without a control hello and a passing verdict: %+v", res)
		}
	})
}

// passed checks the invariants every fuzzed session keeps — no pass with an
// error, no failure without a reason — and reports whether it passed.
func passed(t *testing.T, res SessionResult, err error) bool {
	t.Helper()
	if err != nil && res.Pass {
		t.Fatalf("pass with error %v", err)
	}
	if !res.Pass && res.Reason == "" {
		t.Fatalf("failure without a reason (err %v)", err)
	}
	return res.Pass
}

// FuzzDecodeListenHello: whatever decodes re-encodes to the same bytes.
func FuzzDecodeListenHello(f *testing.F) {
	var b bytes.Buffer
	_ = WriteListenHello(&b, 42)
	f.Add(b.Bytes())
	f.Add([]byte(TemplateReady))
	f.Fuzz(func(t *testing.T, p []byte) {
		cid, err := DecodeListenHello(p)
		if err != nil {
			if !errors.Is(err, ErrBadListenHello) {
				t.Fatalf("error %v does not wrap ErrBadListenHello", err)
			}
			return
		}
		var again bytes.Buffer
		if err := WriteListenHello(&again, cid); err != nil || !bytes.Equal(again.Bytes(), p) {
			t.Fatalf("round trip of %q: %q, %v", p, again.Bytes(), err)
		}
	})
}
