package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostHugepagesFind(t *testing.T) {
	const mounts = "proc /proc proc rw 0 0\n" +
		"hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n" +
		"none /mnt/huge\\0401G hugetlbfs rw,relatime,pagesize=1024M 0 0\n"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withMounts := write("mounts", mounts)
	noMounts := write("mounts-none", "proc /proc proc rw 0 0\n")
	sys := filepath.Join(dir, "sys")
	write("sys/hugepages-2048kB/free_hugepages", "128\n")
	write("sys/hugepages-1048576kB/free_hugepages", "1\n")
	for _, tc := range []struct {
		name      string
		h         HostHugepages
		size      string
		mem       int
		want      string
		wantErr   error
		errSubstr string
	}{
		{"2M found", HostHugepages{withMounts, sys}, HostPages2M, 256, "/dev/hugepages", nil, ""},
		{"1G found, escaped path", HostHugepages{withMounts, sys}, HostPages1G, 1024, "/mnt/huge 1G", nil, ""},
		{"2M pool too small", HostHugepages{withMounts, sys}, HostPages2M, 512, "", ErrNoHostHugepages, "needs 256 free 2M pages, the host has 128"},
		{"no mount", HostHugepages{noMounts, sys}, HostPages2M, 256, "", ErrNoHostHugepages, "no hugetlbfs mount with 2M pages"},
		{"no pool", HostHugepages{withMounts, filepath.Join(dir, "nosys")}, HostPages2M, 256, "", ErrNoHostHugepages, "nr_hugepages"},
		{"4k is not huge", HostHugepages{withMounts, sys}, HostPages4k, 256, "", ErrInvalidSpec, "not a hugepage size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.h.Find(tc.size, tc.mem)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (err != nil && !strings.Contains(err.Error(), tc.errSubstr)) {
				t.Errorf("Find(%s, %d) = %q, %v; want %q, %v containing %q", tc.size, tc.mem, got, err, tc.want, tc.wantErr, tc.errSubstr)
			}
		})
	}
}

// TestHostHugepagesReal runs Find against this host's real mount table
// and pools: it must either find a mount or say clearly why not.
func TestHostHugepagesReal(t *testing.T) {
	for _, size := range []string{HostPages2M, HostPages1G} {
		dir, err := HostHugepages{}.Find(size, 1024)
		switch {
		case err == nil:
			if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
				t.Errorf("Find(%s) = %q, not a directory", size, dir)
			}
		case !errors.Is(err, ErrNoHostHugepages) || !strings.Contains(err.Error(), "on the host:"):
			t.Errorf("Find(%s) error %v: want ErrNoHostHugepages with the setup steps", size, err)
		default:
			t.Logf("%s: %v", size, err)
		}
	}
}
