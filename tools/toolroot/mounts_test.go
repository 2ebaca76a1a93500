package toolroot

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const sampleMountInfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
100 22 254:0 /work /var/lib/rules_go_vm/root/work rw,relatime shared:1 - ext4 /dev/vda rw
101 22 0:5 / /var/lib/rules_go_vm/root/dev rw,nosuid shared:2 - devtmpfs udev rw
102 101 0:21 / /var/lib/rules_go_vm/root/dev/pts rw - devpts devpts rw
103 22 254:0 /tmp /var/lib/rules_go_vm/root/tmp rw - ext4 /dev/vda rw
104 22 254:0 /x /var/lib/rules_go_vm/root2 rw - ext4 /dev/vda rw
105 22 254:0 /sp /var/lib/rules_go_vm/root/with\040space rw - ext4 /dev/vda rw
`

func TestParseMountInfo(t *testing.T) {
	ms, err := ParseMountInfo(strings.NewReader(sampleMountInfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("got %d mounts, want 8", len(ms))
	}
	want := Mount{ID: 105, ParentID: 22, Root: "/sp", Point: "/var/lib/rules_go_vm/root/with space", FSType: "ext4", Source: "/dev/vda"}
	if ms[7] != want {
		t.Errorf("escaped line: got %+v, want %+v", ms[7], want)
	}
}

func TestParseMountInfoErrors(t *testing.T) {
	for _, in := range []string{
		"22 1 254:0 / / rw\n",            // no separator
		"x 1 254:0 / / rw - ext4 a rw\n", // bad ID
		"22 1 - ext4 a rw\n",             // too few fields
	} {
		if _, err := ParseMountInfo(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMountInfo(%q): no error", in)
		}
	}
}

func TestUnder(t *testing.T) {
	ms, err := ParseMountInfo(strings.NewReader(sampleMountInfo))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range Under(ms, "/var/lib/rules_go_vm/root/") {
		got = append(got, m.Point)
	}
	// Deepest first; root2 is a sibling, not inside.
	want := []string{
		"/var/lib/rules_go_vm/root/dev/pts",
		"/var/lib/rules_go_vm/root/with space",
		"/var/lib/rules_go_vm/root/tmp",
		"/var/lib/rules_go_vm/root/dev",
		"/var/lib/rules_go_vm/root/work",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Under:\n got %q\nwant %q", got, want)
	}
}

// fakeMounts keeps a mountinfo file on disk that Unmount edits, so Remover
// reads what a real kernel would show after each step.
type fakeMounts struct {
	t     *testing.T
	path  string
	lines []string
	busy  map[string]bool
}

func newFakeMounts(t *testing.T, points ...string) *fakeMounts {
	f := &fakeMounts{t: t, path: filepath.Join(t.TempDir(), "mountinfo"), busy: map[string]bool{}}
	f.lines = append(f.lines, "22 1 254:0 / / rw - ext4 /dev/vda rw")
	for i, p := range points {
		f.lines = append(f.lines, strconv.Itoa(200+i)+" 22 254:0 / "+p+" rw - ext4 /dev/vda rw")
	}
	f.write()
	return f
}

func (f *fakeMounts) write() {
	if err := os.WriteFile(f.path, []byte(strings.Join(f.lines, "\n")+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeMounts) unmount(point string) error {
	if f.busy[point] {
		return errors.New("device or resource busy")
	}
	for i, l := range f.lines {
		if strings.Contains(l, " "+point+" ") {
			f.lines = append(f.lines[:i], f.lines[i+1:]...)
			f.write()
			return nil
		}
	}
	return errors.New("not mounted")
}

// newRoot makes a root (with a work directory, and the Marker if marker) in
// a fresh temporary directory, by its real path: the mount table and Remove
// speak real paths.
func newRoot(t *testing.T, marker bool) string {
	return newRootAt(t, filepath.Join(realTempDir(t), "root"), marker)
}

// newRootAt is newRoot at a given path.
func newRootAt(t *testing.T, root string, marker bool) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	if marker {
		if err := os.WriteFile(filepath.Join(root, Marker), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// realTempDir is t.TempDir with symlinks resolved.
func realTempDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertIntact fails the test unless root still has its Marker and work
// directory.
func assertIntact(t *testing.T, root string) {
	t.Helper()
	for _, p := range []string{Marker, "work"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("the root was touched: %v", err)
		}
	}
}

func TestRemoveRefusesLiveMounts(t *testing.T) {
	root := newRoot(t, true)
	fm := newFakeMounts(t, root+"/work", root+"/tmp")
	r := Remover{MountInfo: fm.path}
	err := r.Remove(root)
	var live *LiveMountsError
	if !errors.As(err, &live) || !errors.Is(err, ErrLiveMounts) {
		t.Fatalf("Remove with live mounts and no Unmount: got %v, want LiveMountsError", err)
	}
	assertIntact(t, root)
	if len(live.Mounts) != 2 || !strings.Contains(err.Error(), "tools/setup --remove") {
		t.Errorf("error should list both mounts and the fix: %v", err)
	}
}

func TestRemoveUnmountsFirst(t *testing.T) {
	root := newRoot(t, true)
	fm := newFakeMounts(t, root+"/work", root+"/dev", root+"/dev/pts")
	var order []string
	r := Remover{
		MountInfo: fm.path,
		Unmount: func(p string) error {
			order = append(order, strings.TrimPrefix(p, root))
			return fm.unmount(p)
		},
	}
	if err := r.Remove(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("root still there: %v", err)
	}
	if order[0] != "/dev/pts" {
		t.Errorf("unmount order %q: the deepest mount must go first", order)
	}
}

func TestRemoveStuckMountDeletesNothing(t *testing.T) {
	root := newRoot(t, true)
	fm := newFakeMounts(t, root+"/work")
	fm.busy[root+"/work"] = true
	r := Remover{MountInfo: fm.path, Unmount: fm.unmount}
	if err := r.Remove(root); err == nil {
		t.Fatal("Remove succeeded with a mount that cannot be unmounted")
	}
	assertIntact(t, root)
}

func TestRemoveNeedsMarker(t *testing.T) {
	root := newRoot(t, false)
	fm := newFakeMounts(t)
	r := Remover{MountInfo: fm.path, Unmount: fm.unmount}
	if err := r.Remove(root); !errors.Is(err, ErrNotARoot) {
		t.Fatalf("Remove without marker: got %v, want ErrNotARoot", err)
	}
	if err := r.Remove("/"); !errors.Is(err, ErrNotARoot) {
		t.Fatalf("Remove(/): got %v, want ErrNotARoot", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("unmarked directory was touched: %v", err)
	}
}

func TestRemoveMissingRootIsNoop(t *testing.T) {
	r := Remover{MountInfo: newFakeMounts(t).path}
	if err := r.Remove(filepath.Join(t.TempDir(), "absent")); err != nil {
		t.Fatal(err)
	}
}
