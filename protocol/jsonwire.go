package protocol

// The guest init decodes its GuestConfig and encodes its Verdict with the
// small reflection-free JSON code below instead of encoding/json. Under TCG
// every guest function that runs for the first time is translated first, and
// encoding/json's reflection paths were ~3,000 translation blocks of the
// init (~25 ms of every x86_64 boot, more on aarch64; counted with QEMU's
// `info jit`). The wire format stays JSON.
//
// The decoder is stricter than encoding/json: keys match exactly (not
// case-insensitively), a key may appear once, null is not a value, strings
// are valid UTF-8 without lone surrogate escapes, numbers are integers. The
// host writes configs with GuestConfig.Marshal (encoding/json), whose output
// it always accepts; FuzzParseConfig holds the two decoders to the same
// results.

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonReader reads one JSON text from b.
type jsonReader struct {
	b []byte
	i int
}

// errf reports a malformed or unexpected JSON text at the read offset.
func (r *jsonReader) errf(format string, a ...any) error {
	return fmt.Errorf("json: offset %d: %s", r.i, fmt.Sprintf(format, a...))
}

// ws skips JSON whitespace.
func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next non-whitespace byte, 0 at the end.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.i >= len(r.b) {
		return 0
	}
	return r.b[r.i]
}

func (r *jsonReader) expect(c byte) error {
	if r.peek() != c {
		return r.errf("want %q", c)
	}
	r.i++
	return nil
}

// end checks that only whitespace is left.
func (r *jsonReader) end() error {
	if r.peek() != 0 {
		return r.errf("trailing data")
	}
	return nil
}

// object reads an object, calling field for each key with the reader
// positioned at its value; a key seen twice is an error.
func (r *jsonReader) object(field func(key string) error) error {
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.peek() == '}' {
		r.i++
		return nil
	}
	var seen []string
	for {
		if r.peek() != '"' {
			return r.errf("want a key")
		}
		key, err := r.str()
		if err != nil {
			return err
		}
		for _, k := range seen {
			if k == key {
				return r.errf("key %q twice", key)
			}
		}
		seen = append(seen, key)
		if err := r.expect(':'); err != nil {
			return err
		}
		r.ws()
		if err := field(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return nil
		default:
			return r.errf("want ',' or '}'")
		}
	}
}

// str reads a string.
func (r *jsonReader) str() (string, error) {
	if r.peek() != '"' {
		return "", r.errf("want a string")
	}
	r.i++
	var out []byte
	for {
		if r.i >= len(r.b) {
			return "", r.errf("unterminated string")
		}
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return string(out), nil
		case c < 0x20:
			return "", r.errf("control character %#x in a string", c)
		case c == '\\':
			if r.i+1 >= len(r.b) {
				return "", r.errf("unterminated escape")
			}
			e := r.b[r.i+1]
			r.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				ru, err := r.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(ru) {
					lo := rune(-1)
					if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
						r.i += 2
						if lo, err = r.hex4(); err != nil {
							return "", err
						}
					}
					if ru = utf16.DecodeRune(ru, lo); ru == utf8.RuneError {
						return "", r.errf("lone surrogate escape in a string")
					}
				}
				out = utf8.AppendRune(out, ru)
			default:
				return "", r.errf("bad escape \\%c", e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			r.i++
		default:
			ru, n := utf8.DecodeRune(r.b[r.i:])
			if ru == utf8.RuneError && n == 1 {
				return "", r.errf("invalid UTF-8 in a string")
			}
			out = append(out, r.b[r.i:r.i+n]...)
			r.i += n
		}
	}
}

// hex4 reads the four hex digits of a \u escape.
func (r *jsonReader) hex4() (rune, error) {
	if r.i+4 > len(r.b) {
		return 0, r.errf("short \\u escape")
	}
	var v rune
	for _, c := range r.b[r.i : r.i+4] {
		v <<= 4
		switch {
		case '0' <= c && c <= '9':
			v |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			v |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			v |= rune(c - 'A' + 10)
		default:
			return 0, r.errf("bad \\u escape")
		}
	}
	r.i += 4
	return v, nil
}

// integer reads a JSON number that is an integer (no fraction, no
// exponent) and returns its text.
func (r *jsonReader) integer() (string, error) {
	r.ws()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(r.b) && r.b[r.i] == '0':
		r.i++
	case r.i < len(r.b) && '1' <= r.b[r.i] && r.b[r.i] <= '9':
		for r.i < len(r.b) && isDigit(r.b[r.i]) {
			r.i++
		}
	default:
		r.i = start
		return "", r.errf("want a number")
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		return "", r.errf("want an integer")
	}
	return string(r.b[start:r.i]), nil
}

func (r *jsonReader) uint32() (uint32, error) {
	n, err := r.unsigned(32)
	return uint32(n), err
}

func (r *jsonReader) uint64() (uint64, error) { return r.unsigned(64) }

// unsigned reads an integer from 0 to the largest of bits bits.
func (r *jsonReader) unsigned(bits int) (uint64, error) {
	s, err := r.integer()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, r.errf("%s: want an integer from 0 to %d", s, uint64(math.MaxUint64)>>(64-bits))
	}
	return n, nil
}

func (r *jsonReader) int64() (int64, error) {
	s, err := r.integer()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, r.errf("%s: out of range", s)
	}
	return n, nil
}

func (r *jsonReader) boolean() (bool, error) {
	r.ws()
	for _, lit := range []string{"true", "false"} {
		if len(r.b)-r.i >= len(lit) && string(r.b[r.i:r.i+len(lit)]) == lit {
			r.i += len(lit)
			return lit == "true", nil
		}
	}
	return false, r.errf("want true or false")
}

// strings reads an array of strings; [] is an empty, non-nil slice (as
// encoding/json decodes it).
func (r *jsonReader) strings() ([]string, error) {
	if err := r.expect('['); err != nil {
		return nil, err
	}
	out := []string{}
	if r.peek() == ']' {
		r.i++
		return out, nil
	}
	for {
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return out, nil
		default:
			return nil, r.errf("want ',' or ']'")
		}
	}
}

// duration reads a Duration: a Go duration string or nanoseconds.
func (r *jsonReader) duration() (Duration, error) {
	if r.peek() == '"' {
		s, err := r.str()
		if err != nil {
			return 0, err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, r.errf("%v", err)
		}
		return Duration(d), nil
	}
	n, err := r.int64()
	if err != nil {
		return 0, r.errf("want a duration string like \"30s\" or nanoseconds")
	}
	return Duration(n), nil
}

// decodeConfig decodes the JSON text of a GuestConfig (not validated).
func decodeConfig(b []byte) (GuestConfig, error) {
	var c GuestConfig
	r := &jsonReader{b: b}
	err := r.object(func(key string) error {
		var err error
		switch key {
		case "path":
			c.Path, err = r.str()
		case "args":
			c.Args, err = r.strings()
		case "env":
			c.Env, err = r.strings()
		case "dir":
			c.Dir, err = r.str()
		case "timeout":
			c.Timeout, err = r.duration()
		case "kill_grace":
			c.KillGrace, err = r.duration()
		case "ack_timeout":
			c.AckTimeout, err = r.duration()
		case "channel":
			c.Channel, err = r.channel()
		case "hugepage_sizes":
			c.HugePageSizes, err = r.strings()
		case "hostname":
			c.Hostname, err = r.str()
		case "verbose":
			c.Verbose, err = r.boolean()
		case "debug_port":
			c.DebugPort, err = r.uint32()
		case "vfio_nics":
			c.VFIONICs, err = r.strings()
		case "template":
			c.Template, err = r.boolean()
		case "layer_share":
			c.LayerShare, err = r.str()
		case "layer_window_base":
			c.LayerWindowBase, err = r.uint64()
		case "layer_window_size":
			c.LayerWindowSize, err = r.uint64()
		case "coverage_dir":
			c.CoverageDir, err = r.str()
		default:
			return r.errf("unknown field %q", key)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		return nil
	})
	if err == nil {
		err = r.end()
	}
	return c, err
}

func (r *jsonReader) channel() (Channel, error) {
	var ch Channel
	err := r.object(func(key string) error {
		var err error
		switch key {
		case "kind":
			ch.Kind, err = r.str()
		case "cid":
			ch.CID, err = r.uint32()
		case "port":
			ch.Port, err = r.uint32()
		case "device":
			ch.Device, err = r.str()
		default:
			return r.errf("unknown field %q", key)
		}
		return err
	})
	return ch, err
}

// appendVerdict appends the JSON encoding of v: the object encoding/json
// writes for Verdict (same keys, order and omitempty rules).
func appendVerdict(b []byte, v Verdict) []byte {
	b = append(b, `{"pass":`...)
	b = strconv.AppendBool(b, v.Pass)
	b = append(b, `,"exit_code":`...)
	b = strconv.AppendInt(b, int64(v.ExitCode), 10)
	if v.Signal != "" {
		b = append(b, `,"signal":`...)
		b = appendJSONString(b, v.Signal)
	}
	if v.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, v.Reason)
	}
	if len(v.Leaked) > 0 {
		b = append(b, `,"leaked":[`...)
		for i, s := range v.Leaked {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, ']')
	}
	b = append(b, `,"timings":{"boot_ns":`...)
	b = strconv.AppendInt(b, int64(v.Timings.Boot), 10)
	b = append(b, `,"setup_ns":`...)
	b = strconv.AppendInt(b, int64(v.Timings.Setup), 10)
	b = append(b, `,"test_ns":`...)
	b = strconv.AppendInt(b, int64(v.Timings.Test), 10)
	b = append(b, `,"teardown_ns":`...)
	b = strconv.AppendInt(b, int64(v.Timings.Teardown), 10)
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD
// (as with encoding/json).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		ru, n := utf8.DecodeRuneInString(s[i:])
		if ru == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
