package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/initramfs"
)

// GuestApplets are the busybox applets the base layer links into /bin (on
// the test's PATH) when it has a busybox: the tools tests commonly exec.
var GuestApplets = []string{
	"awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dd", "dirname", "dmesg", "echo", "env",
	"expr", "false", "find", "grep", "head", "hostname", "id", "ip", "kill", "killall", "ln", "ls", "mkdir",
	"mkfifo", "mknod", "mktemp", "mount", "mv", "nc", "nproc", "ping", "printf", "ps", "pwd", "readlink",
	"realpath", "rm", "rmdir", "sed", "seq", "sh", "sleep", "sort", "stat", "sync", "tail", "tee", "test",
	"timeout", "touch", "tr", "true", "umount", "uname", "uniq", "wc", "which", "xargs", "yes",
}

// SharedBinDir holds what tools/setup installs for runs outside Bazel,
// among them busybox-<arch>: a static busybox per guest arch.
const SharedBinDir = "/var/lib/rules_go_vm/bin"

// NoBusybox as Options.Busybox builds the base layer without a userland.
const NoBusybox = "none"

// ErrBusyboxArch reports a busybox that is not a static binary of the
// guest's arch.
var ErrBusyboxArch = errors.New("busybox is not a static binary of the guest's arch")

// FindGuestBusybox returns the static busybox the base layer of an a guest
// gets: explicit if set (NoBusybox: none), else SharedBinDir/busybox-<a>,
// else the first of /bin/busybox, /usr/bin/busybox and, inside the
// toolchain root, the arch's sysroot busybox (foreignBusybox) that is
// static and of arch a. It
// returns "" when there is none: the guest then has no userland, which is
// not an error (a test that execs a tool fails saying it is missing).
func FindGuestBusybox(a arch.Arch, explicit string) (string, error) {
	switch explicit {
	case NoBusybox:
		return "", nil
	case "":
	default:
		if err := checkBusybox(explicit, a); err != nil {
			return "", fmt.Errorf("%w: -busybox %s: %w", ErrInvalidOptions, explicit, err)
		}
		return explicit, nil
	}
	for _, p := range []string{filepath.Join(SharedBinDir, "busybox-"+string(a)), "/bin/busybox", "/usr/bin/busybox", foreignBusybox[a]} {
		if p == "" {
			continue
		}
		if checkBusybox(p, a) == nil {
			return p, nil
		}
	}
	return "", nil
}

// foreignBusybox is where the toolchain root holds another arch's static
// busybox (tools/setup unpacks it into the arch's sysroot; the rules'
// @rules_go_vm_userland reads the same file).
var foreignBusybox = map[arch.Arch]string{
	arch.AArch64: "/opt/rules_go_vm/sysroot/arm64/usr/bin/busybox",
}

func checkBusybox(p string, a arch.Arch) error {
	if err := CheckStatic(p); err != nil {
		return err
	}
	got, err := ArchOfELF(p)
	if err != nil {
		return err
	}
	if got != a {
		return fmt.Errorf("%w: %s is for %s, the guest is %s", ErrBusyboxArch, p, got, a)
	}
	return nil
}

// addUserland puts busybox at GuestBusybox and links GuestApplets to it.
func addUserland(l *initramfs.Layer, busybox string) error {
	if err := l.AddFile(strings.TrimPrefix(GuestBusybox, "/"), busybox, 0o755); err != nil {
		return err
	}
	for _, a := range GuestApplets {
		if err := l.AddSymlink("bin/"+a, "busybox"); err != nil {
			return err
		}
	}
	return nil
}

// busyboxKey is the part of a base layer's cache key that its busybox
// makes ("" for none).
func busyboxKey(busybox string) (string, error) {
	if busybox == "" {
		return "", nil
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		return "", fmt.Errorf("%w: busybox: %w", ErrInvalidOptions, err)
	}
	sum := sha256.Sum256(append(b, strings.Join(GuestApplets, ",")...))
	return "-bb" + hex.EncodeToString(sum[:8]), nil
}
