package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// ConfigPath is where the host puts the GuestConfig (JSON) in the initramfs
// and where the guest init reads it. The environment variable ConfigEnv of
// init overrides it.
const ConfigPath = "/invm/config.json"

// ConfigEnv is the environment variable of init that overrides ConfigPath.
// The kernel passes unknown "name=value" command line parameters without a
// dot to init as environment variables, so "INVM_CONFIG=/x.json" on the
// kernel command line works.
const ConfigEnv = "INVM_CONFIG"

// HostCID is the vsock context ID of the host, which the guest dials.
const HostCID = 2

// DefaultVsockPort is the vsock port the guest dials when the config does
// not say otherwise (and when the config cannot be read at all, so that the
// guest can still report that as a FAIL verdict).
const DefaultVsockPort = 1024

// Channel kinds.
const (
	// ChannelVsock: the guest dials HostCID:Port over AF_VSOCK.
	ChannelVsock = "vsock"
	// ChannelSerial: the guest opens the virtio-serial port Device.
	ChannelSerial = "serial"
	// ChannelVsockListen: the guest listens on its vsock Port and the host
	// dials it; every stream travels on that one connection, as over
	// virtio-serial. A template's channel on kernel vhost-vsock: a restore
	// gets a new guest CID (the guest learns it from the transport reset
	// QEMU sends after loading), so the guest cannot keep the template's
	// connection, and the host, which knows the new CID, dials it.
	ChannelVsockListen = "vsock-listen"
)

// TemplateListenPort is the guest's port of a ChannelVsockListen template.
const TemplateListenPort = 1026

// Defaults of GuestConfig fields left zero.
const (
	// DefaultTimeout bounds the test process' run.
	DefaultTimeout = 10 * time.Minute
	// DefaultAckTimeout bounds the guest's wait for the host's Ack.
	DefaultAckTimeout = 5 * time.Second
	// DefaultKillGrace is the time between SIGQUIT and SIGKILL on timeout.
	DefaultKillGrace = 5 * time.Second
)

// ErrInvalidConfig is wrapped by every GuestConfig validation error.
var ErrInvalidConfig = errors.New("protocol: invalid guest config")

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("90s", "1m30s"); a JSON number is taken as nanoseconds.
type Duration time.Duration

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON decodes a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration %s: want a string like \"30s\" or nanoseconds", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Channel says how the guest reaches the host.
type Channel struct {
	// Kind is ChannelVsock, ChannelSerial or ChannelVsockListen.
	Kind string `json:"kind"`
	// CID is the host's vsock context ID; 0 means HostCID. Vsock only.
	CID uint32 `json:"cid,omitempty"`
	// Port is the vsock port the host listens on (ChannelVsock) or the
	// guest's port the host dials (ChannelVsockListen).
	Port uint32 `json:"port,omitempty"`
	// Device is the virtio-serial port path, e.g. "/dev/vport0p1". Serial only.
	Device string `json:"device,omitempty"`
}

// GuestConfig is what the host tells the guest init: which test to run and
// how, and how to report back. The host writes it as JSON to ConfigPath.
type GuestConfig struct {
	// Path is the absolute path of the test binary in the guest.
	Path string `json:"path"`
	// Args are the test's arguments (without argv[0]).
	Args []string `json:"args,omitempty"`
	// Env holds extra "NAME=value" entries added to the test's clean
	// environment (see package guestinit); they override the defaults.
	Env []string `json:"env,omitempty"`
	// Dir is the test's absolute working directory; empty means the
	// directory of Path.
	Dir string `json:"dir,omitempty"`
	// Timeout bounds the test run; on expiry the test gets SIGQUIT (Go prints
	// all goroutine stacks), then SIGKILL after KillGrace, and the run
	// fails. 0 means DefaultTimeout.
	Timeout Duration `json:"timeout,omitempty"`
	// KillGrace is the time between SIGQUIT and SIGKILL. 0 means
	// DefaultKillGrace.
	KillGrace Duration `json:"kill_grace,omitempty"`
	// AckTimeout bounds the wait for the host's Ack of the verdict. 0 means
	// DefaultAckTimeout.
	AckTimeout Duration `json:"ack_timeout,omitempty"`
	// Channel is the host channel.
	Channel Channel `json:"channel"`
	// HugePageSizes lists the hugetlbfs page sizes to mount ("2M", "1G");
	// the first is mounted at /dev/hugepages, each one at
	// /dev/hugepages-SIZE.
	HugePageSizes []string `json:"hugepage_sizes,omitempty"`
	// Hostname is set as the guest's hostname if not empty.
	Hostname string `json:"hostname,omitempty"`
	// Verbose mirrors init diagnostics to the console.
	Verbose bool `json:"verbose,omitempty"`
	// DebugPort, when not 0, makes init listen on this vsock port for
	// debug commands (see DebugRequest) until it powers off.
	DebugPort uint32 `json:"debug_port,omitempty"`
	// VFIONICs are the PCI addresses ("0000:00:10.0") of the NICs init
	// binds to vfio-pci before it starts the test (package invm/vfio); a
	// NIC that does not bind fails the test with the reason. Added after
	// version 2 of the frames, optional: a config without it is what it
	// was (the host and the guest init always come from one build).
	VFIONICs []string `json:"vfio_nics,omitempty"`
	// Template makes the guest a template for snapshot start: init mounts
	// what HugePageSizes asks, opens the channel (serial or vsock-listen
	// only: QEMU cannot migrate a guest with a vhost-user device), says it
	// is ready (TemplateReady; ListenHello over vsock-listen) and waits for
	// a layer message (see ReadLayer), whose GuestConfig at ConfigPath then
	// replaces this one. Path is not needed.
	Template bool `json:"template,omitempty"`
	// LayerShare is the 9p mount tag of a template's layer share, where a
	// shared layer message's archives are (LayerShared): the template's
	// init checks it is there before it says TemplateReady, and mounts it
	// read-only only after the restore (QEMU cannot migrate a guest with a
	// 9p share mounted). Template only; empty: inline layers only.
	LayerShare string `json:"layer_share,omitempty"`
	// LayerWindowBase and LayerWindowSize are a template's layer window
	// (LayerInWindow; CheckLayerWindow): guest-physical memory its kernel
	// does not use (the host reserves it on the kernel command line),
	// which the template's init maps through /dev/mem and marks
	// (LayerWindowMagic) before it says TemplateReady. A guest that cannot
	// map it says so on its console and takes its layers over the share.
	// Template only; zero: no window.
	LayerWindowBase uint64 `json:"layer_window_base,omitempty"`
	LayerWindowSize uint64 `json:"layer_window_size,omitempty"`
	// CoverageDir, when not empty, is an absolute guest directory that
	// init creates before the test and whose regular files it sends to the
	// host after the test, whatever the verdict, as output files below
	// CoverageOutputDir: the test's coverage data (the host points
	// COVERAGE_DIR, -test.gocoverdir or -test.coverprofile into it). Added
	// after version 2 of the frames, optional: a config without it costs
	// the run nothing.
	CoverageDir string `json:"coverage_dir,omitempty"`
}

// DefaultDebugPort is the vsock port of the guest's debug command server.
const DefaultDebugPort = 1025

// MaxDebugRequest bounds the request line of a debug connection.
const MaxDebugRequest = 64 << 10

// DebugRequest opens a debug connection (host → guest, one JSON line):
// init runs Argv, on a pty when TTY is set, and the connection then carries
// raw bytes: the host's input to the command, the command's output back.
// When the command exits, init sends a last line "[invm: exit status N]"
// (or "[invm: error ...]") and closes the connection.
type DebugRequest struct {
	// Argv is the command; Argv[0] is an absolute guest path.
	Argv []string `json:"argv"`
	// TTY runs the command on a pty (an interactive shell).
	TTY bool `json:"tty,omitempty"`
	// Rows and Cols size the pty.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// DecodeDebugRequest parses a request line and checks it.
func DecodeDebugRequest(line []byte) (DebugRequest, error) {
	var r DebugRequest
	if len(line) > MaxDebugRequest {
		return r, fmt.Errorf("debug request of %d bytes: %w", len(line), ErrFrameTooLarge)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("debug request: %w: %v", ErrBadFrame, err)
	}
	if len(r.Argv) == 0 || !strings.HasPrefix(r.Argv[0], "/") {
		return r, fmt.Errorf("debug request: argv %q: %w: want an absolute guest path first", r.Argv, ErrBadFrame)
	}
	return r, nil
}

// The checks below are written out rather than regular expressions: the
// guest init links this package, and compiling regexps (and the unicode
// tables they pull in) at its start cost ~25 ms per boot under TCG.

// validHugeSize reports whether s matches ^[1-9][0-9]*[KMG]$.
func validHugeSize(s string) bool {
	if len(s) < 2 || s[0] < '1' || s[0] > '9' || !strings.ContainsRune("KMG", rune(s[len(s)-1])) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validHostname reports whether s matches ^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// validEnvName reports whether s matches ^[A-Za-z_][A-Za-z0-9_]*$.
func validEnvName(s string) bool {
	if len(s) == 0 || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

// validPCIAddress reports whether s matches ^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$
// (a PCI address as sysfs names it).
func validPCIAddress(s string) bool {
	if len(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.' || s[8] > '1' || s[11] < '0' || s[11] > '7' {
		return false
	}
	for i := 0; i < 10; i++ {
		if i != 4 && i != 7 && !isDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// Validate checks c and returns an error wrapping ErrInvalidConfig naming
// the first bad field.
func (c *GuestConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if c.Template {
		if c.Channel.Kind != ChannelSerial && c.Channel.Kind != ChannelVsockListen {
			return bad("template: channel kind %q: a template's channel must be %q or %q (QEMU migrates neither a vhost-user device nor a guest's connection to a CID that changes)",
				c.Channel.Kind, ChannelSerial, ChannelVsockListen)
		}
		if c.LayerShare != "" {
			if err := CheckShareTag(c.LayerShare); err != nil {
				return bad("layer_share: %v", err)
			}
		}
		if err := CheckLayerWindow(c.LayerWindowBase, c.LayerWindowSize); err != nil {
			return bad("layer_window_base, layer_window_size: %v", err)
		}
	} else if c.LayerShare != "" {
		return bad("layer_share: only a template has one")
	} else if c.LayerWindowBase != 0 || c.LayerWindowSize != 0 {
		return bad("layer_window_base, layer_window_size: only a template has a layer window")
	} else if c.Path == "" || !path.IsAbs(c.Path) {
		return bad("path %q: want an absolute path", c.Path)
	}
	if c.Dir != "" && !path.IsAbs(c.Dir) {
		return bad("dir %q: want an absolute path", c.Dir)
	}
	for _, e := range c.Env {
		name, _, ok := strings.Cut(e, "=")
		if !ok || !validEnvName(name) {
			return bad("env %q: want NAME=value", e)
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"timeout", c.Timeout}, {"kill_grace", c.KillGrace}, {"ack_timeout", c.AckTimeout}} {
		if d.v < 0 {
			return bad("%s %v: negative", d.name, time.Duration(d.v))
		}
	}
	switch c.Channel.Kind {
	case ChannelVsock:
		if c.Channel.Port == 0 {
			return bad("channel: vsock port 0")
		}
		if c.Channel.Device != "" {
			return bad("channel: vsock with a device")
		}
	case ChannelVsockListen:
		if c.Channel.Port == 0 {
			return bad("channel: vsock-listen port 0")
		}
		if c.Channel.CID != 0 || c.Channel.Device != "" {
			return bad("channel: vsock-listen with a cid or a device (the guest listens on its own CID)")
		}
	case ChannelSerial:
		if !strings.HasPrefix(c.Channel.Device, "/dev/") {
			return bad("channel: serial device %q: want /dev/...", c.Channel.Device)
		}
		if c.Channel.CID != 0 || c.Channel.Port != 0 {
			return bad("channel: serial with a vsock cid or port")
		}
	default:
		return bad("channel kind %q: want %q, %q or %q", c.Channel.Kind, ChannelVsock, ChannelSerial, ChannelVsockListen)
	}
	seen := map[string]bool{}
	for _, s := range c.HugePageSizes {
		if !validHugeSize(s) {
			return bad("hugepage size %q: want e.g. 2M or 1G", s)
		}
		if seen[s] {
			return bad("hugepage size %q twice", s)
		}
		seen[s] = true
	}
	if c.Hostname != "" && !validHostname(c.Hostname) {
		return bad("hostname %q", c.Hostname)
	}
	if c.CoverageDir != "" && (!path.IsAbs(c.CoverageDir) || path.Clean(c.CoverageDir) != c.CoverageDir || c.CoverageDir == "/") {
		return bad("coverage_dir %q: want a clean absolute directory below /, e.g. /invm/coverage", c.CoverageDir)
	}
	for i, a := range c.VFIONICs {
		if !validPCIAddress(a) {
			return bad("vfio_nics %q: want a PCI address like 0000:00:10.0", a)
		}
		for _, b := range c.VFIONICs[:i] {
			if a == b {
				return bad("vfio_nics %q twice", a)
			}
		}
	}
	return nil
}

// WithDefaults returns a copy of c with zero durations, a zero vsock CID
// and an empty Dir replaced by their defaults.
func (c GuestConfig) WithDefaults() GuestConfig {
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.KillGrace == 0 {
		c.KillGrace = Duration(DefaultKillGrace)
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = Duration(DefaultAckTimeout)
	}
	if c.Channel.Kind == ChannelVsock && c.Channel.CID == 0 {
		c.Channel.CID = HostCID
	}
	if c.Dir == "" && c.Path != "" {
		c.Dir = path.Dir(c.Path)
	}
	return c
}

// DefaultChannel is the channel the guest uses when it cannot read its
// config: vsock to HostCID on DefaultVsockPort.
func DefaultChannel() Channel {
	return Channel{Kind: ChannelVsock, CID: HostCID, Port: DefaultVsockPort}
}

// ParseConfig decodes a GuestConfig from JSON (strictly, without
// reflection: see jsonwire.go), rejecting unknown fields and trailing data,
// validates it and applies WithDefaults.
func ParseConfig(b []byte) (GuestConfig, error) {
	c, err := decodeConfig(b)
	if err != nil {
		return GuestConfig{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := c.Validate(); err != nil {
		return GuestConfig{}, err
	}
	return c.WithDefaults(), nil
}

// ReadConfig reads and parses the GuestConfig at file.
func ReadConfig(file string) (GuestConfig, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return GuestConfig{}, fmt.Errorf("read guest config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return GuestConfig{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// Marshal returns c as indented JSON, after validating it; the host writes
// this to ConfigPath.
func (c *GuestConfig) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(c, "", "  ")
}
