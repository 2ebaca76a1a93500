package runner

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/dynlib"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

// checkLoader lets a static test binary through as is. A dynamically
// linked one (cgo) needs its interpreter and libraries in the guest: when
// a layer already carries the binary (go_vm_test's test layer, written by
// mkinitramfs -libs-for), that layer must carry its interpreter too; else
// this run's test layer gets them (addLoader).
func checkLoader(o Options) error {
	in, err := dynlib.Interp(o.TestBinary)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnsupportedBinary, o.TestBinary, err)
	}
	if in == "" || o.GuestTestPath == "" {
		return nil
	}
	for _, l := range o.ExtraLayers {
		if ok, err := layerHas(l, in); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("%w: %s needs %s, which no layer carries: build the layer with mkinitramfs -libs-for "+
		"(go_vm_test does), or link the test statically", ErrDynamicBinary, o.TestBinary, in)
}

// layerHas reports whether the initramfs archive at path holds name (an
// absolute guest path).
func layerHas(path, name string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("%w: layer: %w", ErrInvalidOptions, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	recs, err := initramfs.ReadArchives(f, fi.Size())
	if err != nil {
		return false, fmt.Errorf("%w: layer %s: %w", ErrInvalidOptions, path, err)
	}
	_, ok := initramfs.Flatten(recs)[strings.TrimPrefix(name, "/")]
	return ok, nil
}

// addLoader adds what a dynamically linked test binary needs to the test
// layer (nothing for a static one), resolved by the C compiler for the
// guest's arch (Options.CC).
func addLoader(test *initramfs.Layer, binary string, o Options) error {
	files, err := dynlib.Needs(binary, dynlib.Options{CC: guestCC(o)})
	if err != nil {
		return fmt.Errorf("%w: %w; set $CC (or -cc) to the C compiler that linked the test, or build it with CGO_ENABLED=0", ErrInvalidOptions, err)
	}
	for _, f := range files {
		if err := test.AddFile(strings.TrimPrefix(f.Dst, "/"), f.Src, 0o755); err != nil {
			return fmt.Errorf("%w: %w", ErrInternal, err)
		}
	}
	return nil
}

// guestCC is the C compiler for the guest's arch: Options.CC, else $CC
// (what `go test` used for cgo), else gcc when the guest's arch is the
// host's, else the Debian cross compiler <triplet>-gcc.
func guestCC(o Options) string {
	switch {
	case o.CC != "":
		return o.CC
	case os.Getenv("CC") != "":
		return os.Getenv("CC")
	case o.Arch.GOARCH() == runtime.GOARCH:
		return "gcc"
	case o.Arch == arch.AArch64:
		return "aarch64-linux-gnu-gcc"
	}
	return "x86_64-linux-gnu-gcc"
}
