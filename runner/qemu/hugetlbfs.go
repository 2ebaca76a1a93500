package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoHostHugepages reports host pages 2M/1G the host cannot provide: no
// hugetlbfs mount of that page size, or too few free pages in its pool.
var ErrNoHostHugepages = errors.New("host hugepages unavailable")

// HostHugepages is where the host's hugetlbfs facts are read (injected for
// tests).
type HostHugepages struct {
	// Mounts is the mount table; "" means /proc/mounts.
	Mounts string
	// SysDir is the hugepage pools' sysfs directory; "" means
	// /sys/kernel/mm/hugepages.
	SysDir string
}

// Find returns a hugetlbfs mount point of page size size (HostPages2M or
// HostPages1G) with at least memoryMiB of free pages in its pool. The error
// wraps ErrNoHostHugepages and says how to set the host up.
func (h HostHugepages) Find(size string, memoryMiB int) (string, error) {
	pageMiB := hostPageMiB(size)
	if pageMiB < 2 {
		return "", fmt.Errorf("%w: host page size %q is not a hugepage size (2M, 1G)", ErrInvalidSpec, size)
	}
	mounts, sys := h.Mounts, h.SysDir
	if mounts == "" {
		mounts = "/proc/mounts"
	}
	if sys == "" {
		sys = "/sys/kernel/mm/hugepages"
	}
	kB := pageMiB * 1024
	pool := filepath.Join(sys, fmt.Sprintf("hugepages-%dkB", kB))
	setup := fmt.Sprintf("on the host: echo %d > %s/nr_hugepages && mkdir -p /dev/hugepages-%s && mount -t hugetlbfs -o pagesize=%s none /dev/hugepages-%s",
		memoryMiB/pageMiB, pool, size, size, size)
	f, err := os.Open(mounts)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoHostHugepages, err)
	}
	defer f.Close()
	dir := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 4 || fields[2] != "hugetlbfs" {
			continue
		}
		if mountPageKB(fields[3]) == kB {
			dir = unescapeMount(fields[1])
			break
		}
	}
	if dir == "" {
		return "", fmt.Errorf("%w: no hugetlbfs mount with %s pages in %s (host_pages = %q needs one); %s",
			ErrNoHostHugepages, size, mounts, size, setup)
	}
	b, err := os.ReadFile(filepath.Join(pool, "free_hugepages"))
	if err != nil {
		return "", fmt.Errorf("%w: %s pool: %w; %s", ErrNoHostHugepages, size, err, setup)
	}
	free, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%w: %s pool: bad free_hugepages %q", ErrNoHostHugepages, size, strings.TrimSpace(string(b)))
	}
	if need := memoryMiB / pageMiB; free < need {
		return "", fmt.Errorf("%w: %d MiB of guest RAM needs %d free %s pages, the host has %d; %s",
			ErrNoHostHugepages, memoryMiB, need, size, free, setup)
	}
	return dir, nil
}

// mountPageKB returns the pagesize= option of hugetlbfs mount options in
// kB (the kernel always shows it: pagesize=2M, pagesize=1024M).
func mountPageKB(opts string) int {
	for _, o := range strings.Split(opts, ",") {
		v, ok := strings.CutPrefix(o, "pagesize=")
		if !ok || v == "" {
			continue
		}
		mult := map[byte]int{'K': 1, 'M': 1024, 'G': 1024 * 1024}[v[len(v)-1]]
		n, err := strconv.Atoi(v[:len(v)-1])
		if mult == 0 || err != nil {
			return 0
		}
		return n * mult
	}
	return 0
}

// unescapeMount undoes /proc/mounts' octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
