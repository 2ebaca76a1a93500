package initramfs

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func layerBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	l := NewLayer()
	for p, c := range files {
		if err := l.AddBytes(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := l.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConcatReadBack(t *testing.T) {
	base := layerBytes(t, map[string]string{"init": "base init", "etc/motd": "hello", "etc/config": "base"})
	test := layerBytes(t, map[string]string{"test/pkg.test": "binary", "etc/config": "per-test"})

	var img bytes.Buffer
	n, err := Concat(&img, bytes.NewReader(base), bytes.NewReader(test))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(img.Len()) || n != int64(len(base)+len(test)) {
		t.Fatalf("Concat wrote %d, buffer %d, want %d", n, img.Len(), len(base)+len(test))
	}
	recs, err := ReadArchivesBytes(img.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	wantNames := "etc etc/config etc/motd init etc etc/config test test/pkg.test"
	if got := strings.Join(names, " "); got != wantNames {
		t.Errorf("records %q, want %q", got, wantNames)
	}
	flat := Flatten(recs)
	for p, want := range map[string]string{"init": "base init", "etc/motd": "hello", "etc/config": "per-test", "test/pkg.test": "binary"} {
		r, ok := flat[p]
		if !ok {
			t.Errorf("%s missing", p)
			continue
		}
		got, _ := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		if string(got) != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}

// An input that does not end on a 4-byte boundary is padded with zeros, and
// zero padding between archives is skipped by the reader as by the kernel.
func TestConcatPadding(t *testing.T) {
	a := layerBytes(t, map[string]string{"a": "1"})
	b := layerBytes(t, map[string]string{"b": "2"})
	var img bytes.Buffer
	// Extra zero bytes after a (as some tools emit, e.g. 512-byte blocks).
	if _, err := Concat(&img, bytes.NewReader(a), bytes.NewReader(make([]byte, 6)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if img.Len() != len(a)+8+len(b) {
		t.Fatalf("len %d, want %d", img.Len(), len(a)+8+len(b))
	}
	recs, err := ReadArchivesBytes(img.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Name != "a" || recs[1].Name != "b" {
		t.Errorf("got %v", recs)
	}
}

func TestReadArchivesCorrupt(t *testing.T) {
	good := layerBytes(t, map[string]string{"a": "1234"})
	tests := []struct {
		name string
		img  []byte
	}{
		{"truncated header", good[:50]},
		{"truncated contents", good[:112+2]},
		{"no trailer", good[:len(good)-124]},
		{"bad magic", append([]byte("070702"), good[6:]...)},
		{"misaligned second archive", append(append(append([]byte{}, good...), 0), good...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadArchivesBytes(tc.img)
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
	if recs, err := ReadArchivesBytes(nil); err != nil || len(recs) != 0 {
		t.Errorf("empty image: %v, %v", recs, err)
	}
	_, err := ReadArchivesBytes(good[:len(good)-124])
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("no trailer: got %v, want ErrCorrupt", err)
	}
}
