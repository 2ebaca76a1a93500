package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// helloMagic opens every Hello payload.
const helloMagic = "RGVMPROT"

// helloVersionEnd is where the version ends in a Hello payload: the part
// every version shares (magic, version).
const helloVersionEnd = len(helloMagic) + 2

// helloFixed is the size of the fixed part of a version-2 Hello payload:
// magic, version, role, streams.
const helloFixed = helloVersionEnd + 2

// Role is what a connection (stream) carries. A session is one control
// stream and, optionally, one stream per data role, each its own
// connection, so a flood on one never delays another (and never the
// verdict).
type Role uint8

// Roles. Values are part of the wire format.
const (
	// RoleControl carries the Verdict (guest → host), Ack and Request
	// (host → guest), and the frames of every data role the control Hello
	// did not declare as its own stream.
	RoleControl Role = 1
	// RoleOutput carries Stdout and Stderr frames.
	RoleOutput Role = 2
	// RoleEvents carries Event frames.
	RoleEvents Role = 3
	// RoleDiag carries Diag frames.
	RoleDiag Role = 4
	// RoleFiles carries File frames.
	RoleFiles Role = 5
)

// DataRoles are the roles that can have their own stream, in the order the
// guest opens them.
var DataRoles = []Role{RoleOutput, RoleEvents, RoleDiag, RoleFiles}

var roleNames = map[Role]string{RoleControl: "control", RoleOutput: "output", RoleEvents: "events", RoleDiag: "diag", RoleFiles: "files"}

// String returns the role's name.
func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Carries reports whether a stream of role r carries frames of type t
// (besides End). The control stream's share depends on its Hello, see
// Streams.CarriedBy.
func (r Role) Carries(t FrameType) bool {
	switch r {
	case RoleOutput:
		return t == FrameStdout || t == FrameStderr
	case RoleEvents:
		return t == FrameEvent
	case RoleDiag:
		return t == FrameDiag
	case RoleFiles:
		return t == FrameFile
	}
	return false
}

// Streams is a set of data roles (bit 1<<role), declared by the control
// Hello: the guest opens one stream for each.
type Streams uint8

// StreamsOf returns the set of roles.
func StreamsOf(roles ...Role) Streams {
	var s Streams
	for _, r := range roles {
		s |= 1 << r
	}
	return s
}

// Has reports whether r is in s.
func (s Streams) Has(r Role) bool { return r < 8 && s&(1<<r) != 0 }

// Valid reports whether s holds data roles only.
func (s Streams) Valid() bool { return s&^StreamsOf(DataRoles...) == 0 }

// CarriedBy returns the role whose stream carries frame type t in a session
// declaring s: the data role if it has its own stream, else RoleControl.
// It returns 0 for types no guest stream carries.
func (s Streams) CarriedBy(t FrameType) Role {
	for _, r := range DataRoles {
		if r.Carries(t) {
			if s.Has(r) {
				return r
			}
			return RoleControl
		}
	}
	if t == FrameVerdict {
		return RoleControl
	}
	return 0
}

// Hello is the first frame of every stream.
type Hello struct {
	// Version is the protocol version of the sender.
	Version uint16
	// Role is what this stream carries.
	Role Role
	// Streams, on the control stream only, is the set of data roles the
	// guest opens streams for; 0 means the control stream carries
	// everything (one connection, e.g. virtio-serial).
	Streams Streams
	// Agent names the sender (e.g. "guestinit linux/amd64"); informational.
	Agent string
}

// EncodeHello returns the payload of h. The agent is cut to MaxAgent bytes.
func EncodeHello(h Hello) []byte {
	agent := truncateUTF8(h.Agent, MaxAgent)
	p := make([]byte, 0, helloFixed+len(agent))
	p = append(p, helloMagic...)
	p = binary.BigEndian.AppendUint16(p, h.Version)
	p = append(p, byte(h.Role), byte(h.Streams))
	return append(p, agent...)
}

// DecodeHello parses a Hello payload. It fails with ErrBadHello on a bad
// magic, role, stream set or agent. A Hello of another version decodes to
// just its Version (the rest of its layout is unknown), for the caller to
// fail with ErrVersion.
func DecodeHello(p []byte) (Hello, error) {
	if len(p) < helloVersionEnd || string(p[:len(helloMagic)]) != helloMagic {
		return Hello{}, fmt.Errorf("hello payload %q: %w", clip(p), ErrBadHello)
	}
	h := Hello{Version: binary.BigEndian.Uint16(p[len(helloMagic):helloVersionEnd])}
	if h.Version != Version {
		return h, nil
	}
	if len(p) < helloFixed {
		return Hello{}, fmt.Errorf("hello payload %q: %w", clip(p), ErrBadHello)
	}
	h.Role, h.Streams = Role(p[helloVersionEnd]), Streams(p[helloVersionEnd+1])
	if _, ok := roleNames[h.Role]; !ok {
		return Hello{}, fmt.Errorf("hello: %v: %w", h.Role, ErrBadHello)
	}
	if !h.Streams.Valid() || (h.Role != RoleControl && h.Streams != 0) {
		return Hello{}, fmt.Errorf("hello: %v stream declares streams %#02x: %w", h.Role, uint8(h.Streams), ErrBadHello)
	}
	agent := p[helloFixed:]
	if len(agent) > MaxAgent || !utf8.Valid(agent) {
		return Hello{}, fmt.Errorf("hello agent %q: %w", clip(agent), ErrBadHello)
	}
	h.Agent = string(agent)
	return h, nil
}

// Request is what the host asks of the guest init (FrameRequest payload).
type Request uint8

// Requests.
const (
	// RequestStacks: send SIGQUIT to the test (a Go test prints every
	// goroutine's stack and exits) because the host is being stopped.
	RequestStacks Request = 1
)

// DecodeRequest parses a Request payload; unknown requests fail with
// ErrBadFrame.
func DecodeRequest(p []byte) (Request, error) {
	if len(p) != 1 || Request(p[0]) != RequestStacks {
		return 0, fmt.Errorf("request %q: %w", clip(p), ErrBadFrame)
	}
	return Request(p[0]), nil
}

// FileChunk is one chunk of an output file (FrameFile payload: uint16
// big-endian path length, the path, then the data). The chunks of one file
// are consecutive; the first creates the file, the next ones append.
type FileChunk struct {
	// Path is relative to the outputs directory, slash-separated, clean
	// (see ValidOutputPath).
	Path string
	// Data is at most MaxFileChunk bytes.
	Data []byte
}

// EncodeFileChunk returns the payload of c.
func EncodeFileChunk(c FileChunk) ([]byte, error) {
	if err := ValidOutputPath(c.Path); err != nil {
		return nil, err
	}
	if len(c.Data) > MaxFileChunk {
		return nil, fmt.Errorf("%w: chunk of %d bytes > %d", ErrBadFile, len(c.Data), MaxFileChunk)
	}
	p := make([]byte, 0, 2+len(c.Path)+len(c.Data))
	p = binary.BigEndian.AppendUint16(p, uint16(len(c.Path)))
	p = append(p, c.Path...)
	return append(p, c.Data...), nil
}

// DecodeFileChunk parses a File payload and checks its path. The Data
// aliases p.
func DecodeFileChunk(p []byte) (FileChunk, error) {
	if len(p) < 2 {
		return FileChunk{}, fmt.Errorf("%w: %d-byte payload", ErrBadFile, len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if len(p) < 2+n {
		return FileChunk{}, fmt.Errorf("%w: path of %d bytes in a %d-byte payload", ErrBadFile, n, len(p))
	}
	c := FileChunk{Path: string(p[2 : 2+n]), Data: p[2+n:]}
	if err := ValidOutputPath(c.Path); err != nil {
		return FileChunk{}, err
	}
	if len(c.Data) > MaxFileChunk {
		return FileChunk{}, fmt.Errorf("%w: chunk of %d bytes > %d", ErrBadFile, len(c.Data), MaxFileChunk)
	}
	return c, nil
}

// Output path limits.
const (
	// MaxPathDepth is the most elements an output file path has ("a/b/c"
	// has 3): a path costs the host one directory per element, and depth
	// is free for a guest to make.
	MaxPathDepth = 32
)

// ReservedOutputNames are the names the Bazel launcher keeps for its own
// files in the outputs directory (TEST_UNDECLARED_OUTPUTS_DIR): no output
// path may start with one, so a test's file never collides with them.
var ReservedOutputNames = []string{"console.log", "qemu-command.txt", "runner.log", "test.json"}

// CoverageOutputDir is the first element of the output paths that carry the
// files of GuestConfig.CoverageDir: the guest init sends "CoverageOutputDir/f"
// for its file f, and the host puts f with the test's coverage, not with its
// undeclared outputs. A test's own output file may not start with it.
const CoverageOutputDir = "invm-coverage"

// CoveragePath reports whether the output path p carries a coverage file
// (see CoverageOutputDir) and returns its path inside the coverage
// directory.
func CoveragePath(p string) (string, bool) {
	return strings.CutPrefix(p, CoverageOutputDir+"/")
}

// ValidOutputPath checks an output file path: 1 to MaxPath bytes of UTF-8,
// relative, slash-separated, already clean, at most MaxPathDepth elements,
// no "." or ".." element, no control character (C0, DEL, C1), no
// backslash, and a first element that is not one of ReservedOutputNames.
// Anything else (e.g. "../x", "/etc/passwd", "a//b", "console.log") fails
// with ErrBadFile, naming the rule and the fix.
func ValidOutputPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: path %q: %s", ErrBadFile, clip([]byte(p)), why) }
	switch {
	case p == "" || len(p) > MaxPath:
		return bad(fmt.Sprintf("want 1 to %d bytes", MaxPath))
	case !utf8.ValidString(p) || strings.ContainsRune(p, '\\'):
		return bad("not UTF-8, or holds a backslash")
	case strings.IndexFunc(p, isControl) >= 0:
		return bad("holds a control character; rename the file")
	case strings.HasPrefix(p, "/") || path.Clean(p) != p || !filepath.IsLocal(p):
		return bad("not a clean relative path inside the outputs directory")
	}
	elems := strings.Split(p, "/")
	for _, e := range elems {
		if e == "." || e == ".." {
			return bad("has a . or .. element")
		}
	}
	if len(elems) > MaxPathDepth {
		return bad(fmt.Sprintf("%d levels deep, at most %d allowed; write it higher up", len(elems), MaxPathDepth))
	}
	if slices.Contains(ReservedOutputNames, elems[0]) {
		return bad(fmt.Sprintf("%s is the runner's own file in the outputs directory (reserved: %s); rename it",
			elems[0], strings.Join(ReservedOutputNames, ", ")))
	}
	return nil
}

// isControl reports C0 controls (NUL, newline, escape, ...), DEL and C1
// controls: bytes that would garble a log or a terminal showing the name.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// Verdict is the guest's final word on the test run. Only a Verdict with
// Pass true, ExitCode 0, no Signal and no Leaked processes is a pass; the
// decoder rejects a Verdict claiming Pass with anything else.
type Verdict struct {
	// Pass is true when the test exited 0, left no process behind and init
	// saw nothing wrong.
	Pass bool `json:"pass"`
	// ExitCode is the test process' exit code (0 to MaxExitCode), or -1
	// (NoExitCode) when it was killed by a signal or never ran: the
	// "signal form", with Signal naming the signal. DecodeVerdict refuses
	// anything else, so no verdict can make a host exit with a status
	// that wraps to 0 (os.Exit(256) is status 0).
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

// Exit code bounds of a Verdict.
const (
	// MaxExitCode is the largest exit code a process can report.
	MaxExitCode = 255
	// NoExitCode is Verdict.ExitCode for a test killed by a signal or never
	// run.
	NoExitCode = -1
)

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
	p := appendVerdict(nil, v)
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
// least "pass" and "exit_code", nothing after it, an exit code from
// NoExitCode to MaxExitCode, and a pass only when ExitCode is 0 with no
// Signal and no Leaked processes. Errors wrap ErrBadVerdict.
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
	if c := *w.ExitCode; c < NoExitCode || c > MaxExitCode {
		return Verdict{}, fmt.Errorf("%w: exit_code %d: want %d to %d (%d: killed by a signal or never ran)",
			ErrBadVerdict, c, NoExitCode, MaxExitCode, NoExitCode)
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
