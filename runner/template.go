package runner

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
)

// A template is a guest booted once to where its init waits for the test
// layer (protocol.TemplateReady) and saved there by QEMU's migration to a
// file: snapshot start restores a copy instead of booting. It is made for
// one (QEMU build, kernel, base layer, VM command line); a run uses it only
// when all of these are its own (TemplateMeta.Check), else it cold-boots.
// Its directory holds these files:
const (
	// TemplateStateFile is the saved guest (QEMU's migration stream).
	TemplateStateFile = "state"
	// TemplateRAMFile is the guest RAM of a vmm.SaveRAMFile template,
	// which restores map copy-on-write.
	TemplateRAMFile = "ram"
	// TemplateMetaFile is the TemplateMeta, JSON; written last.
	TemplateMetaFile = "template.json"
)

// TemplateMetaVersion is the version of TemplateMeta's meaning: a template
// of another version is not used.
const TemplateMetaVersion = 1

// ErrTemplate is wrapped by the errors of making, finding or checking a
// template: a run that gets one cold-boots instead (or, for MakeTemplate,
// fails).
var ErrTemplate = errors.New("snapshot template")

// TemplateMeta describes what a template is for.
type TemplateMeta struct {
	// Version is TemplateMetaVersion when made.
	Version int `json:"version"`
	// Key is a digest of the QEMU command line that boots the VM (the
	// kernel command line included, the run's own paths replaced: the
	// kernel, the initrd, the sockets) and the template's guest config:
	// the VM a restore must be.
	Key string `json:"key"`
	// Files is a digest of the contents of the kernel and the base layer
	// the template booted.
	Files string `json:"files"`
	// Format is how it was saved (vmm.SaveFormats).
	Format string `json:"format"`
	// QEMUBuildID is the QEMU binary's ELF build ID (else its SHA-256): a
	// saved state only loads in the QEMU build that wrote it.
	QEMUBuildID string `json:"qemu_build_id"`
	// HostCPU digests the host CPU model (qemu.HostCPUModel) of a KVM
	// template: a KVM guest keeps the CPU it booted with (-cpu host), so it
	// is restored on that model only. Empty under TCG, whose CPU is QEMU's.
	HostCPU string `json:"host_cpu,omitempty"`
	// QEMUVersion, Arch, Accel and Kernel say what made it, for people.
	QEMUVersion string    `json:"qemu_version,omitempty"`
	Arch        arch.Arch `json:"arch"`
	Accel       string    `json:"accel"`
	Kernel      string    `json:"kernel"`
	// LayerWindowMiB is the size of the template's layer window
	// (vmm.VM.LayerWindow; 0: none), which every restore has too, and
	// LayerWindowMapped whether its guest mapped it (it marked it with
	// protocol.LayerWindowMagic): only then does a restore put its test
	// layer there (else on the layer share).
	LayerWindowMiB    int  `json:"layer_window_mib,omitempty"`
	LayerWindowMapped bool `json:"layer_window_mapped,omitempty"`
	// MakeTime is how long making it took (boot to ready, save, exit);
	// StateBytes the saved state's size.
	MakeTime   time.Duration `json:"make_time_ns"`
	StateBytes int64         `json:"state_bytes"`
}

// Check reports why a template described by m cannot restore a run that
// needs want (nil when it can): another version, QEMU build, VM, kernel or
// base layer.
func (m TemplateMeta) Check(want TemplateMeta) error {
	switch {
	case m.Version != TemplateMetaVersion:
		return fmt.Errorf("%w: version %d, this runner makes version %d", ErrTemplate, m.Version, TemplateMetaVersion)
	case m.QEMUBuildID != want.QEMUBuildID:
		return fmt.Errorf("%w: made by QEMU build id %s (%s); this QEMU's build id is %s (%s)",
			ErrTemplate, m.QEMUBuildID, m.QEMUVersion, want.QEMUBuildID, want.QEMUVersion)
	case m.Arch != want.Arch:
		return fmt.Errorf("%w: made for %s, this run is %s", ErrTemplate, m.Arch, want.Arch)
	case m.Format != want.Format:
		return fmt.Errorf("%w: saved as %s, this run restores %s", ErrTemplate, m.Format, want.Format)
	case m.Key != want.Key:
		return fmt.Errorf("%w: made for another VM (key %s, this run's %s: the shape, accelerator or QEMU command line differ)",
			ErrTemplate, m.Key, want.Key)
	case want.Files != "" && m.Files != want.Files:
		return fmt.Errorf("%w: made from another kernel or base layer (files %s, this run's %s)", ErrTemplate, m.Files, want.Files)
	case m.HostCPU != want.HostCPU:
		return fmt.Errorf("%w: made on another host CPU model (%s, this host's %s): a KVM guest keeps the CPU it booted with",
			ErrTemplate, orNone(m.HostCPU), orNone(want.HostCPU))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// hostCPUKey digests this host's CPU model (qemu.HostCPUModel of cpuinfo)
// for a KVM template; "" under TCG.
func hostCPUKey(accel, cpuinfo string) (string, error) {
	if accel != qemu.AccelKVM {
		return "", nil
	}
	m, err := qemu.HostCPUModel(cpuinfo)
	if err != nil {
		return "", fmt.Errorf("%w: the host CPU model of a KVM template: %w", ErrTemplate, err)
	}
	sum := sha256.Sum256([]byte(m))
	return hex.EncodeToString(sum[:8]), nil
}

// Template is a template's directory and description.
type Template struct {
	Dir  string
	Meta TemplateMeta
}

// State is the saved guest's file.
func (t Template) State() string { return filepath.Join(t.Dir, TemplateStateFile) }

// RAM is the guest RAM file of a vmm.SaveRAMFile template.
func (t Template) RAM() string { return filepath.Join(t.Dir, TemplateRAMFile) }

// ReadTemplate reads the template in dir; the error wraps ErrTemplate.
func ReadTemplate(dir string) (Template, error) {
	b, err := os.ReadFile(filepath.Join(dir, TemplateMetaFile))
	if err != nil {
		return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	t := Template{Dir: dir}
	if err := json.Unmarshal(b, &t.Meta); err != nil {
		return Template{}, fmt.Errorf("%w: %s: %w", ErrTemplate, TemplateMetaFile, err)
	}
	files := []string{t.State()}
	if t.Meta.Format == vmm.SaveRAMFile {
		files = append(files, t.RAM())
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return Template{}, fmt.Errorf("%w: %w", ErrTemplate, err)
		}
	}
	return t, nil
}

// templateKey digests the VM a restore must be: the QEMU command line made
// with placeholder paths for the run's own files (templateWant) and the
// template's guest config.
func templateKey(args []string, cfg []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "args %q\nconfig %q\n", args, cfg)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// filesKey digests the contents of files (the kernel and the base layer):
// a template is only restored with the ones it booted, wherever they are.
// Each file's digest is remembered in memoDir (when not "") under its
// path, size, modification time and inode: hashing the ~25 MB of a kernel
// and a base layer took ~0.15 s of every run here.
func filesKey(memoDir string, files ...string) (string, error) {
	h := sha256.New()
	for _, name := range files {
		d, err := fileDigest(memoDir, name)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrTemplate, err)
		}
		fmt.Fprintf(h, "%s\n", d)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// fileDigest is the SHA-256 of name's contents, remembered in memoDir.
func fileDigest(memoDir, name string) (string, error) {
	st, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	var memo string
	if memoDir != "" {
		abs, _ := filepath.Abs(name)
		id := fmt.Sprintf("%s|%d|%d", abs, st.Size(), st.ModTime().UnixNano())
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			id += fmt.Sprintf("|%d|%d", sys.Dev, sys.Ino)
		}
		sum := sha256.Sum256([]byte(id))
		memo = filepath.Join(memoDir, hex.EncodeToString(sum[:16]))
		if b, err := os.ReadFile(memo); err == nil && len(b) == 2*sha256.Size {
			return string(b), nil
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	d := hex.EncodeToString(h.Sum(nil))
	if memo != "" && os.MkdirAll(memoDir, 0o755) == nil {
		_ = atomicfile.WriteFile(memo, []byte(d), 0o644) // a cache: a failure only costs the next run a hash
	}
	return d, nil
}

// QEMUBuildID returns the ELF build ID of the QEMU binary at path, or,
// for a binary without one (or a wrapper script), "sha256:" and its
// digest.
func QEMUBuildID(path string) (string, error) {
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		if s := f.Section(".note.gnu.build-id"); s != nil {
			if b, err := s.Data(); err == nil && len(b) > 16 {
				// Elf64_Nhdr (namesz, descsz, type), "GNU\0", the ID.
				return hex.EncodeToString(b[16:]), nil
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: QEMU build id: %w", ErrTemplate, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%w: QEMU build id: %w", ErrTemplate, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// templateConfig is a template's guest config: wait on the serial
// channel, with the shape's guest hugepages mounted, the layer share there
// and its layer window (w, when its size is not 0) mapped; not verbose
// (the test's config says, after the restore).
func templateConfig(ch protocol.Channel, hugeSizes []string, w layerWindow) ([]byte, error) {
	cfg := protocol.GuestConfig{Template: true, Channel: ch, HugePageSizes: hugeSizes, LayerShare: protocol.LayerShareTag,
		LayerWindowBase: w.base, LayerWindowSize: uint64(w.mib) << 20}
	b, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return b, nil
}

// writeTemplateInitrd writes the template's initrd at path: the base layer
// and a layer with the template's config.
func writeTemplateInitrd(path, base string, cfg []byte) error {
	l := initramfs.NewLayer()
	if err := l.AddBytes(strings.TrimPrefix(protocol.ConfigPath, "/"), cfg, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return WriteInitrd(path, base, nil, l)
}

// TemplateDir is where a run's template lives in the cache directory.
func TemplateDir(cacheDir string, a arch.Arch, key string) string {
	return filepath.Join(cacheDir, "templates", string(a)+"-"+key)
}

// installTemplate moves a made template (tmp) into place at dir,
// replacing a refused one there; when another runner installed a good one
// first, that one stays and tmp goes.
func installTemplate(tmp, dir string, want TemplateMeta) (Template, error) {
	if t, err := ReadTemplate(dir); err == nil && t.Meta.Check(want) == nil {
		os.RemoveAll(tmp)
		return t, nil
	}
	old := dir + ".old-" + filepath.Base(tmp)
	if err := os.Rename(dir, old); err == nil {
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if t, err2 := ReadTemplate(dir); err2 == nil && t.Meta.Check(want) == nil {
			return t, nil // another runner's, installed in between
		}
		return Template{}, fmt.Errorf("%w: install: %w", ErrTemplate, err)
	}
	return ReadTemplate(dir)
}
