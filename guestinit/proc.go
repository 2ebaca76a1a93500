package guestinit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// pfKthread is the PF_KTHREAD bit of the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// Process is one entry of the process table.
type Process struct {
	// PID is the process ID.
	PID int
	// PPID is the parent's process ID.
	PPID int
	// State is the one-letter state ('R', 'S', 'Z', ...).
	State byte
	// Comm is the command name from stat.
	Comm string
	// Cmdline is the argument vector (empty for kernel threads and zombies).
	Cmdline []string
	// Kthread is true for kernel threads.
	Kthread bool
}

// String names p for humans: "PID cmdline" or "PID [comm]".
func (p Process) String() string {
	if len(p.Cmdline) > 0 {
		return fmt.Sprintf("%d %s", p.PID, strings.Join(p.Cmdline, " "))
	}
	return fmt.Sprintf("%d [%s]", p.PID, p.Comm)
}

// ProcTable reads processes from a proc filesystem mounted at Root
// ("/proc" in the guest, a fake tree in tests).
type ProcTable struct {
	// Root is the proc mount point.
	Root string
}

// List returns all processes sorted by PID. Processes vanishing during the
// scan are skipped.
func (t ProcTable) List() ([]Process, error) {
	ents, err := os.ReadDir(t.Root)
	if err != nil {
		return nil, fmt.Errorf("read process table: %w", err)
	}
	var ps []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		p, err := t.read(pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].PID < ps[j].PID })
	return ps, nil
}

func (t ProcTable) read(pid int) (Process, error) {
	dir := filepath.Join(t.Root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Process{}, err
	}
	p, err := parseStat(stat)
	if err != nil {
		return Process{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		for _, a := range bytes.Split(bytes.TrimRight(cmd, "\x00"), []byte{0}) {
			if len(a) > 0 || len(p.Cmdline) > 0 {
				p.Cmdline = append(p.Cmdline, string(a))
			}
		}
	}
	return p, nil
}

// parseStat parses the fields of /proc/PID/stat that Process needs. The
// command name is in parentheses and may itself contain ") ".
func parseStat(b []byte) (Process, error) {
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return Process{}, errors.New("malformed stat: no (comm)")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Process{}, fmt.Errorf("malformed stat pid: %w", err)
	}
	// After "(comm)": state ppid pgrp session tty_nr tpgid flags ...
	f := strings.Fields(s[close+1:])
	if len(f) < 7 || len(f[0]) != 1 {
		return Process{}, fmt.Errorf("malformed stat: %d fields after comm", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Process{}, fmt.Errorf("malformed stat ppid: %w", err)
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return Process{}, fmt.Errorf("malformed stat flags: %w", err)
	}
	return Process{PID: pid, PPID: ppid, State: f[0][0], Comm: s[open+1 : close], Kthread: flags&pfKthread != 0}, nil
}

// Descendants returns the live (non-zombie, non-kernel-thread) processes
// whose ancestry reaches pid, excluding pid itself. In the guest, with pid
// 1, that is every user process but init; on a host test with a child
// subreaper it is what the test spawned.
func (t ProcTable) Descendants(pid int) ([]Process, error) {
	ps, err := t.List()
	if err != nil {
		return nil, err
	}
	parent := map[int]int{}
	for _, p := range ps {
		parent[p.PID] = p.PPID
	}
	var out []Process
	for _, p := range ps {
		if p.PID == pid || p.Kthread || p.State == 'Z' || p.State == 'X' {
			continue
		}
		for a, hops := p.PPID, 0; a > 0 && hops < len(ps); a, hops = parent[a], hops+1 {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out, nil
}
