package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// referenceParseConfig is ParseConfig on encoding/json: the decoder the
// reflection-free one stands in for.
func referenceParseConfig(b []byte) (GuestConfig, error) {
	var c GuestConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return GuestConfig{}, err
	}
	if dec.More() {
		return GuestConfig{}, errors.New("trailing data")
	}
	if err := c.Validate(); err != nil {
		return GuestConfig{}, err
	}
	return c.WithDefaults(), nil
}

func TestParseConfigLikeEncodingJSON(t *testing.T) {
	full := `{
  "path": "/invm/pkg/x.test",
  "args": ["-test.v", "-test.run=^TestA$", "\u00e9\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t"],
  "env": [],
  "dir": "/invm/pkg",
  "timeout": "1m30s",
  "kill_grace": 2000000000,
  "ack_timeout": "-0s",
  "channel": {"kind": "vsock", "cid": 2, "port": 4294967295},
  "hugepage_sizes": ["2M", "1G"],
  "hostname": "vm-1",
  "verbose": true,
  "debug_port": 1025,
  "vfio_nics": ["0000:00:10.0", "0000:00:11.0"],
  "coverage_dir": "/invm/coverage"
}`
	for _, in := range []string{
		full,
		`{"path":"/t","channel":{"kind":"serial","device":"/dev/vport0p1"}}`,
		` {"channel":{"port":1,"kind":"vsock"},"path":"/t","timeout":0} ` + "\n",
		`{"path":"/t","channel":{"kind":"vsock","port":1},"timeout":-0,"verbose":false}`,
		`{"template":true,"channel":{"kind":"serial","device":"/dev/vport0p1"},"layer_share":"rgvm_layer","layer_window_base":268435456,"layer_window_size":134217728}`,
	} {
		got, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("ParseConfig(%s): %v", in, err)
		}
		want, err := referenceParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseConfig(%s)\n got %#v\nwant %#v", in, got, want)
		}
	}
}

// TestParseConfigStrict lists what the guest's decoder refuses, each with
// the words its error must contain.
func TestParseConfigStrict(t *testing.T) {
	const ok = `"path":"/t","channel":{"kind":"vsock","port":1}`
	for _, tc := range []struct{ in, want string }{
		{`{` + ok + `,"bogus":1}`, `unknown field "bogus"`},
		{`{` + ok + `,"channel":{"kind":"vsock","port":1,"x":1}}`, `key "channel" twice`},
		{`{"path":"/t","channel":{"kind":"vsock","port":1,"x":1}}`, `field "channel": json: offset 52: unknown field "x"`},
		{`{"Path":"/t","channel":{"kind":"vsock","port":1}}`, `unknown field "Path"`},
		{`{` + ok + `,"path":"/u"}`, `key "path" twice`},
		{`{` + ok + `,"dir":null}`, `field "dir": json: offset 55: want a string`},
		{`{` + ok + `,"debug_port":1.0}`, `field "debug_port"`},
		{`{` + ok + `,"debug_port":1e3}`, `want an integer`},
		{`{` + ok + `,"debug_port":-1}`, `want an integer from 0`},
		{`{` + ok + `,"debug_port":4294967296}`, `want an integer from 0`},
		{`{` + ok + `,"debug_port":01}`, `want ',' or '}'`},
		{`{` + ok + `,"timeout":"soon"}`, `field "timeout"`},
		{`{` + ok + `,"timeout":1.5}`, `want a duration string`},
		{`{` + ok + `,"timeout":99999999999999999999}`, `want a duration string`},
		{`{` + ok + `,"verbose":1}`, `want true or false`},
		{`{` + ok + `,"vfio_nics":"0000:00:10.0"}`, `field "vfio_nics"`},
		{`{` + ok + `,"vfio_nics":["0000:00:10"]}`, `vfio_nics "0000:00:10": want a PCI address`},
		{`{` + ok + `,"vfio_nics":["0000:00:10.0","0000:00:10.0"]}`, `vfio_nics "0000:00:10.0" twice`},
		{`{` + ok + `,"vfio_nics":["0000:00:20.0"]}`, `want a PCI address`},
		{`{` + ok + `,"coverage_dir":["/c"]}`, `field "coverage_dir"`},
		{`{` + ok + `,"coverage_dir":"c"}`, `coverage_dir "c": want a clean absolute directory`},
		{`{` + ok + `,"hostname":"a` + "\x01" + `"}`, `control character`},
		{`{` + ok + `,"hostname":"a\q"}`, `bad escape`},
		{`{` + ok + `,"hostname":"\ud800"}`, `lone surrogate`},
		{`{` + ok + `,"hostname":"\ud800\u0041"}`, `lone surrogate`},
		{`{` + ok + `,"hostname":"\u12`, `short \u escape`},
		{`{` + ok + `,"hostname":"\u12zz"}`, `bad \u escape`},
		{`{` + ok + `,"hostname":"` + "\xff" + `"}`, `invalid UTF-8`},
		{`{` + ok + `,"hostname":"abc`, `unterminated string`},
		{`{` + ok + `,"args":["a",]}`, `want a string`},
		{`{` + ok + `,"args":["a" "b"]}`, `want ',' or ']'`},
		{`{` + ok + `} {}`, `trailing data`},
		{`{` + ok + `,}`, `want a key`},
		{`{` + ok, `want ',' or '}'`},
		{`[]`, `want '{'`},
		{``, `want '{'`},
		{`null`, `want '{'`},
	} {
		_, err := ParseConfig([]byte(tc.in))
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v, want ErrInvalidConfig containing %q", tc.in, err, tc.want)
		}
	}
}

func TestEncodeVerdictLikeEncodingJSON(t *testing.T) {
	for _, v := range []Verdict{
		{Pass: true},
		{ExitCode: -1, Signal: "SIGKILL", Reason: "killed", Timings: Timings{Boot: time.Second, Setup: 2, Test: 3, Teardown: 4}},
		{ExitCode: 1, Reason: "a \"quoted\" \\ <tag> & \x00\x1f\x7f\n\r\t é 😀 \u2028 \xff\xfe", Leaked: []string{"12 sleep 100", "", "\xc3"}},
		{ExitCode: 2, Leaked: []string{}},
	} {
		got, err := EncodeVerdict(v)
		if err != nil {
			t.Fatal(err)
		}
		checkVerdictJSON(t, v, got)
	}
}

// checkVerdictJSON checks that p is valid JSON that encoding/json decodes to
// what it decodes from its own encoding of v.
func checkVerdictJSON(t *testing.T, v Verdict, p []byte) {
	t.Helper()
	if !json.Valid(p) {
		t.Fatalf("invalid JSON %q", p)
	}
	ref, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(p, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v encodes to\n%s\nencoding/json:\n%s", v, p, ref)
	}
}

// FuzzEncodeVerdict holds the reflection-free verdict encoder to
// encoding/json.
func FuzzEncodeVerdict(f *testing.F) {
	f.Add(true, 0, "", "", "", int64(5))
	f.Add(false, -1, "SIGSEGV", "a \"b\" \x00 \xff", "1 x\n2 y", int64(-3))
	f.Fuzz(func(t *testing.T, pass bool, code int, signal, reason, leaked string, d int64) {
		v := Verdict{Pass: pass, ExitCode: code, Signal: signal, Reason: reason, Timings: Timings{Boot: time.Duration(d), Test: time.Duration(d / 3)}}
		if leaked != "" {
			v.Leaked = strings.Split(leaked, "\n")
		}
		p := appendVerdict(nil, v)
		checkVerdictJSON(t, v, p)
	})
}
