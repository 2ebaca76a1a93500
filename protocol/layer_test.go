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
	h := LayerHeader{Now: time.Unix(1700000000, 123), Size: 1 << 20, Stripes: 8}
	copy(h.Seed[:], "0123456789abcdef0123456789abcdef")
	b, err := EncodeLayerHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeLayerHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Now.Equal(h.Now) || got.Seed != h.Seed || got.Size != h.Size || got.Stripes != h.Stripes {
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
		{"stripes", func(b []byte) []byte { b[10] = 1; return b }, "stripes, at most 64"},
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

func TestLayerStripe(t *testing.T) {
	for _, tc := range []struct {
		size    int64
		stripes int
	}{{0, 1}, {1, 8}, {7, 8}, {8, 8}, {4096*1000 + 3, 8}, {100, 3}, {5, 64}} {
		var next int64
		for i := range tc.stripes {
			off, n := LayerStripe(tc.size, i, tc.stripes)
			if off != next || n < 0 {
				t.Fatalf("size %d, %d stripes: stripe %d at %d+%d, want at %d", tc.size, tc.stripes, i, off, n, next)
			}
			next = off + n
		}
		if next != tc.size {
			t.Errorf("size %d, %d stripes: parts end at %d", tc.size, tc.stripes, next)
		}
	}
}

// TestLayerStriped: a layer written over stripes is read back over them,
// whatever the number; a reader with another number of stripes, or one
// that is cut, fails.
func TestLayerStriped(t *testing.T) {
	archives := [][]byte{newc(file("a", strings.Repeat("x", 10000))), newc(file("b", "22"))}
	for _, k := range []int{0, 1, 3, 8} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			var hdr bytes.Buffer
			bufs := make([]*bytes.Buffer, k)
			ws := make([]io.Writer, k)
			for i := range bufs {
				bufs[i] = &bytes.Buffer{}
				ws[i] = bufs[i]
			}
			if err := WriteLayerStriped(&hdr, ws, LayerHeader{Now: time.Unix(5, 0)}, archives...); err != nil {
				t.Fatal(err)
			}
			rs := func() []io.Reader {
				out := make([]io.Reader, k)
				for i := range bufs {
					out[i] = bytes.NewReader(bufs[i].Bytes())
				}
				return out
			}
			root := t.TempDir()
			h, err := ReadLayerStriped(bytes.NewReader(hdr.Bytes()), rs(), root)
			if err != nil {
				t.Fatal(err)
			}
			if h.Stripes != k {
				t.Errorf("header says %d stripes, want %d", h.Stripes, k)
			}
			if b, err := os.ReadFile(filepath.Join(root, "a")); err != nil || len(b) != 10000 {
				t.Errorf("a: %d bytes, %v", len(b), err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "b")); err != nil || string(b) != "22" {
				t.Errorf("b: %q, %v", b, err)
			}
			if k == 0 {
				return
			}
			if _, err := ReadLayerStriped(bytes.NewReader(hdr.Bytes()), rs()[1:], t.TempDir()); !errors.Is(err, ErrBadLayer) {
				t.Errorf("one stripe short: err = %v, want ErrBadLayer", err)
			}
			cut := rs()
			cut[k-1] = io.LimitReader(cut[k-1], 1)
			if _, err := ReadLayerStriped(bytes.NewReader(hdr.Bytes()), cut, t.TempDir()); !errors.Is(err, ErrBadLayer) {
				t.Errorf("a cut stripe: err = %v, want ErrBadLayer", err)
			}
			if _, err := ReadLayer(bytes.NewReader(hdr.Bytes()), t.TempDir()); !errors.Is(err, ErrBadLayer) {
				t.Errorf("ReadLayer of a striped message: err = %v, want ErrBadLayer", err)
			}
		})
	}
}
