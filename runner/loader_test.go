package runner

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/runner/dynlib"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

func TestCheckLoader(t *testing.T) {
	// /bin/sh is a dynamically linked executable on every Debian system.
	in, err := dynlib.Interp("/bin/sh")
	if err != nil || in == "" {
		t.Fatalf("/bin/sh: interpreter %q, %v", in, err)
	}
	dir := t.TempDir()
	layer := func(name string, paths ...string) string {
		l := initramfs.NewLayer()
		for _, p := range paths {
			if err := l.AddBytes(p, []byte("x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(dir, name)
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := l.WriteTo(f); err != nil {
			t.Fatal(err)
		}
		return out
	}
	with := layer("with.cpio", "invm/runfiles/t", in[1:], "lib/x86_64-linux-gnu/libc.so.6")
	without := layer("without.cpio", "invm/runfiles/t")
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"run writes the test layer (adds the loader itself)", Options{TestBinary: "/bin/sh"}, nil},
		{"a layer carries binary and loader", Options{TestBinary: "/bin/sh", GuestTestPath: "/invm/runfiles/t", ExtraLayers: []string{without, with}}, nil},
		{"no layer carries the loader", Options{TestBinary: "/bin/sh", GuestTestPath: "/invm/runfiles/t", ExtraLayers: []string{without}}, ErrDynamicBinary},
	} {
		err := checkLoader(tc.o)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: checkLoader = %v, want %v", tc.name, err, tc.want)
		}
	}
}
