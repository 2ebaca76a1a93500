package runner

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
)

// kernelManifest is the part of a kbuild cache entry's manifest.json the
// runner reads.
type kernelManifest struct {
	Arch          string            `json:"arch"`
	KernelRelease string            `json:"kernel_release"`
	Files         map[string]string `json:"files"`
}

// SharedKernelDir is the kbuild cache of the toolchain root's setup
// (tools/setup), searched after the user's cache.
const SharedKernelDir = "/var/lib/rules_go_vm/cache/kernels"

// KernelDirs returns the kbuild cache directories searched by default:
// SharedKernelDir (the kernels tools/setup built from the pinned source, so
// every path boots the same kernel), then cacheDir/kernels.
func KernelDirs(cacheDir string) []string {
	return []string{SharedKernelDir, filepath.Join(cacheDir, "kernels")}
}

// FindKernel returns the kernel image for arch in the kbuild cache
// directories (<cache>/kernels, see KernelDirs): the newest complete entry
// whose manifest.json names arch, in the first directory that has one. The
// image is the arch profile's KernelImage (vmlinux for x86_64 microvm,
// Image for aarch64).
func FindKernel(arch arch.Arch, kernelsDirs ...string) (string, error) {
	for _, d := range kernelsDirs {
		if k, err := findKernel(d, arch); err == nil {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: no %s kernel in %s; run tools/setup (it builds the default kernels into %s), or build one with: go run ./kernel/cmd/kbuild --arch %s --source /usr/src/linux-source-7.2.tar.xz, or pass -kernel / $INVM_KERNEL",
		ErrNoKernel, arch, strings.Join(kernelsDirs, " or "), SharedKernelDir, arch)
}

func findKernel(kernelsDir string, arch arch.Arch) (string, error) {
	p, err := qemu.ProfileFor(arch)
	if err != nil {
		return "", err
	}
	manifests, _ := filepath.Glob(filepath.Join(kernelsDir, "*", "manifest.json"))
	var best string
	var bestTime time.Time
	for _, m := range manifests {
		km, err := readKernelManifest(m)
		if err != nil || km.Arch != string(arch) {
			continue
		}
		name := p.KernelImage
		if f, ok := km.Files[name]; ok {
			name = f
		}
		img := filepath.Join(filepath.Dir(m), name)
		fi, err := os.Stat(m)
		if _, err2 := os.Stat(img); err != nil || err2 != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestTime) {
			best, bestTime = img, fi.ModTime()
		}
	}
	if best == "" {
		return "", ErrNoKernel
	}
	return best, nil
}

func readKernelManifest(path string) (kernelManifest, error) {
	var km kernelManifest
	b, err := os.ReadFile(path)
	if err != nil {
		return km, err
	}
	return km, json.Unmarshal(b, &km)
}

// KernelRelease returns the release (`uname -r`) of the kernel image at
// path: from the kbuild manifest.json next to it if there is one, else
// from an x86 boot image's setup header (bzImage, vmlinuz), else from the
// first "Linux version " string in the file (vmlinux, arm64 Image). It
// returns "" when it cannot tell.
func KernelRelease(path string) string {
	if km, err := readKernelManifest(filepath.Join(filepath.Dir(path), "manifest.json")); err == nil && km.KernelRelease != "" {
		return km.KernelRelease
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return ParseKernelRelease(b)
}

// ParseKernelRelease extracts the kernel release from a kernel image's
// bytes; see KernelRelease.
func ParseKernelRelease(b []byte) string {
	// x86 boot protocol: "HdrS" at 0x202, kernel_version pointer at 0x20e
	// (relative to 0x200) to "<release> (<builder>) #..."
	if len(b) > 0x210 && string(b[0x202:0x206]) == "HdrS" {
		if off := int(binary.LittleEndian.Uint16(b[0x20e:])) + 0x200; off > 0x200 && off < len(b) {
			if r := firstWord(b[off:]); r != "" {
				return r
			}
		}
	}
	const marker = "Linux version "
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(marker))
		if j < 0 {
			return ""
		}
		i += j + len(marker)
		// Skip format strings like "Linux version %s".
		if r := firstWord(b[i:]); r != "" && r[0] >= '0' && r[0] <= '9' {
			return r
		}
	}
}

func firstWord(b []byte) string {
	end := bytes.IndexAny(b, " \x00\n")
	if end <= 0 || end > 128 {
		return ""
	}
	return string(b[:end])
}
