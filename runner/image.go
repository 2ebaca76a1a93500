package runner

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

// ModulePath is this repository's Go module path.
const ModulePath = "github.com/rules-go-vm/rules_go_vm"

// InitPackage is the guest init's main package.
const InitPackage = ModulePath + "/guestinit/cmd/init"

// GuestDir is where the test binary and its testdata/ live in the guest;
// it is the test's working directory, like the package directory under
// `go test`.
const GuestDir = "/invm/pkg"

// initSources are the module directories whose sources make up the init
// binary (with go.mod and go.sum for its dependencies): the base layer's
// cache key hashes them.
var initSources = []string{"guestinit", "protocol"}

// baseDirs are the directories of the base layer, with their modes.
var baseDirs = []struct {
	path string
	mode fs.FileMode
}{
	{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"tmp", 0o1777}, {"run", 0o755},
	{"bin", 0o755}, {"etc", 0o755},
}

// FindModuleRoot returns the root of this module's source tree: the first
// directory holding a go.mod for ModulePath among dir and its parents, then
// the source directory this binary was built from (if it still exists).
func FindModuleRoot(dir string) (string, error) {
	isRoot := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err != nil {
			return false
		}
		first, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSpace(first) == "module "+ModulePath
	}
	for d := dir; d != ""; {
		if isRoot(d) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if d := filepath.Dir(filepath.Dir(file)); isRoot(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: cannot find the %s source tree from %s (pass -init or -module-root, or $INVM_MODULE_ROOT)", ErrInternal, ModulePath, dir)
}

// initKey hashes what the init binary is built from: the Go toolchain
// version, GOARCH, go.mod, go.sum and the non-test Go files of initSources.
func initKey(root, goBin, goarch string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "goarch=%s\n", goarch)
	if v, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(goBin)), "VERSION")); err == nil {
		fmt.Fprintf(h, "go=%s\n", v)
	} else {
		fmt.Fprintf(h, "gobin=%s\n", goBin)
	}
	var files []string
	for _, f := range []string{"go.mod", "go.sum"} {
		files = append(files, filepath.Join(root, f))
	}
	for _, d := range initSources {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "testdata" {
				return filepath.SkipDir
			}
			if !e.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// findGo returns the go command.
func findGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: no go command on PATH to build the guest init", ErrInternal)
}

// BaseLayer returns the path of the base initramfs layer for goarch in
// cacheDir, building it on a cache miss: /init (initBinary if not empty,
// else guestinit/cmd/init built from moduleRoot with CGO_ENABLED=0),
// /dev/console (char 5:1, needed before devtmpfs is mounted) and the mount
// point directories, and busybox (if not "") with GuestApplets linked to it
// in /bin. The cache entry is keyed by the init binary's content (or its
// sources' content when it is built) and busybox's.
func BaseLayer(cacheDir, goarch, initBinary, moduleRoot, busybox string) (string, error) {
	dir := filepath.Join(cacheDir, "base")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInternal, err)
	}
	var key string
	if initBinary != "" {
		b, err := os.ReadFile(initBinary)
		if err != nil {
			return "", fmt.Errorf("%w: init binary: %w", ErrInvalidOptions, err)
		}
		sum := sha256.Sum256(b)
		key = "bin-" + hex.EncodeToString(sum[:16])
	} else {
		goBin, err := findGo()
		if err != nil {
			return "", err
		}
		k, err := initKey(moduleRoot, goBin, goarch)
		if err != nil {
			return "", fmt.Errorf("%w: hashing init sources: %w", ErrInternal, err)
		}
		key = "src-" + goarch + "-" + k
		initBinary = filepath.Join(dir, key+".init")
		if _, err := os.Stat(initBinary); err != nil {
			if err := buildInit(goBin, goarch, moduleRoot, initBinary); err != nil {
				return "", err
			}
		}
	}
	bbKey, err := busyboxKey(busybox)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, key+bbKey+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	l, err := NewBaseLayer(initBinary, busybox)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(out, l); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInternal, err)
	}
	return out, nil
}

// buildInit builds the guest init for goarch from moduleRoot into path,
// atomically (go build writes a temporary file, renamed into place).
func buildInit(goBin, goarch, moduleRoot, path string) error {
	err := atomicfile.Produce(path, 0o755, func(tmp string) error {
		cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, InitPackage)
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: building the guest init: %w\n%s", ErrInternal, err, out)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrInternal) {
		err = fmt.Errorf("%w: %w", ErrInternal, err)
	}
	return err
}

// NewBaseLayer returns the base initramfs layer around the static guest
// init at initBinary: /init, /dev/console (char 5:1, mode 0600: the kernel
// opens it as init's fds 0-2 before devtmpfs is mounted), the mount point
// directories (/tmp 1777) and, if busybox is not "", /bin/busybox with
// GuestApplets linked to it (the test's PATH starts with /bin).
func NewBaseLayer(initBinary, busybox string) (*initramfs.Layer, error) {
	l := initramfs.NewLayer()
	for _, d := range baseDirs {
		if err := l.AddDir(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInternal, err)
		}
	}
	if err := errors.Join(
		l.AddCharDev("dev/console", 0o600, 5, 1),
		l.AddFile("init", initBinary, 0o755),
	); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	if busybox != "" {
		if err := addUserland(l, busybox); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInternal, err)
		}
	}
	return l, nil
}

// writeAtomic writes w to path atomically (mode 0600, as before: only the
// runner's own user reads the cached layers).
func writeAtomic(path string, w io.WriterTo) error {
	return atomicfile.Write(path, 0o600, func(f io.Writer) error {
		bw := bufio.NewWriterSize(f, writeBuffer)
		if _, err := w.WriteTo(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// writeBuffer is the buffer size of the layers' writes.
const writeBuffer = 1 << 20

// TestLayer returns the per-run layer: the test binary (unless
// testBinary is "", when another layer carries it) at GuestDir/<base name>, testdataDir (if not empty) at GuestDir/testdata and
// cfg at protocol.ConfigPath. It assumes the base layer's directories.
func TestLayer(testBinary, testdataDir string, cfg protocol.GuestConfig) (*initramfs.Layer, error) {
	b, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	l := initramfs.NewLayer()
	guest := strings.TrimPrefix(GuestDir, "/")
	errs := []error{
		l.AddBytes(strings.TrimPrefix(protocol.ConfigPath, "/"), b, 0o644),
	}
	if testBinary != "" {
		errs = append(errs, l.AddFile(guest+"/"+filepath.Base(testBinary), testBinary, 0o755))
	}
	if testdataDir != "" {
		errs = append(errs, l.AddTree(guest+"/testdata", testdataDir))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: test layer: %w", ErrInternal, err)
	}
	return l, nil
}

// WriteInitrd writes the concatenation of the base layer file, the extra
// layer files and the test layer to path.
func WriteInitrd(path, base string, extra []string, test *initramfs.Layer) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInternal, err)
	}
	err = writeInitrd(f, append([]string{base}, extra...), test)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: writing initrd: %w", ErrInternal, err)
	}
	return nil
}

// writeInitrd writes the prebuilt layers (file to file, which the kernel
// copies without a trip through this process) and then the test layer,
// each padded to 4 bytes as initramfs.Concat does.
func writeInitrd(f *os.File, layers []string, test *initramfs.Layer) error {
	var total int64
	pad := func() error {
		if p := (4 - total%4) % 4; p != 0 {
			n, err := f.Write(make([]byte, p))
			total += int64(n)
			return err
		}
		return nil
	}
	for _, p := range layers {
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, src)
		src.Close()
		total += n
		if err != nil {
			return fmt.Errorf("layer %s: %w", p, err)
		}
		if err := pad(); err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(f, writeBuffer)
	if _, err := test.WriteTo(bw); err != nil {
		return fmt.Errorf("test layer: %w", err)
	}
	return bw.Flush()
}
