package protocol

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func validConfig() GuestConfig {
	return GuestConfig{
		Path:    "/invm/test/hello.test",
		Args:    []string{"-test.v"},
		Env:     []string{"FOO=bar"},
		Channel: Channel{Kind: ChannelVsock, Port: 1024},
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(c *GuestConfig)
		want string // substring of the error; "" = valid
	}{
		{"valid", func(c *GuestConfig) {}, ""},
		{"serial", func(c *GuestConfig) { c.Channel = Channel{Kind: ChannelSerial, Device: "/dev/vport0p1"} }, ""},
		{"hugepages", func(c *GuestConfig) { c.HugePageSizes = []string{"2M", "1G"} }, ""},
		{"relative path", func(c *GuestConfig) { c.Path = "hello.test" }, "path"},
		{"empty path", func(c *GuestConfig) { c.Path = "" }, "path"},
		{"relative dir", func(c *GuestConfig) { c.Dir = "x" }, "dir"},
		{"env without =", func(c *GuestConfig) { c.Env = []string{"FOO"} }, "env"},
		{"env bad name", func(c *GuestConfig) { c.Env = []string{"1X=y"} }, "env"},
		{"negative timeout", func(c *GuestConfig) { c.Timeout = -1 }, "timeout"},
		{"no channel", func(c *GuestConfig) { c.Channel = Channel{} }, "channel kind"},
		{"vsock port 0", func(c *GuestConfig) { c.Channel.Port = 0 }, "port 0"},
		{"vsock with device", func(c *GuestConfig) { c.Channel.Device = "/dev/x" }, "device"},
		{"serial no device", func(c *GuestConfig) { c.Channel = Channel{Kind: ChannelSerial} }, "serial device"},
		{"vsock-listen", func(c *GuestConfig) { c.Channel = Channel{Kind: ChannelVsockListen, Port: TemplateListenPort} }, ""},
		{"vsock-listen port 0", func(c *GuestConfig) { c.Channel = Channel{Kind: ChannelVsockListen} }, "vsock-listen port 0"},
		{"vsock-listen with a cid", func(c *GuestConfig) { c.Channel = Channel{Kind: ChannelVsockListen, Port: 5, CID: 2} }, "own CID"},
		{"template on serial", func(c *GuestConfig) {
			c.Template, c.Channel = true, Channel{Kind: ChannelSerial, Device: "/dev/vport0p1"}
		}, ""},
		{"template on vsock-listen", func(c *GuestConfig) {
			c.Template, c.Channel = true, Channel{Kind: ChannelVsockListen, Port: TemplateListenPort}
		}, ""},
		{"template dialling vsock", func(c *GuestConfig) { c.Template = true }, "template's channel must be"},
		{"template with a layer window", func(c *GuestConfig) {
			c.Template, c.Channel = true, Channel{Kind: ChannelSerial, Device: "/dev/vport0p1"}
			c.LayerWindowBase, c.LayerWindowSize = 256<<20, 128<<20
		}, ""},
		{"template with a bad layer window", func(c *GuestConfig) {
			c.Template, c.Channel = true, Channel{Kind: ChannelSerial, Device: "/dev/vport0p1"}
			c.LayerWindowBase, c.LayerWindowSize = 256<<20+1, 128<<20
		}, "layer_window_base, layer_window_size: layer window 0x10000001"},
		{"layer window without a template", func(c *GuestConfig) { c.LayerWindowBase, c.LayerWindowSize = 256<<20, 128<<20 }, "only a template has a layer window"},
		{"serial with port", func(c *GuestConfig) { c.Channel = Channel{Kind: ChannelSerial, Device: "/dev/vport0p1", Port: 3} }, "serial with"},
		{"bad hugepage", func(c *GuestConfig) { c.HugePageSizes = []string{"2MB"} }, "hugepage"},
		{"dup hugepage", func(c *GuestConfig) { c.HugePageSizes = []string{"2M", "2M"} }, "twice"},
		{"bad hostname", func(c *GuestConfig) { c.Hostname = "a b" }, "hostname"},
		{"coverage dir", func(c *GuestConfig) { c.CoverageDir = "/invm/coverage" }, ""},
		{"relative coverage dir", func(c *GuestConfig) { c.CoverageDir = "invm/coverage" }, "coverage_dir"},
		{"unclean coverage dir", func(c *GuestConfig) { c.CoverageDir = "/invm/../coverage" }, "coverage_dir"},
		{"root coverage dir", func(c *GuestConfig) { c.CoverageDir = "/" }, "coverage_dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := validConfig()
	c.Timeout = Duration(90 * time.Second)
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timeout": "1m30s"`) {
		t.Errorf("timeout not a duration string:\n%s", b)
	}
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(got.Timeout) != 90*time.Second || got.Dir != "/invm/test" ||
		got.AckTimeout != Duration(DefaultAckTimeout) || got.Channel.CID != HostCID {
		t.Errorf("defaults not applied: %+v", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`{"path":"/t","channel":{"kind":"vsock","port":1},"bogus":1}`,
		`{"path":"/t","channel":{"kind":"vsock","port":1}} {}`,
		`{"path":"/t","channel":{"kind":"vsock","port":1},"timeout":"soon"}`,
		`{"path":"/t"}`,
	} {
		if _, err := ParseConfig([]byte(in)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseConfig(%q) = %v, want ErrInvalidConfig", in, err)
		}
	}
	c, err := ParseConfig([]byte(`{"path":"/t","channel":{"kind":"vsock","port":1},"timeout":5000}`))
	if err != nil || time.Duration(c.Timeout) != 5*time.Microsecond {
		t.Errorf("numeric timeout: %v %v", c.Timeout, err)
	}
}
