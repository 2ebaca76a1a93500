package runner

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"

	"github.com/rules-go-vm/rules_go_vm/arch"
)

// ErrUnsupportedBinary reports a test binary that is not a 64-bit Linux ELF
// executable for a supported guest architecture.
var ErrUnsupportedBinary = errors.New("unsupported test binary")

// elfArches maps ELF machines to guest architectures.
var elfArches = map[elf.Machine]arch.Arch{
	elf.EM_X86_64:  arch.X86_64,
	elf.EM_AARCH64: arch.AArch64,
}

// ArchOfELF returns the guest architecture of the ELF executable at path.
func ArchOfELF(path string) (arch.Arch, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrUnsupportedBinary, path, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 {
		return "", fmt.Errorf("%w: %s: %v, want 64-bit", ErrUnsupportedBinary, path, f.Class)
	}
	a, ok := elfArches[f.Machine]
	if !ok {
		return "", fmt.Errorf("%w: %s: machine %v", ErrUnsupportedBinary, path, f.Machine)
	}
	return a, nil
}

// ErrDynamicBinary reports a test binary that needs a dynamic loader: the
// guest's initramfs has no libc, so it could never start.
var ErrDynamicBinary = errors.New("test binary is dynamically linked")

// CheckStatic fails with ErrDynamicBinary when the ELF executable at path
// names an interpreter (PT_INTERP), saying how to build it statically.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnsupportedBinary, path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return fmt.Errorf("%w: %s: reading PT_INTERP: %w", ErrUnsupportedBinary, path, err)
		}
		return fmt.Errorf("%w: %s needs %s, which the guest does not have; build it statically "+
			"(CGO_ENABLED=0 go test -exec invm ..., or pure = \"on\" in Bazel)", ErrDynamicBinary, path, string(bytes.TrimRight(b, "\x00")))
	}
	return nil
}
