// Package arch names the guest architectures once for the whole module:
// the kernel builder (kernel/kbuild), QEMU's lowering table (runner/qemu),
// the VM description (runner/vmm) and the runner all use Arch.
package arch

import "runtime"

// Arch is a guest architecture, named like `uname -m` and GNU triplets
// ("x86_64", "aarch64").
type Arch string

// Guest architectures.
const (
	X86_64  Arch = "x86_64"
	AArch64 Arch = "aarch64"
)

// All returns the supported architectures.
func All() []Arch { return []Arch{X86_64, AArch64} }

// goarches maps the architectures to Go's GOARCH.
var goarches = map[Arch]string{X86_64: "amd64", AArch64: "arm64"}

// GOARCH is Go's name of a ("amd64", "arm64"); "" for an unsupported a.
func (a Arch) GOARCH() string { return goarches[a] }

// FromGOARCH returns the architecture Go calls goarch; "" for one that is
// not a supported guest.
func FromGOARCH(goarch string) Arch {
	for a, g := range goarches {
		if g == goarch {
			return a
		}
	}
	return ""
}

// Host returns the running program's architecture ("" when it is not a
// supported guest architecture).
func Host() Arch { return FromGOARCH(runtime.GOARCH) }
