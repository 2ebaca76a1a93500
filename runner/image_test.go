package runner

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

// TestWriteInitrd checks the concatenation the kernel sees: every layer's
// records, in order, with a prebuilt layer whose size is not a multiple of 4
// (the next archive must still start aligned).
func TestWriteInitrd(t *testing.T) {
	dir := t.TempDir()
	layer := func(name string, files map[string]string) string {
		l := initramfs.NewLayer()
		for dst, body := range files {
			if err := l.AddBytes(dst, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.WriteTo(f); err != nil {
			t.Fatal(err)
		}
		// An odd tail, as a layer from elsewhere may have.
		if _, err := f.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	base := layer("base.cpio", map[string]string{"init": "init"})
	extra := layer("extra.cpio", map[string]string{"etc/x": "x"})
	test := initramfs.NewLayer()
	if err := test.AddBytes("invm/config.json", []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.cpio")
	if err := WriteInitrd(out, base, []string{extra}, test); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := initramfs.ReadArchivesBytes(b)
	if err != nil {
		t.Fatalf("the kernel's view of the initrd: %v", err)
	}
	var names []string
	for _, r := range recs {
		if r.Name != "TRAILER!!!" {
			names = append(names, r.Name)
		}
	}
	for _, want := range []string{"init", "etc/x", "invm/config.json"} {
		if !slices.Contains(names, want) {
			t.Errorf("initrd records %q lack %q", names, want)
		}
	}
	if i, j := slices.Index(names, "init"), slices.Index(names, "invm/config.json"); i > j {
		t.Errorf("records out of layer order: %q", names)
	}
}
