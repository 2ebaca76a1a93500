package toolroot

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests here mount for real. They need root: not root (a plain `go test`
// as a user), they skip; as root (tools/bazel test, which runs them outside
// Bazel's sandbox: see tags in BUILD.bazel), a mount that fails fails the
// test. Every mount lies under t.TempDir() and is detached in t.Cleanup,
// which runs before the temporary directories are deleted.

// mustMount mounts src (of type fstype; "" with unix.MS_BIND for a bind
// mount) at dst until the test ends.
func mustMount(t *testing.T, src, dst, fstype string, flags uintptr) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount (tools/bazel test runs it as root); the fake-mount tests cover the logic")
	}
	if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s at %s: %v (running as root, so mounting must work here; "+
			"under Bazel the test must not be sandboxed: see tags in BUILD.bazel)", src, dst, err)
	}
	t.Cleanup(func() {
		err := unix.Unmount(dst, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("cleaning up the mount at %s: %v", dst, err)
		}
	})
}

// bindMount bind-mounts src at dst until the test ends.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	mustMount(t, src, dst, "", unix.MS_BIND)
}

// unmountNow is what rootctl does (without its lazy fallback).
func unmountNow(point string) error { return unix.Unmount(point, 0) }

// precious is a directory with a file whose content must survive every
// removal; check fails the test when it did not.
type precious struct {
	dir  string
	file string
}

const preciousText = "do not delete"

func newPrecious(t *testing.T) precious {
	t.Helper()
	p := precious{dir: realTempDir(t)}
	p.file = filepath.Join(p.dir, "keep.txt")
	if err := os.WriteFile(p.file, []byte(preciousText), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p precious) check(t *testing.T) {
	t.Helper()
	if b, err := os.ReadFile(p.file); err != nil || string(b) != preciousText {
		t.Errorf("the content outside the root was damaged: %q, %v", b, err)
	}
}

// assertGone fails the test unless path no longer exists.
func assertGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed: %v", path, err)
	}
}

// TestRemoveRealBindMount does what tools/setup --remove does, on a real bind
// mount: the directory shown inside the root must survive the removal.
func TestRemoveRealBindMount(t *testing.T) {
	keep := newPrecious(t)
	root := newRoot(t, true)
	bindMount(t, keep.dir, filepath.Join(root, "work"))

	if err := (Remover{}).Remove(root); !errors.Is(err, ErrLiveMounts) {
		t.Fatalf("Remove without Unmount: got %v, want ErrLiveMounts", err)
	}
	if err := (Remover{Unmount: unmountNow}).Remove(root); err != nil {
		t.Fatal(err)
	}
	assertGone(t, root)
	keep.check(t)
}

// TestRemoveThroughSymlinks reaches the root through symlinks ($STATE a
// symlink, or the root itself) while a real bind mount is live inside it: the
// mount check must see it by the real path, refuse without Unmount, and with
// Unmount take it down and delete the real root, never what it showed.
func TestRemoveThroughSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// links are made in a fresh directory base (name -> target), the
		// real root is base/real/root, and Remove is given base/given.
		links [][2]string
		given string
	}{
		{
			name:  "symlinked state directory",
			links: [][2]string{{"state", "real"}},
			given: "state/root",
		},
		{
			name:  "absolute symlink to the state directory",
			links: [][2]string{{"state", "$BASE/real"}},
			given: "state/root",
		},
		{
			name:  "chain of symlinked parents",
			links: [][2]string{{"var", "lib"}, {"lib", "real"}},
			given: "var/root",
		},
		{
			name:  "the root itself a symlink",
			links: [][2]string{{"root", "real/root"}},
			given: "root",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep := newPrecious(t)
			base := realTempDir(t)
			real := newRootAt(t, filepath.Join(base, "real", "root"), true)
			for _, l := range tc.links {
				target := strings.ReplaceAll(l[1], "$BASE", base)
				if err := os.Symlink(target, filepath.Join(base, l[0])); err != nil {
					t.Fatal(err)
				}
			}
			given := filepath.Join(base, tc.given)
			bindMount(t, keep.dir, filepath.Join(real, "work"))

			err := (Remover{}).Remove(given)
			t.Logf("Remove without Unmount: %v", err)
			if !errors.Is(err, ErrLiveMounts) {
				t.Errorf("Remove(%s) without Unmount: got %v, want ErrLiveMounts", given, err)
			} else if msg := err.Error(); !strings.Contains(msg, given) || !strings.Contains(msg, real) {
				t.Errorf("the error should name both %s and %s: %v", given, real, err)
			}
			keep.check(t)
			if t.Failed() {
				return
			}
			assertIntact(t, real)

			if err := (Remover{Unmount: unmountNow}).Remove(given); err != nil {
				t.Fatalf("Remove(%s): %v", given, err)
			}
			assertGone(t, real)
			keep.check(t)
		})
	}
}

// TestRemoveNeverCrossesMounts makes the unmount step ineffective (an Unmount
// that does nothing and a mount table that shows no mounts) while real mounts
// are live inside the root: the delete itself must notice each one, leave it
// intact and fail naming it.
func TestRemoveNeverCrossesMounts(t *testing.T) {
	lyingTable := newFakeMounts(t).path // only "/"
	for _, tc := range []struct {
		name string
		// mount puts something precious on a mount inside root and returns
		// the mount point, the check of what it shows and, to mount while
		// the walk runs, a Remover.beforeEnter.
		mount func(t *testing.T, root string) (point string, check func(*testing.T), beforeEnter func(string))
	}{
		{
			name: "bind mount of the same file system (same device, other mount)",
			mount: func(t *testing.T, root string) (string, func(*testing.T), func(string)) {
				keep := newPrecious(t)
				point := filepath.Join(root, "work")
				bindMount(t, keep.dir, point)
				return point, keep.check, nil
			},
		},
		{
			name: "bind mount deep down",
			mount: func(t *testing.T, root string) (string, func(*testing.T), func(string)) {
				keep := newPrecious(t)
				point := filepath.Join(root, "usr", "share", "go")
				mkdirAll(t, point)
				bindMount(t, keep.dir, point)
				return point, keep.check, nil
			},
		},
		{
			name: "tmpfs (another device)",
			mount: func(t *testing.T, root string) (string, func(*testing.T), func(string)) {
				point := filepath.Join(root, "tmp")
				mkdirAll(t, point)
				mustMount(t, "tmpfs", point, "tmpfs", 0)
				keep := precious{dir: point, file: filepath.Join(point, "keep.txt")}
				if err := os.WriteFile(keep.file, []byte(preciousText), 0o644); err != nil {
					t.Fatal(err)
				}
				return point, keep.check, nil
			},
		},
		{
			name: "bind mount of a file",
			mount: func(t *testing.T, root string) (string, func(*testing.T), func(string)) {
				keep := newPrecious(t)
				point := filepath.Join(root, "etc", "resolv.conf")
				mkdirAll(t, filepath.Dir(point))
				if err := os.WriteFile(point, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				bindMount(t, keep.file, point)
				return point, keep.check, nil
			},
		},
		{
			name: "the root itself a mount point (of another marked tree)",
			mount: func(t *testing.T, root string) (string, func(*testing.T), func(string)) {
				keep := newPrecious(t)
				if err := os.WriteFile(filepath.Join(keep.dir, Marker), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				bindMount(t, keep.dir, root)
				return root, keep.check, nil
			},
		},
		{
			name: "mounted after the walk looked at it",
			mount: func(t *testing.T, root string) (string, func(*testing.T), func(string)) {
				keep := newPrecious(t)
				point := filepath.Join(root, "work")
				// Once the walk has stat'ed the directory and is about to
				// open it.
				mountLate := func(path string) {
					if path == point {
						bindMount(t, keep.dir, point)
					}
				}
				return point, keep.check, mountLate
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to mount (tools/bazel test runs it as root)")
			}
			root := newRoot(t, true)
			point, check, beforeEnter := tc.mount(t, root)
			r := Remover{MountInfo: lyingTable, Unmount: func(string) error { return nil }, beforeEnter: beforeEnter}

			err := r.Remove(root)
			t.Logf("Remove: %v", err)
			if !errors.Is(err, ErrOtherMount) || !strings.Contains(err.Error(), point) {
				t.Errorf("Remove: got %v, want ErrOtherMount naming %s", err, point)
			}
			check(t)
			if _, err := os.Lstat(filepath.Join(root, Marker)); err != nil {
				t.Errorf("the Marker must stay until the root is gone, so that it can be removed again: %v", err)
			}
		})
	}
}

// mkdirAll is os.MkdirAll or a fatal error.
func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveTakesMountLock holds tools/enter's mount lock, from another
// process (flock(1), as tools/enter takes it) or another file description of
// this one, while Remove runs: Remove must wait until the holder is done and
// hold the lock itself while it unmounts, or give up after LockWait having
// changed nothing.
func TestRemoveTakesMountLock(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hold     func(t *testing.T, lock string, release time.Duration) (done func() bool)
		lockPath string        // "" for the default, next to the root
		wait     time.Duration // Remover.LockWait
		release  time.Duration // when the holder lets go; 0: never
		wantErr  error
	}{
		{name: "waits for flock(1) in another process", hold: holdWithFlockCommand, release: 300 * time.Millisecond},
		{name: "waits for another file description", hold: holdInProcess, release: 300 * time.Millisecond},
		{name: "waits for a lock at LockPath", hold: holdInProcess, lockPath: "elsewhere/my.lock", release: 300 * time.Millisecond},
		{name: "gives up after LockWait", hold: holdInProcess, wait: 200 * time.Millisecond, wantErr: ErrLockBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t, true)
			lock := filepath.Join(filepath.Dir(root), LockName)
			if tc.lockPath != "" {
				lock = filepath.Join(filepath.Dir(root), tc.lockPath)
				mkdirAll(t, filepath.Dir(lock))
			}
			r := Remover{LockWait: tc.wait}
			if tc.lockPath != "" {
				r.LockPath = lock
			}
			holderDone := tc.hold(t, lock, tc.release)

			fm := newFakeMounts(t, root+"/work")
			unmounted, heldWhileUnmounting, doneBeforeUnmounting := false, false, false
			r.MountInfo = fm.path
			r.Unmount = func(p string) error {
				unmounted, heldWhileUnmounting, doneBeforeUnmounting = true, isLocked(t, lock), holderDone()
				return fm.unmount(p)
			}
			start := time.Now()
			err := r.Remove(root)
			took := time.Since(start)
			t.Logf("Remove after %s: %v", took, err)

			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Remove after %s: got %v, want %v", took, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if !strings.Contains(err.Error(), lock) {
					t.Errorf("the error should name the lock %s: %v", lock, err)
				}
				if took > 10*time.Second {
					t.Errorf("gave up after %s, LockWait is %s", took, tc.wait)
				}
				if unmounted {
					t.Error("unmounted without the lock")
				}
				assertIntact(t, root)
				return
			}
			if !doneBeforeUnmounting {
				t.Errorf("Remove unmounted after %s, while the holder still had the lock (it lets go after %s)", took, tc.release)
			}
			if !heldWhileUnmounting {
				t.Error("Remove did not hold the mount lock while it unmounted")
			}
			assertGone(t, root)
		})
	}
}

// holdInProcess flocks lock from another file description of this process,
// as tools/enter's `exec 9>"$STATE/mount.lock"; flock 9` does, and after
// release (never when 0) marks itself done and lets go.
func holdInProcess(t *testing.T, lock string, release time.Duration) (done func() bool) {
	t.Helper()
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var finished atomic.Bool
	if release > 0 {
		time.AfterFunc(release, func() {
			finished.Store(true)
			_ = f.Close()
		})
	}
	return finished.Load
}

// holdWithFlockCommand runs flock(1) (util-linux, as tools/enter uses it) in
// another process that holds lock for release and writes a file just before it
// lets go; done tells whether that file is there.
func holdWithFlockCommand(t *testing.T, lock string, release time.Duration) (done func() bool) {
	t.Helper()
	mark := filepath.Join(t.TempDir(), "done")
	cmd := exec.Command("flock", "--exclusive", lock, "sh", "-c", `sleep "$1" && : >"$2"`, "sh",
		strconv.FormatFloat(release.Seconds(), 'f', 3, 64), mark)
	if err := cmd.Start(); err != nil {
		t.Fatalf("running flock(1), which util-linux ships: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); !isLocked(t, lock); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the lock within 10s")
		}
	}
	return func() bool {
		_, err := os.Stat(mark)
		return err == nil
	}
}

// isLocked tells whether another file description holds a flock on path.
func isLocked(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Error(err)
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return false
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		t.Error(err)
	}
	return true
}

// TestRemoveSymlinksInside puts symlinks that point outside into the root:
// each must be removed itself, its target left alone.
func TestRemoveSymlinksInside(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plant makes the link(s) in root, pointing into the directory
		// outside (which holds keep.txt and sub/).
		plant       func(t *testing.T, root, outside string)
		beforeEnter func(t *testing.T, root, outside string) func(string)
		wantErr     error
	}{
		{
			name:  "absolute link to a directory outside",
			plant: func(t *testing.T, root, outside string) { symlink(t, outside, root, "work", "out") },
		},
		{
			name: "relative link to a directory outside",
			plant: func(t *testing.T, root, outside string) {
				rel, err := filepath.Rel(filepath.Join(root, "work"), outside)
				if err != nil {
					t.Fatal(err)
				}
				symlink(t, rel, root, "work", "out")
			},
		},
		{
			name: "link to a file outside",
			plant: func(t *testing.T, root, outside string) {
				symlink(t, filepath.Join(outside, "keep.txt"), root, "etc", "keep.txt")
			},
		},
		{
			name:  "link to a directory outside as the root's only entry but the Marker",
			plant: func(t *testing.T, root, outside string) { symlink(t, outside, root, "sub") },
		},
		{
			name:  "dangling link",
			plant: func(t *testing.T, root, outside string) { symlink(t, filepath.Join(outside, "nothing"), root, "gone") },
		},
		{
			name: "directory swapped for a link outside mid-walk",
			plant: func(t *testing.T, root, outside string) {
				mkdirAll(t, filepath.Join(root, "work", "sub"))
			},
			beforeEnter: func(t *testing.T, root, outside string) func(string) {
				return func(path string) {
					if path != filepath.Join(root, "work", "sub") {
						return
					}
					if err := os.Remove(path); err != nil {
						t.Error(err)
					}
					if err := os.Symlink(outside, path); err != nil {
						t.Error(err)
					}
				}
			},
		},
		{
			name: "the Marker a link to another root's Marker",
			plant: func(t *testing.T, root, outside string) {
				if err := os.Remove(filepath.Join(root, Marker)); err != nil {
					t.Fatal(err)
				}
				other := newRootAt(t, filepath.Join(filepath.Dir(root), "other"), true)
				symlink(t, filepath.Join(other, Marker), root, Marker)
			},
			wantErr: ErrNotARoot,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t, true)
			keep := newPrecious(t)
			mkdirAll(t, filepath.Join(keep.dir, "sub"))
			tc.plant(t, root, keep.dir)
			r := Remover{MountInfo: newFakeMounts(t).path}
			if tc.beforeEnter != nil {
				r.beforeEnter = tc.beforeEnter(t, root, keep.dir)
			}

			err := r.Remove(root)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Remove: got %v, want %v", err, tc.wantErr)
			}
			keep.check(t)
			if _, err := os.Stat(filepath.Join(keep.dir, "sub")); err != nil {
				t.Errorf("a directory outside the root was removed: %v", err)
			}
			if tc.wantErr != nil {
				assertIntact(t, root)
				return
			}
			assertGone(t, root)
		})
	}
}

// symlink makes root/elem... a symlink to target, with its parents.
func symlink(t *testing.T, target, root string, elem ...string) {
	t.Helper()
	link := filepath.Join(append([]string{root}, elem...)...)
	mkdirAll(t, filepath.Dir(link))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
