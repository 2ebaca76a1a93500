// Command mkinitramfs writes a deterministic newc cpio initramfs layer from
// a JSON manifest and/or flags, optionally after existing archives.
//
// Usage:
//
//	mkinitramfs -o OUT [-manifest M.json] [-file DST=SRC]... [-bytes DST=TEXT]...
//	            [-dir DST]... [-symlink DST=TARGET]... [-tree DST=SRCDIR]...
//	            [-assume-dir DST]... [-libs-for BINARY -cc CC] [ARCHIVE...]
//	mkinitramfs -list IMAGE
//
// Entries from the manifest come first, then the flags in order; see
// initramfs.Manifest for the manifest format. -file stores SRC with mode
// 0755 if it has any execute bit, else 0644 (use a manifest for other
// modes); -dir uses 0755. ARCHIVEs (e.g. a cached base layer) are copied to
// OUT first, then the new layer, if it has any entry, is appended: the
// kernel unpacks them in order, later entries overriding earlier ones. OUT
// is replaced atomically ("-" writes to stdout). -libs-for adds what a
// dynamically linked BINARY needs to start (its interpreter and shared
// libraries, resolved by runner/dynlib through the C compiler CC); nothing
// for a static one. -list prints the records
// of an image (all concatenated archives) as "MODE SIZE PATH[ -> TARGET]".
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
	"github.com/rules-go-vm/rules_go_vm/runner/dynlib"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
	"github.com/u-root/u-root/pkg/cpio"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

// errUsage reports bad command-line usage.
var errUsage = errors.New("usage")

// entryFlag collects repeated flags as manifest entries, in order.
type entryFlag struct {
	typ     string
	entries *[]initramfs.Entry
}

func (f entryFlag) String() string { return "" }

func (f entryFlag) Set(v string) error {
	e := initramfs.Entry{Type: f.typ}
	if f.typ == initramfs.TypeDir || f.typ == initramfs.TypeAssumeDir {
		e.Path = v
		*f.entries = append(*f.entries, e)
		return nil
	}
	dst, val, ok := strings.Cut(v, "=")
	if !ok || dst == "" {
		return fmt.Errorf("want DST=VALUE, got %q", v)
	}
	e.Path = dst
	switch f.typ {
	case initramfs.TypeFile:
		fi, err := os.Stat(val)
		if err != nil {
			return err
		}
		e.Src, e.Mode = val, "0644"
		if fi.Mode()&0o111 != 0 {
			e.Mode = "0755"
		}
	case initramfs.TypeTree:
		e.Src = val
	case initramfs.TypeSymlink:
		e.Target = val
	case initramfs.TypeBytes:
		e.Data = val
	}
	*f.entries = append(*f.entries, e)
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("mkinitramfs", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var (
		out      = fset.String("o", "", "output image (\"-\" for stdout)")
		manifest = fset.String("manifest", "", "JSON manifest of entries")
		list     = fset.String("list", "", "print the records of this image and exit")
		libsFor  = fset.String("libs-for", "", "add the interpreter and shared libraries this binary needs (none if static)")
		cc       = fset.String("cc", "", "with -libs-for: the C compiler for the binary's arch, which resolves the libraries")
		flagged  []initramfs.Entry
	)
	for _, typ := range []struct{ name, usage string }{
		{"file", "DST=SRC: host file (mode 0755 if executable, else 0644)"},
		{"bytes", "DST=TEXT: file with this content, mode 0644"},
		{"dir", "DST: directory, mode 0755"},
		{"symlink", "DST=TARGET: symbolic link"},
		{"tree", "DST=SRCDIR: host directory, recursively (\".\" = root)"},
		{"assume-dir", "DST: directory provided by an earlier layer: not written, so its mode is kept"},
	} {
		fset.Var(entryFlag{typ: typ.name, entries: &flagged}, typ.name, typ.usage+" (repeatable)")
	}
	if err := fset.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *list != "" {
		if *out != "" || *manifest != "" || len(flagged) != 0 || fset.NArg() != 0 {
			return fmt.Errorf("%w: -list takes no other flags or arguments", errUsage)
		}
		return listImage(*list, stdout)
	}
	if *out == "" {
		return fmt.Errorf("%w: -o is required", errUsage)
	}

	var m initramfs.Manifest
	if *manifest != "" {
		f, err := os.Open(*manifest)
		if err != nil {
			return err
		}
		mm, err := initramfs.ParseManifest(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *manifest, err)
		}
		m = *mm
	}
	m.Entries = append(m.Entries, flagged...)
	if *libsFor != "" {
		files, err := dynlib.Needs(*libsFor, dynlib.Options{CC: *cc})
		if err != nil {
			return err
		}
		for _, f := range files {
			m.Entries = append(m.Entries, initramfs.Entry{Type: initramfs.TypeFile, Path: strings.TrimPrefix(f.Dst, "/"), Src: f.Src, Mode: "0755"})
		}
	}
	layer, err := m.Layer()
	if err != nil {
		return err
	}

	var inputs []io.Reader
	for _, a := range fset.Args() {
		f, err := os.Open(a)
		if err != nil {
			return err
		}
		defer f.Close()
		inputs = append(inputs, f)
	}
	if layer.Len() > 0 || len(inputs) == 0 {
		inputs = append(inputs, writerToReader(layer))
	}
	return writeOutput(*out, stdout, func(w io.Writer) error {
		_, err := initramfs.Concat(w, inputs...)
		return err
	})
}

// writerToReader streams an io.WriterTo as an io.Reader.
func writerToReader(wt io.WriterTo) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, err := wt.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	return pr
}

// writeOutput writes via fill to path atomically (temporary file in the
// same directory, then rename), or to stdout for "-".
func writeOutput(path string, stdout io.Writer, fill func(io.Writer) error) error {
	if path == "-" {
		return fill(stdout)
	}
	return atomicfile.Write(path, 0o644, fill)
}

func listImage(path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	recs, err := initramfs.ReadArchives(f, fi.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, r := range recs {
		line := fmt.Sprintf("%06o %d %s", r.Mode, r.FileSize, r.Name)
		switch r.Mode & cpio.S_IFMT {
		case cpio.S_IFLNK:
			target, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
			if err != nil {
				return err
			}
			line += " -> " + string(target)
		case cpio.S_IFCHR, cpio.S_IFBLK:
			line += fmt.Sprintf(" (%d,%d)", r.Rmajor, r.Rminor)
		}
		if _, err := fmt.Fprintln(stdout, line); err != nil {
			return err
		}
	}
	return nil
}
