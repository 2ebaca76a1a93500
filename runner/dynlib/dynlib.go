// Package dynlib finds what a dynamically linked ELF executable needs to
// start in a guest that has no libc of its own: its interpreter (PT_INTERP)
// and the shared libraries its DT_NEEDED entries name, transitively. Each
// is resolved for the binary's arch by asking the C compiler that linked it
// (`cc -print-file-name=NAME`, the compiler's own library search path), not
// by guessing host paths; each gets the guest path the interpreter looks
// in: the interpreter at its PT_INTERP path, libraries in the multiarch
// directory (/lib/<triplet>), which Debian's glibc searches by default.
package dynlib

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ErrUnresolved reports a library the compiler does not know.
var ErrUnresolved = errors.New("dynlib: cannot resolve a shared library")

// File is one file the binary needs: Src on the host, Dst in the guest
// (absolute).
type File struct {
	Src, Dst string
}

// Options say how to resolve.
type Options struct {
	// CC is the C compiler for the binary's arch (e.g. gcc,
	// aarch64-linux-gnu-gcc).
	CC string
	// Lookup resolves a file name the way `CC -print-file-name=NAME` does;
	// nil means running CC (tests inject a fake).
	Lookup func(cc, name string) (string, error)
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.CC == "" && o.Lookup == nil {
		return errors.New("dynlib: Options.CC is empty: name the C compiler that linked the binary")
	}
	return nil
}

// triplets maps an ELF machine to the GNU multiarch triplet of its
// libraries' directory.
var triplets = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
}

// Interp returns the binary's interpreter, "" for a static binary.
func Interp(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return interp(f)
}

func interp(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("reading PT_INTERP: %w", err)
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

// Needs returns what the binary at path needs in the guest, sorted by Dst;
// nil for a static binary.
func Needs(path string, o Options) ([]File, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	lookup := o.Lookup
	if lookup == nil {
		lookup = printFileName
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	in, err := interp(f)
	if err != nil || in == "" {
		return nil, err
	}
	triplet, ok := triplets[f.Machine]
	if !ok {
		return nil, fmt.Errorf("dynlib: %s: no library directory known for machine %v", path, f.Machine)
	}
	src, err := lookup(o.CC, filepath.Base(in))
	if err != nil {
		return nil, fmt.Errorf("%w: the interpreter %s (%s -print-file-name): %w", ErrUnresolved, in, o.CC, err)
	}
	out := map[string]File{in: {Src: src, Dst: in}}
	if err := walk(f, path, triplet, o.CC, lookup, out); err != nil {
		return nil, err
	}
	files := make([]File, 0, len(out))
	for _, v := range out {
		files = append(files, v)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Dst < files[j].Dst })
	return files, nil
}

// walk adds f's DT_NEEDED libraries, and theirs, to out.
func walk(f *elf.File, name, triplet, cc string, lookup func(string, string) (string, error), out map[string]File) error {
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("dynlib: %s: %w", name, err)
	}
	for _, lib := range libs {
		dst := "/lib/" + triplet + "/" + lib
		if _, seen := out[dst]; seen {
			continue
		}
		src, err := lookup(cc, lib)
		if err != nil {
			return fmt.Errorf("%w: %s, needed by %s (%s -print-file-name): %w", ErrUnresolved, lib, name, cc, err)
		}
		out[dst] = File{Src: src, Dst: dst}
		lf, err := elf.Open(src)
		if err != nil {
			return fmt.Errorf("dynlib: %s: %w", src, err)
		}
		err = walk(lf, src, triplet, cc, lookup, out)
		lf.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// printFileName asks cc where it finds name; cc prints the name unchanged
// when it does not know it.
func printFileName(cc, name string) (string, error) {
	b, err := exec.Command(cc, "-print-file-name="+name).Output()
	if err != nil {
		return "", fmt.Errorf("%s -print-file-name=%s: %w", cc, name, err)
	}
	p := strings.TrimSpace(string(b))
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s does not find %s", cc, name)
	}
	return filepath.EvalSymlinks(p)
}
