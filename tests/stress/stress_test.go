//go:build bazel

// Package stress checks that the runner leaks nothing and collides with
// nothing: invm runs killed at random points (SIGTERM, SIGINT, SIGKILL)
// leave no process, socket or temp file behind, and 8 concurrent VMs on this
// machine all pass, repeatedly.
//
// It drives the invm binary, a static payload, the guest init and the
// default x86_64 kernel from its runfiles (see BUILD.bazel); outside Bazel
// set STRESS_INVM, STRESS_PAYLOAD, STRESS_INIT and STRESS_KERNEL.
// STRESS_RUNS (default 50) and STRESS_ROUNDS (default 2) size it.
package stress

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
)

type files struct{ invm, payload, init, kernel, cache string }

func setup(t *testing.T) files {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set: run with tools/bazel test //tests/stress:stress_test", name)
		}
		if filepath.IsAbs(v) {
			return v
		}
		// A $(rootpath): relative to the workspace's runfiles (as in
		// tools/lint's runfile).
		return filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"), v)
	}
	f := files{invm: get("STRESS_INVM"), payload: get("STRESS_PAYLOAD"), init: get("STRESS_INIT"), kernel: get("STRESS_KERNEL")}
	// The accelerator canary's verdict and the base layer are cached here,
	// shared by all runs (not part of what a run may leave behind).
	f.cache = os.Getenv("RULES_GO_VM_CACHE")
	if f.cache == "" {
		f.cache = t.TempDir()
	}
	// One full run first: it fills the cache (the KVM canary takes seconds),
	// so the killed runs below are killed in boot, test or power-off.
	if out, err := f.command(t.TempDir()).CombinedOutput(); err != nil {
		t.Fatalf("warm-up run: %v\n%s", err, out)
	}
	return f
}

// command returns an invm command whose temporary files all go below tmp.
func (f files) command(tmp string) *exec.Cmd {
	cmd := exec.Command(f.invm, "-kernel", f.kernel, "-init", f.init, "-cache-dir", f.cache,
		"-testdata", "none", "-timeout", "3m", "--", f.payload)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	return cmd
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// holders returns the processes whose command line mentions marker.
func holders(marker string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		found = append(found, filepath.Base(filepath.Dir(p))+" "+strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " "))
	}
	return found
}

// leftovers lists what is in tmp.
func leftovers(t *testing.T, tmp string) []string {
	var out []string
	_ = filepath.Walk(tmp, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != tmp {
			out = append(out, strings.TrimPrefix(p, tmp+"/"))
		}
		return nil
	})
	return out
}

func TestKilledRunnersLeakNothing(t *testing.T) {
	f := setup(t)
	runs := envInt("STRESS_RUNS", 50)
	sigs := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	counts := map[string]int{}
	for i := range runs {
		sig := sigs[i%len(sigs)]
		// Kill anywhere from startup through boot, test and power-off
		// (a boot takes about 2-4 s here), sometimes after the end.
		delay := time.Duration(rng.Int64N(int64(5 * time.Second)))
		tmp := t.TempDir()
		cmd := f.command(tmp)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		finished := false
		select {
		case err = <-done:
			finished = true
		case <-time.After(delay):
			_ = cmd.Process.Signal(sig)
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("run %d: invm did not exit within 30 s of %v\n%s", i, sig, out.String())
				continue
			}
		}
		what := fmt.Sprintf("run %d (%v after %v)", i, sig, delay.Round(time.Millisecond))
		if finished {
			what = fmt.Sprintf("run %d (finished before its %v)", i, sig)
			counts["finished"]++
			if err != nil {
				t.Errorf("%s: an unkilled run failed: %v\n%s", what, err, out.String())
			}
		} else {
			counts[sig.String()]++
		}

		// No process of the run (QEMU, the vsock daemon) may outlive it.
		deadline := time.Now().Add(10 * time.Second)
		for len(holders(tmp)) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if h := holders(tmp); len(h) > 0 {
			t.Errorf("%s: processes left behind: %q", what, h)
			for _, line := range h {
				if pid, err := strconv.Atoi(strings.Fields(line)[0]); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		// Nothing left in TMPDIR, except after SIGKILL: the state directory
		// with its lock free, which the next runner removes.
		left := leftovers(t, tmp)
		if !finished && sig == syscall.SIGKILL && len(left) > 0 {
			removed, err := runner.CleanStale(tmp, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(removed) == 0 {
				t.Errorf("%s: %q left in TMPDIR and not removable as stale", what, left)
			}
			left = leftovers(t, tmp)
		}
		if len(left) > 0 {
			t.Errorf("%s: left in TMPDIR: %q\n%s", what, left, out.String())
		}
	}
	t.Logf("%d runs: %v", runs, counts)
}

func TestParallelVMs(t *testing.T) {
	f := setup(t)
	const vms = 8
	rounds := envInt("STRESS_ROUNDS", 2)
	for r := range rounds {
		var wg sync.WaitGroup
		errs := make([]string, vms)
		for i := range vms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				tmp := t.TempDir()
				cmd := f.command(tmp)
				cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
				cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
				out, err := cmd.CombinedOutput()
				switch {
				case err != nil:
					errs[i] = fmt.Sprintf("VM %d: %v\n%s", i, err, out)
				case !bytes.Contains(out, []byte("stress payload ran")):
					errs[i] = fmt.Sprintf("VM %d: passed without the payload's output\n%s", i, out)
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Errorf("round %d: %s", r, e)
			}
		}
	}
}
