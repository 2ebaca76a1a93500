// Package hostpages boots guests whose RAM is backed by the host's huge pages
// (go_vm_test host_pages = "2M" and "1G": QEMU maps guest memory from the
// host's hugetlbfs mount of that size, which tools/setup provides). Inside,
// the guest checks it got the RAM its target asked for (HOSTPAGES_MEMORY_MIB).
// Run it by hand with
//
//	go test -exec 'invm -host-pages 2M -memory 512 -env HOSTPAGES_MEMORY_MIB=512' ./tests/hostpages/
package hostpages

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

func TestMain(m *testing.M) { invm.Main(m) }

// memTotalKiB reads MemTotal from /proc/meminfo.
func memTotalKiB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("MemTotal %q: %v", rest, err)
			}
			return kib
		}
	}
	t.Fatalf("no MemTotal in /proc/meminfo (%v)", s.Err())
	return 0
}

func TestGuestRAM(t *testing.T) {
	invm.Require(t)
	want, err := strconv.Atoi(os.Getenv("HOSTPAGES_MEMORY_MIB"))
	if err != nil {
		t.Fatalf("HOSTPAGES_MEMORY_MIB: %v (the target sets it to its memory attribute)", err)
	}
	got := memTotalKiB(t) / 1024
	// MemTotal is the RAM minus what the kernel reserved for itself (its
	// image, page tables, firmware holes): within 15% below, never above.
	if got > want || got < want*85/100 {
		t.Errorf("guest MemTotal %d MiB, want %d MiB minus at most 15%%", got, want)
	}
	t.Logf("guest MemTotal %d MiB of %d MiB", got, want)
}
