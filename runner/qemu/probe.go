package qemu

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/internal/atomicfile"
)

// Capabilities is what a QEMU binary offers, as read from its help output.
type Capabilities struct {
	// Version is the first line of `qemu --version`.
	Version string
	// Machines are the machine type names (and aliases) it knows.
	Machines map[string]bool
	// Devices are the -device names it knows.
	Devices map[string]bool
	// Objects are the -object type names it knows.
	Objects map[string]bool
}

// Requirements returns the machine, devices and objects a Spec on arch a
// with machine type machine ("" = profile default) needs.
func Requirements(a arch.Arch, machine string) (machines, devices, objects []string, err error) {
	return SpecRequirements(Spec{Arch: a, Machine: machine, VhostUserSocket: "-"})
}

// SpecRequirements returns the machine, devices and objects s needs.
func SpecRequirements(s Spec) (machines, devices, objects []string, err error) {
	p, err := ProfileFor(s.Arch)
	if err != nil {
		return nil, nil, nil, err
	}
	machine, err := s.MachineType()
	if err != nil {
		return nil, nil, nil, err
	}
	machines = []string{machineBase(machine)}
	if s.VhostUserSocket != "" {
		devices = append(devices, p.VsockDeviceFor(machine))
	}
	if PCIMachines[machineBase(machine)] {
		devices = append(devices, "pvpanic-pci")
	}
	if s.IOMMU && p.IOMMU.Device != "" {
		d, _, _ := strings.Cut(p.IOMMU.Device, ",")
		devices = append(devices, d)
	}
	for _, n := range append([]NIC{s.MgmtNIC}, s.NICs...) {
		if d := NICDevices[n.Model]; n.Model != "" && !slices.Contains(devices, d) {
			devices = append(devices, d)
		}
	}
	objects = []string{"memory-backend-memfd"}
	if s.HostPages == HostPages2M || s.HostPages == HostPages1G {
		objects = []string{"memory-backend-file"}
	}
	return machines, devices, objects, nil
}

// Check reports, wrapping ErrMissingFeature, the first requirement of
// (a, machine) that c lacks.
func (c Capabilities) Check(a arch.Arch, machine string) error {
	return c.CheckSpec(Spec{Arch: a, Machine: machine, VhostUserSocket: "-"})
}

// CheckSpec reports, wrapping ErrMissingFeature, the first requirement of s
// that c lacks.
func (c Capabilities) CheckSpec(s Spec) error {
	ms, ds, os, err := SpecRequirements(s)
	if err != nil {
		return err
	}
	for _, list := range []struct {
		kind string
		want []string
		have map[string]bool
		how  string
	}{{"machine type", ms, c.Machines, "-machine help"}, {"device", ds, c.Devices, "-device help"}, {"object", os, c.Objects, "-object help"}} {
		for _, w := range list.want {
			if !list.have[w] {
				return fmt.Errorf("%w: %s %q not in `%s` of %s", ErrMissingFeature, list.kind, w, list.how, c.Version)
			}
		}
	}
	return nil
}

// Probe runs binary with --version, -machine help, -device help and -object
// help and parses the answers.
func Probe(ctx context.Context, binary string) (Capabilities, error) {
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, binary, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s %s: %w: %s", binary, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return out.Bytes(), nil
	}
	type answer struct {
		out []byte
		err error
	}
	queries := [][]string{{"--version"}, {"-machine", "help"}, {"-device", "help"}, {"-object", "help"}}
	answers := make([]chan answer, len(queries))
	for i, q := range queries {
		answers[i] = make(chan answer, 1)
		go func() {
			out, err := run(q...)
			answers[i] <- answer{out, err}
		}()
	}
	var outs [][]byte
	var firstErr error
	for _, ch := range answers {
		a := <-ch
		if a.err != nil && firstErr == nil {
			firstErr = a.err
		}
		outs = append(outs, a.out)
	}
	if firstErr != nil {
		return Capabilities{}, firstErr
	}
	return ParseCapabilities(outs[0], outs[1], outs[2], outs[3]), nil
}

var (
	deviceRE  = regexp.MustCompile(`^name "([^"]+)"`)
	machineRE = regexp.MustCompile(`^(\S+)\s+.*?(?:\(alias of (\S+)\))?$`)
)

// ParseCapabilities parses the outputs of --version, -machine help, -device
// help and -object help.
func ParseCapabilities(version, machines, devices, objects []byte) Capabilities {
	c := Capabilities{Machines: map[string]bool{}, Devices: map[string]bool{}, Objects: map[string]bool{}}
	c.Version, _, _ = strings.Cut(strings.TrimSpace(string(version)), "\n")
	lines := func(b []byte, f func(string)) {
		s := bufio.NewScanner(bytes.NewReader(b))
		for s.Scan() {
			f(s.Text())
		}
	}
	lines(machines, func(l string) {
		if strings.HasPrefix(l, "Supported machines") || strings.TrimSpace(l) == "" {
			return
		}
		if m := machineRE.FindStringSubmatch(l); m != nil {
			c.Machines[m[1]] = true
		}
	})
	lines(devices, func(l string) {
		if m := deviceRE.FindStringSubmatch(l); m != nil {
			c.Devices[m[1]] = true
		}
	})
	lines(objects, func(l string) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.Contains(l, " ") && !strings.HasSuffix(l, ":") {
			c.Objects[l] = true
		}
	})
	return c
}

// HostTSCkHz reads the host's TSC frequency in kHz from the "cpu MHz" line
// of cpuinfo (normally /proc/cpuinfo). It returns 0 and an error when there
// is none (non-x86 hosts).
func HostTSCkHz(cpuinfo string) (int, error) {
	b, err := os.ReadFile(cpuinfo)
	if err != nil {
		return 0, err
	}
	return ParseTSCkHz(b)
}

// ParseTSCkHz returns the first "cpu MHz" of cpuinfo contents, in kHz.
func ParseTSCkHz(cpuinfo []byte) (int, error) {
	s := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 {
			return 0, fmt.Errorf("cpuinfo: bad cpu MHz %q", strings.TrimSpace(v))
		}
		return int(mhz*1000 + 0.5), nil
	}
	return 0, fmt.Errorf("cpuinfo: no \"cpu MHz\" line")
}

// hostCPUKeys are the cpuinfo lines that make a host CPU model: x86's
// and arm64's.
var hostCPUKeys = map[string]bool{
	"vendor_id": true, "cpu family": true, "model": true, "stepping": true, "flags": true,
	"CPU implementer": true, "CPU architecture": true, "CPU variant": true, "CPU part": true, "CPU revision": true, "Features": true,
}

// HostCPUModel is the host CPU a KVM guest's -cpu host is, from cpuinfo
// (the path of /proc/cpuinfo): the first processor's vendor, family,
// model, stepping and flags (x86_64), or its implementer, architecture,
// variant, part, revision and features (arm64), one "key: value" line
// each, in cpuinfo's order. A KVM guest keeps the CPU it booted with, so a
// template made on another model must not be restored here.
func HostCPUModel(cpuinfo string) (string, error) {
	b, err := os.ReadFile(cpuinfo)
	if err != nil {
		return "", err
	}
	return ParseHostCPUModel(b)
}

// ParseHostCPUModel is HostCPUModel of cpuinfo contents.
func ParseHostCPUModel(cpuinfo []byte) (string, error) {
	var model strings.Builder
	s := bufio.NewScanner(bytes.NewReader(cpuinfo))
	s.Buffer(nil, 1<<20) // x86 flags lines are long
	for s.Scan() {
		line := s.Text()
		if strings.TrimSpace(line) == "" && model.Len() > 0 {
			break // the first processor's block is enough
		}
		k, v, ok := strings.Cut(line, ":")
		if k = strings.TrimSpace(k); ok && hostCPUKeys[k] {
			fmt.Fprintf(&model, "%s: %s\n", k, strings.Join(strings.Fields(v), " "))
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("cpuinfo: %w", err)
	}
	if model.Len() == 0 {
		return "", fmt.Errorf("cpuinfo: none of the lines that name a CPU model (vendor_id, flags, CPU part, Features, ...)")
	}
	return model.String(), nil
}

// ProbeCached is Probe with the answer cached in cacheDir, keyed by the
// binary's path, size and modification time (a QEMU upgrade changes them).
func ProbeCached(ctx context.Context, binary, cacheDir string) (Capabilities, error) {
	fi, err := os.Stat(binary)
	if err != nil {
		return Capabilities{}, err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d", binary, fi.Size(), fi.ModTime().UnixNano())))
	file := filepath.Join(cacheDir, hex.EncodeToString(sum[:12])+".json")
	if b, err := os.ReadFile(file); err == nil {
		var c Capabilities
		if json.Unmarshal(b, &c) == nil && c.Version != "" {
			return c, nil
		}
	}
	c, err := Probe(ctx, binary)
	if err != nil {
		return c, err
	}
	if b, err := json.Marshal(c); err == nil && os.MkdirAll(cacheDir, 0o755) == nil {
		_ = atomicfile.WriteFile(file, b, 0o644) // a cache: recomputed when it cannot be written
	}
	return c, nil
}
