package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// helloMagic opens every Hello payload.
const helloMagic = "RGVMPROT"

// helloFixed is the size of the fixed part of a Hello payload.
const helloFixed = len(helloMagic) + 2

// Hello is the first frame of a session.
type Hello struct {
	// Version is the protocol version of the sender.
	Version uint16
	// Agent names the sender (e.g. "guestinit linux/amd64"); informational.
	Agent string
}

// EncodeHello returns the payload of h. The agent is cut to MaxAgent bytes.
func EncodeHello(h Hello) []byte {
	agent := truncateUTF8(h.Agent, MaxAgent)
	p := make([]byte, 0, helloFixed+len(agent))
	p = append(p, helloMagic...)
	p = binary.BigEndian.AppendUint16(p, h.Version)
	return append(p, agent...)
}

// DecodeHello parses a Hello payload. It does not check the version (see
// Collect); it fails with ErrBadHello on a bad magic or agent.
func DecodeHello(p []byte) (Hello, error) {
	if len(p) < helloFixed || string(p[:len(helloMagic)]) != helloMagic {
		return Hello{}, fmt.Errorf("hello payload %q: %w", clip(p), ErrBadHello)
	}
	agent := p[helloFixed:]
	if len(agent) > MaxAgent || !utf8.Valid(agent) {
		return Hello{}, fmt.Errorf("hello agent %q: %w", clip(agent), ErrBadHello)
	}
	return Hello{Version: binary.BigEndian.Uint16(p[len(helloMagic):helloFixed]), Agent: string(agent)}, nil
}

// Verdict is the guest's final word on the test run. Only a Verdict with
// Pass true, ExitCode 0, no Signal and no Leaked processes is a pass; the
// decoder rejects a Verdict claiming Pass with anything else.
type Verdict struct {
	// Pass is true when the test exited 0, left no process behind and init
	// saw nothing wrong.
	Pass bool `json:"pass"`
	// ExitCode is the test process' exit code, or -1 when it was killed by a
	// signal or never ran.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that killed the test ("SIGSEGV"), if any.
	Signal string `json:"signal,omitempty"`
	// Reason explains a failure in one human-readable line (may be empty on
	// a pass). At most MaxReason bytes are sent.
	Reason string `json:"reason,omitempty"`
	// Leaked names the processes still alive after the test exited
	// ("1234 sleep 1000"), which init then killed.
	Leaked []string `json:"leaked,omitempty"`
	// Timings are guest-side monotonic durations.
	Timings Timings `json:"timings"`
}

// Timings are durations measured on the guest's monotonic clocks.
type Timings struct {
	// Boot is the guest's CLOCK_BOOTTIME when init started: the kernel's
	// share of the boot.
	Boot time.Duration `json:"boot_ns"`
	// Setup is init start → test process started (mounts, config, channel).
	Setup time.Duration `json:"setup_ns"`
	// Test is test process start → test process exit.
	Test time.Duration `json:"test_ns"`
	// Teardown is test exit → verdict sent (leak check, reaping, draining).
	Teardown time.Duration `json:"teardown_ns"`
}

// maxLeaked is how many leaked process names a Verdict carries at most.
const maxLeaked = 64

// EncodeVerdict returns the payload of v, cutting Reason to MaxReason bytes
// and Leaked to 64 names of at most 256 bytes each.
func EncodeVerdict(v Verdict) ([]byte, error) {
	v.Reason = truncateUTF8(v.Reason, MaxReason)
	v.Signal = truncateUTF8(v.Signal, 64)
	if len(v.Leaked) > maxLeaked {
		v.Leaked = append(v.Leaked[:maxLeaked:maxLeaked], fmt.Sprintf("... and %d more", len(v.Leaked)-maxLeaked))
	}
	leaked := make([]string, len(v.Leaked))
	for i, s := range v.Leaked {
		leaked[i] = truncateUTF8(s, 256)
	}
	if len(leaked) > 0 {
		v.Leaked = leaked
	}
	p, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode verdict: %w", err)
	}
	if len(p) > MaxVerdict {
		return nil, fmt.Errorf("encode verdict: %d bytes: %w", len(p), ErrFrameTooLarge)
	}
	return p, nil
}

// wireVerdict makes "pass" and "exit_code" mandatory on decode.
type wireVerdict struct {
	Pass     *bool    `json:"pass"`
	ExitCode *int     `json:"exit_code"`
	Signal   string   `json:"signal"`
	Reason   string   `json:"reason"`
	Leaked   []string `json:"leaked"`
	Timings  Timings  `json:"timings"`
}

// DecodeVerdict parses and checks a Verdict payload: one JSON object with at
// least "pass" and "exit_code", nothing after it, and a pass only when
// ExitCode is 0 with no Signal and no Leaked processes. Errors wrap
// ErrBadVerdict.
func DecodeVerdict(p []byte) (Verdict, error) {
	var w wireVerdict
	dec := json.NewDecoder(bytes.NewReader(p))
	if err := dec.Decode(&w); err != nil {
		return Verdict{}, fmt.Errorf("%w: %v", ErrBadVerdict, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(p, " \t\r\n"))) {
		return Verdict{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadVerdict)
	}
	if w.Pass == nil || w.ExitCode == nil {
		return Verdict{}, fmt.Errorf("%w: missing \"pass\" or \"exit_code\"", ErrBadVerdict)
	}
	v := Verdict{Pass: *w.Pass, ExitCode: *w.ExitCode, Signal: w.Signal, Reason: w.Reason, Leaked: w.Leaked, Timings: w.Timings}
	if v.Pass && (v.ExitCode != 0 || v.Signal != "" || len(v.Leaked) > 0) {
		return Verdict{}, fmt.Errorf("%w: pass with exit code %d, signal %q, %d leaked processes",
			ErrBadVerdict, v.ExitCode, v.Signal, len(v.Leaked))
	}
	return v, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clip shortens p for error messages.
func clip(p []byte) []byte {
	if len(p) > 64 {
		return p[:64]
	}
	return p
}
