package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newcEntry is one entry of a test archive.
type newcEntry struct {
	name string
	mode uint32 // type and permissions
	data string // a file's data or a link's target
}

// newc encodes entries as one newc archive with its trailer.
func newc(entries ...newcEntry) []byte {
	var b bytes.Buffer
	add := func(e newcEntry) {
		fmt.Fprintf(&b, "%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			newcMagic, 1, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, 0, 0, len(e.name)+1, 0)
		b.WriteString(e.name + "\x00")
		b.Write(make([]byte, pad4(int64(b.Len()))))
		b.WriteString(e.data)
		b.Write(make([]byte, pad4(int64(b.Len()))))
	}
	for _, e := range entries {
		add(e)
	}
	add(newcEntry{name: newcTrailer})
	return b.Bytes()
}

func file(name, data string) newcEntry { return newcEntry{name, newcModeReg | 0o644, data} }

// tree lists what is under root: "path=data" for files, "path/" for
// directories, "path->target" for links.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+"->"+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+"="+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExtractNewc(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []string
		wantErr string
	}{
		{name: "empty", in: nil},
		{name: "files dirs links", in: newc(
			newcEntry{"invm", newcModeDir | 0o755, ""},
			file("invm/config.json", `{"path":"/invm/pkg/t"}`),
			file("invm/pkg/t", "ELF"),
			newcEntry{"invm/pkg/l", newcModeLink | 0o777, "t"},
		), want: []string{"invm/", "invm/config.json={\"path\":\"/invm/pkg/t\"}", "invm/pkg/", "invm/pkg/l->t", "invm/pkg/t=ELF"}},
		{name: "concatenated, zero padding, later wins", in: slices.Concat(
			newc(file("a", "1"), file("b", "2")), make([]byte, 8), newc(file("a", "three"))),
			want: []string{"a=three", "b=2"}},
		{name: "leading ./ and / dropped", in: newc(file("./x", "1"), file("/y", "2"), newcEntry{".", newcModeDir | 0o755, ""}),
			want: []string{"x=1", "y=2"}},
		{name: "escape refused", in: newc(file("../x", "1")), wantErr: `name "../x" is not a clean relative path`},
		{name: "unclean refused", in: newc(file("a//b", "1")), wantErr: "not a clean relative path"},
		{name: "escape through a link refused", in: newc(newcEntry{"l", newcModeLink | 0o777, ".."}, file("l/x", "1")),
			wantErr: "l/x"},
		{name: "device refused", in: newc(newcEntry{"dev/console", 0o020600, ""}), wantErr: "file type 020000"},
		{name: "bad magic", in: []byte("070707" + strings.Repeat("0", 104)), wantErr: "not a newc header"},
		{name: "truncated data", in: newc(file("a", "12345678"))[:116], wantErr: "truncated data"},
		{name: "truncated header", in: newc(file("a", "1"))[:50], wantErr: "truncated header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			err := ExtractNewc(bytes.NewReader(tc.in), root)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadLayer) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrBadLayer with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(t, root); !slices.Equal(got, tc.want) {
				t.Errorf("tree = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExtractNewcModes(t *testing.T) {
	root := t.TempDir()
	if err := ExtractNewc(bytes.NewReader(newc(newcEntry{"bin/t", newcModeReg | 0o755, "x"})), root); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(root, "bin/t"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", st.Mode())
	}
}

func TestLayerHeader(t *testing.T) {
	h := LayerHeader{Via: LayerShared, Now: time.Unix(1700000000, 123), Size: 1 << 20}
	copy(h.Seed[:], "0123456789abcdef0123456789abcdef")
	b, err := EncodeLayerHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeLayerHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Now.Equal(h.Now) || got.Seed != h.Seed || got.Size != h.Size || got.Via != h.Via {
		t.Errorf("round trip = %+v, want %+v", got, h)
	}
	for _, tc := range []struct {
		name    string
		mutate  func([]byte) []byte
		wantErr string
	}{
		{"short", func(b []byte) []byte { return b[:10] }, "header of 10 bytes"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, "no layer magic"},
		{"version", func(b []byte) []byte { b[9] = 9; return b }, "version 9"},
		{"via", func(b []byte) []byte { b[11] = 3; return b }, "archives LayerVia(3)"},
		{"size", func(b []byte) []byte { b[len(b)-8] = 0xff; return b }, "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeLayerHeader(tc.mutate(slices.Clone(b)))
			if !errors.Is(err, ErrBadLayer) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want ErrBadLayer with %q", err, tc.wantErr)
			}
		})
	}
	if _, err := EncodeLayerHeader(LayerHeader{Size: -1}); !errors.Is(err, ErrBadLayer) {
		t.Errorf("negative size: err = %v", err)
	}
	if _, err := EncodeLayerHeader(LayerHeader{Via: 7}); !errors.Is(err, ErrBadLayer) {
		t.Errorf("via 7: err = %v", err)
	}
}

// TestLayerMessage: WriteLayer then ReadLayer extracts the archives and
// consumes exactly the message (what follows is the session's).
func TestLayerMessage(t *testing.T) {
	var b bytes.Buffer
	h := LayerHeader{Now: time.Unix(1800000000, 0)}
	h.Seed[0] = 7
	if err := WriteLayer(&b, h, newc(file("a", "1")), newc(file("b", "22"))[:101]); err != nil {
		t.Fatal(err)
	}
	// The second archive was cut inside its header: ReadLayer fails.
	root := t.TempDir()
	if _, err := ReadLayer(bytes.NewReader(b.Bytes()), root); !errors.Is(err, ErrBadLayer) {
		t.Fatalf("cut archive: err = %v, want ErrBadLayer", err)
	}
	b.Reset()
	if err := WriteLayer(&b, h, newc(file("a", "1")), newc(file("b", "22"))); err != nil {
		t.Fatal(err)
	}
	b.WriteString("after")
	r := bytes.NewReader(b.Bytes())
	got, err := ReadLayer(r, root)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Now.Equal(h.Now) || got.Seed != h.Seed {
		t.Errorf("header %+v, want %+v", got, h)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "after" {
		t.Errorf("left after the message: %q, want %q", rest, "after")
	}
	if got := tree(t, root); !slices.Equal(got, []string{"a=1", "b=22"}) {
		t.Errorf("tree %q", got)
	}
}

// FuzzExtractNewc: arbitrary archives never panic, fail only with
// ErrBadLayer and never write outside the root.
func FuzzExtractNewc(f *testing.F) {
	f.Add(newc(file("a", "1"), newcEntry{"d", newcModeDir | 0o755, ""}, newcEntry{"d/l", newcModeLink | 0o777, "../a"}))
	f.Add(slices.Concat(newc(file("x/y", "zz")), make([]byte, 4), newc(file("../e", "1"))))
	f.Add(newc(newcEntry{"l", newcModeLink | 0o777, "/"}, file("l/etc/x", "1")))
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := ExtractNewc(bytes.NewReader(in), root); err != nil && !errors.Is(err, ErrBadLayer) {
			t.Fatalf("err = %v, want nil or ErrBadLayer", err)
		}
		if got := tree(t, dir); len(got) == 0 || got[0] != "root/" || slices.ContainsFunc(got, func(p string) bool { return !strings.HasPrefix(p, "root") }) {
			t.Fatalf("wrote outside the root: %q", got)
		}
	})
}

// FuzzDecodeLayerHeader: a header that decodes re-encodes to the same bytes.
func FuzzDecodeLayerHeader(f *testing.F) {
	b, _ := EncodeLayerHeader(LayerHeader{Now: time.Unix(1, 2), Size: 9})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := DecodeLayerHeader(in)
		if err != nil {
			if !errors.Is(err, ErrBadLayer) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		out, err := EncodeLayerHeader(h)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoded %x (%v), want %x", out, err, in)
		}
	})
}

// TestSharedLayer: the header of a shared (or window) layer travels
// alone; its payload (LayerPayload, the share's file or the window's
// start) extracts from memory, in place, to the same tree as the inline
// message; a payload of another size than the header's, or an inline
// extraction of a shared header, fails; a header alone for an inline
// layer is refused.
func TestSharedLayer(t *testing.T) {
	archives := [][]byte{newc(file("a", strings.Repeat("x", 10001))), newc(file("d/b", "22"))}
	payload := LayerPayload(archives...)
	var hdr bytes.Buffer // the shared one's
	var h LayerHeader
	for _, via := range []LayerVia{LayerInWindow, LayerShared} {
		hdr.Reset()
		if err := WriteLayerHeader(&hdr, LayerHeader{Via: via, Now: time.Unix(5, 0), Size: int64(len(payload))}); err != nil {
			t.Fatal(err)
		}
		var err error
		if h, err = ReadLayerHeader(bytes.NewReader(hdr.Bytes())); err != nil {
			t.Fatal(err)
		}
		if hdr.Len() != LayerHeaderSize || h.Via != via || h.Size != int64(len(payload)) || !h.Now.Equal(time.Unix(5, 0)) {
			t.Fatalf("%v: %d bytes, header %+v", via, hdr.Len(), h)
		}
	}
	if err := WriteLayerHeader(io.Discard, LayerHeader{Via: LayerInline}); !errors.Is(err, ErrBadLayer) {
		t.Errorf("a header alone for an inline layer: err = %v, want ErrBadLayer", err)
	}
	root := t.TempDir()
	if err := ExtractLayerBytes(payload, h, root); err != nil {
		t.Fatal(err)
	}
	var inline bytes.Buffer
	if err := WriteLayer(&inline, LayerHeader{}, archives...); err != nil {
		t.Fatal(err)
	}
	want := t.TempDir()
	if _, err := ReadLayer(&inline, want); err != nil {
		t.Fatal(err)
	}
	if got, w := tree(t, root), tree(t, want); !slices.Equal(got, w) || len(got) != 3 {
		t.Errorf("shared tree %q, inline tree %q", got, w)
	}
	if err := ExtractLayerBytes(payload[:len(payload)-4], h, t.TempDir()); !errors.Is(err, ErrBadLayer) {
		t.Errorf("short payload: err = %v, want ErrBadLayer", err)
	}
	if _, err := ReadLayer(bytes.NewReader(hdr.Bytes()), t.TempDir()); !errors.Is(err, ErrBadLayer) || !strings.Contains(err.Error(), "shared") {
		t.Errorf("ReadLayer of a shared message: err = %v, want ErrBadLayer naming it shared", err)
	}
	// Cut inside the first file's data: the extraction from memory fails
	// as the streamed one does.
	cut := slices.Clone(payload[:500])
	if err := ExtractLayerBytes(cut, LayerHeader{Via: LayerShared, Size: int64(len(cut))}, t.TempDir()); !errors.Is(err, ErrBadLayer) {
		t.Errorf("cut payload: err = %v, want ErrBadLayer", err)
	}
}

func TestCheckLayerWindow(t *testing.T) {
	for _, c := range []struct {
		base, size uint64
		ok         bool
	}{
		{0, 0, true},
		{256 << 20, 128 << 20, true},
		{4096, 4096, true},
		{256 << 20, 0, false}, // a base without a size
		{0, 128 << 20, false}, // a size without a base
		{256 << 20, MaxLayerWindow + 4096, false},
		{256<<20 + 1, 128 << 20, false}, // unaligned base
		{256 << 20, 128<<20 + 512, false},
		{^uint64(0) &^ 4095, 8192, false}, // past the address space
	} {
		if err := CheckLayerWindow(c.base, c.size); (err == nil) != c.ok {
			t.Errorf("CheckLayerWindow(%#x, %#x) = %v, want ok %v", c.base, c.size, err, c.ok)
		}
	}
}

func TestCheckShareTag(t *testing.T) {
	for tag, ok := range map[string]bool{LayerShareTag: true, "a": true, "a.b-c_9": true, "": false, "a b": false, "a,b": false, strings.Repeat("x", 32): false} {
		if err := CheckShareTag(tag); (err == nil) != ok {
			t.Errorf("CheckShareTag(%q) = %v, want ok %v", tag, err, ok)
		}
	}
}

func TestListenHello(t *testing.T) {
	for _, cid := range []uint32{3, 0xdeadbeef, 1<<31 - 1} {
		var b bytes.Buffer
		if err := WriteListenHello(&b, cid); err != nil {
			t.Fatal(err)
		}
		if b.Len() != ListenHelloSize {
			t.Fatalf("hello %q is %d bytes, want %d", b.Bytes(), b.Len(), ListenHelloSize)
		}
		got, err := ReadListenHello(&b)
		if err != nil || got != cid {
			t.Errorf("round trip of CID %d: %d, %v", cid, got, err)
		}
	}
	for _, bad := range []string{
		"",
		"RGVM listening v1 cid=0000000",    // cut
		"RGVM listening v1 cid=0000000g\n", // not hex
		"RGVM listening v1 cid=0000000A\n", // upper case
		"RGVM listening v1 cid=+0000003\n",
		"RGVM listening v1 cid=00000003x",
		"RGVM listening v2 cid=00000003\n",
		TemplateReady,
	} {
		if _, err := ReadListenHello(strings.NewReader(bad)); !errors.Is(err, ErrBadListenHello) {
			t.Errorf("ReadListenHello(%q): err = %v, want ErrBadListenHello", bad, err)
		}
	}
}
