// Package covlib is a small library whose only Bazel test runs inside a
// guest (covlib_vm_test): `bazel coverage //tests/coverage/...` reports its
// lines from there, and `go test -cover` of the same test on the host
// reports the same ones (the test is deterministic, see covlib_test.go).
package covlib

import "strings"

// Kind says what a file system type of /proc/mounts is for.
func Kind(fstype string) string {
	switch fstype {
	case "proc", "sysfs", "devtmpfs":
		return "kernel"
	case "tmpfs", "ramfs":
		return "memory"
	case "hugetlbfs":
		return "hugepages"
	}
	if strings.HasPrefix(fstype, "fuse.") {
		return "user"
	}
	return "other"
}

// Mount is one line of /proc/mounts.
type Mount struct {
	Device, Dir, Type string
}

// ParseMounts parses /proc/mounts text; lines with fewer than three fields
// are skipped.
func ParseMounts(text string) []Mount {
	var out []Mount
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		out = append(out, Mount{Device: f[0], Dir: f[1], Type: f[2]})
	}
	return out
}
