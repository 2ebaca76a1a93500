package guestinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTestEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		want  []string
	}{
		{"defaults", nil, []string{"HOME=/tmp", "IN_VM=1", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "TMPDIR=/tmp"}},
		{"extra and override", []string{"FOO=bar", "TMPDIR=/scratch", "FOO=baz"},
			[]string{"FOO=baz", "HOME=/tmp", "IN_VM=1", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "TMPDIR=/scratch"}},
		{"marker cannot be overridden", []string{"IN_VM=0"}, []string{"HOME=/tmp", "IN_VM=1", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "TMPDIR=/tmp"}},
		{"value with =", []string{"A=b=c", "junk"}, []string{"A=b=c", "HOME=/tmp", "IN_VM=1", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "TMPDIR=/tmp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TestEnv(tc.extra); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("TestEnv(%q) =\n%q\nwant\n%q", tc.extra, got, tc.want)
			}
		})
	}
}

// fakeMounter records calls and fails according to its maps.
type fakeMounter struct {
	log       []string
	mountErr  map[string]error
	busy      map[string]int // target → how many unmounts fail with EBUSY
	unmountOK map[string]bool
}

func (f *fakeMounter) MkdirAll(dir string, _ os.FileMode) error {
	f.log = append(f.log, "mkdir "+dir)
	return nil
}

func (f *fakeMounter) Mount(source, target, fstype string, flags MountFlag, data string) error {
	f.log = append(f.log, fmt.Sprintf("mount %s %s %d %s", fstype, target, flags, data))
	return f.mountErr[target]
}

func (f *fakeMounter) Unmount(target string, lazy bool) error {
	f.log = append(f.log, fmt.Sprintf("umount %s lazy=%v", target, lazy))
	if f.busy[target] > 0 {
		f.busy[target]--
		return syscall.EBUSY
	}
	return nil
}

func (f *fakeMounter) filter(prefix string) []string {
	var out []string
	for _, l := range f.log {
		if strings.HasPrefix(l, prefix) {
			f := strings.Fields(l)
			if f[0] == "mount" {
				out = append(out, f[2]) // mount FSTYPE TARGET ...
			} else {
				out = append(out, f[1])
			}
		}
	}
	return out
}

func TestMountTable(t *testing.T) {
	table := MountTable([]string{"2M", "1G"})
	var targets []string
	for _, m := range table {
		targets = append(targets, m.Target)
	}
	want := []string{"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run", "/sys/fs/cgroup",
		"/dev/hugepages", "/dev/hugepages-2M", "/dev/hugepages-1G"}
	if !reflect.DeepEqual(targets, want) {
		t.Fatalf("targets %q, want %q", targets, want)
	}
	// Every target's parent mount comes before it.
	for i, m := range table {
		for _, later := range table[i+1:] {
			if strings.HasPrefix(m.Target, later.Target+"/") {
				t.Errorf("%s mounted before its parent %s", m.Target, later.Target)
			}
		}
		if m.Flags&NoSuid == 0 {
			t.Errorf("%s without nosuid", m.Target)
		}
	}
	if hp := table[len(table)-1]; hp.Data != "pagesize=1G" || hp.FSType != "hugetlbfs" || hp.Optional {
		t.Errorf("huge mount %+v", hp)
	}
}

func TestMountAllAndTeardown(t *testing.T) {
	var slept []time.Duration
	sleep := func(d time.Duration) { slept = append(slept, d) }
	f := &fakeMounter{
		mountErr: map[string]error{"/sys/fs/cgroup": syscall.ENODEV},
		busy:     map[string]int{"/dev": 2},
	}
	var diags []string
	ms, err := MountAll(f, MountTable([]string{"2M"}), func(s string) { diags = append(diags, s) }, sleep)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || !strings.Contains(diags[0], "cgroup2") {
		t.Errorf("optional failure not reported: %q", diags)
	}
	mounted := []string{"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run", "/dev/hugepages", "/dev/hugepages-2M"}
	if got := ms.Targets(); !reflect.DeepEqual(got, mounted) {
		t.Fatalf("mounted %q, want %q", got, mounted)
	}
	if err := ms.Teardown(); err != nil {
		t.Fatal(err)
	}
	var wantUnmounts []string
	for i := len(mounted) - 1; i >= 0; i-- {
		wantUnmounts = append(wantUnmounts, mounted[i])
		if mounted[i] == "/dev" { // two EBUSY retries
			wantUnmounts = append(wantUnmounts, "/dev", "/dev")
		}
	}
	if got := f.filter("umount"); !reflect.DeepEqual(got, wantUnmounts) {
		t.Errorf("unmounts %q, want %q", got, wantUnmounts)
	}
	if !reflect.DeepEqual(slept, []time.Duration{UnmountBackoff, 2 * UnmountBackoff}) {
		t.Errorf("backoff %v", slept)
	}
	for _, l := range f.log {
		if strings.HasPrefix(l, "umount") && !strings.HasSuffix(l, "lazy=true") {
			t.Errorf("not lazy: %s", l)
		}
	}
}

func TestMountMandatoryFailure(t *testing.T) {
	f := &fakeMounter{mountErr: map[string]error{"/dev": syscall.EPERM}}
	ms, err := MountAll(f, BaseMounts, func(string) {}, func(time.Duration) {})
	if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "/dev") {
		t.Fatalf("err = %v", err)
	}
	if got := ms.Targets(); !reflect.DeepEqual(got, []string{"/proc", "/sys"}) {
		t.Errorf("mounted %q", got)
	}
}

func TestTeardownGivesUp(t *testing.T) {
	f := &fakeMounter{busy: map[string]int{"/tmp": 100}}
	ms, err := MountAll(f, BaseMounts, func(string) {}, func(time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
	err = ms.Teardown()
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), "/tmp") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.filter("umount")); n != len(BaseMounts)+UnmountRetries {
		t.Errorf("%d unmount calls", n)
	}
}

// writeProc writes a fake /proc/PID entry.
func writeProc(t *testing.T, root string, pid, ppid int, comm string, state byte, flags uint, cmdline ...string) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (%s) %c %d %d %d 0 -1 %d 0 0 0 0 1 2 3 4 20 0 1 0 5\n", pid, comm, state, ppid, pid, pid, flags)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	cl := ""
	if len(cmdline) > 0 {
		cl = strings.Join(cmdline, "\x00") + "\x00"
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cl), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProcTableDescendants(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 1, 0, "init", 'S', 0, "/init")
	writeProc(t, root, 2, 0, "kthreadd", 'S', pfKthread)
	writeProc(t, root, 3, 2, "kworker/0:0", 'I', pfKthread)
	writeProc(t, root, 40, 1, "sleep", 'S', 0, "sleep", "1000")
	writeProc(t, root, 41, 40, "odd) (name", 'R', 0)          // comm with ") (", no cmdline
	writeProc(t, root, 42, 1, "zombie", 'Z', 0)               // not alive
	writeProc(t, root, 50, 7, "orphan-of-other", 'S', 0, "x") // parent not a descendant of 1
	if err := os.WriteFile(filepath.Join(root, "self"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pt := ProcTable{Root: root}
	all, err := pt.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 || all[4].Comm != "odd) (name" || all[4].PPID != 40 || !all[1].Kthread {
		t.Fatalf("List = %+v", all)
	}
	ds, err := pt.Descendants(1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ds {
		names = append(names, p.String())
	}
	if want := []string{"40 sleep 1000", "41 [odd) (name]"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Descendants(1) = %q, want %q", names, want)
	}
	ds, _ = pt.Descendants(40)
	if len(ds) != 1 || ds[0].PID != 41 {
		t.Errorf("Descendants(40) = %+v", ds)
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, in := range []string{"", "1 comm S 0", "x (a) S 0 0 0 0 0 0", "1 (a) S x 0 0 0 0 0", "1 (a) S 0 0"} {
		if _, err := parseStat([]byte(in)); err == nil {
			t.Errorf("parseStat(%q) succeeded", in)
		}
	}
}
