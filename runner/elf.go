package runner

import (
	"debug/elf"
	"errors"
	"fmt"

	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
)

// ErrUnsupportedBinary reports a test binary that is not a 64-bit Linux ELF
// executable for a supported guest architecture.
var ErrUnsupportedBinary = errors.New("unsupported test binary")

// elfArches maps ELF machines to guest architectures.
var elfArches = map[elf.Machine]qemu.Arch{
	elf.EM_X86_64:  qemu.X86_64,
	elf.EM_AARCH64: qemu.AArch64,
}

// GOARCHes maps guest architectures to Go's GOARCH.
var GOARCHes = map[qemu.Arch]string{
	qemu.X86_64:  "amd64",
	qemu.AArch64: "arm64",
}

// ArchOfELF returns the guest architecture of the ELF executable at path.
func ArchOfELF(path string) (qemu.Arch, error) {
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
