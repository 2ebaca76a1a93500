//go:build !linux

package runner

// lockDir is a no-op where the runner does not run guests.
func lockDir(string) (func(), error) { return func() {}, nil }

// lockFree reports false: without locks no directory is known to be stale.
func lockFree(string) bool { return false }
