package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StatePrefix starts the name of every temporary state directory the runner
// makes (in os.TempDir() unless Options.StateDir is given).
const StatePrefix = "invm-"

// stateLock is the file in a state directory its runner holds locked while
// it runs; the lock goes with the runner's process, however it ends.
const stateLock = ".lock"

// staleGrace keeps CleanStale off directories so new that their runner may
// not have taken the lock yet.
const staleGrace = 30 * time.Second

// newStateDir makes a temporary state directory in dir and locks it; the
// returned function unlocks and removes it.
func newStateDir(dir string) (string, func(), error) {
	state, err := os.MkdirTemp(dir, StatePrefix)
	if err != nil {
		return "", nil, err
	}
	unlock, err := lockDir(filepath.Join(state, stateLock))
	if err != nil {
		os.RemoveAll(state)
		return "", nil, err
	}
	return state, func() {
		unlock()
		os.RemoveAll(state)
	}, nil
}

// CleanStale removes the temporary state directories in dir that runners
// killed with SIGKILL left behind (their sockets, initrd and console log):
// those whose lock nobody holds, older than a short grace. It returns the
// directories removed. Live runners' directories are never touched.
func CleanStale(dir string, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("stale state in %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), StatePrefix) {
			continue
		}
		state := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < staleGrace {
			continue
		}
		if !lockFree(filepath.Join(state, stateLock)) {
			continue
		}
		if err := os.RemoveAll(state); err == nil {
			removed = append(removed, state)
		}
	}
	return removed, nil
}
