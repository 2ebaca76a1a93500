// Command bootprof shows where a guest kernel spends its boot under TCG: it
// boots the kernel the way the runner does (qemu.Args, no vsock device, so
// the guest init stops at its connect), samples the vCPU's program counter
// over QMP (runner/vmm, `info registers`) every -interval,
// and prints the functions most often seen (symbols from the kernel ELF) and
// a timeline of the top functions per -bucket.
//
//	go run ./runner/cmd/bootprof -kernel .../vmlinux -initrd initrd.cpio
//
// The initrd of a real run is kept with `invm -state-dir DIR`. A sampler
// only sees the PC where the vCPU last stopped (QEMU updates it at
// translation-block boundaries), so read shares, not exact times. aarch64
// needs -symbols (an Image has none).
package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bootprof:", err)
		os.Exit(1)
	}
}

// Defaults of the sampling flags.
const (
	defaultDuration = 2 * time.Second
	defaultInterval = 2 * time.Millisecond
	defaultBucket   = 100 * time.Millisecond
)

// monitorSlack is how much longer than the sampling the monitor's work
// (attaching, the last query) may take.
const monitorSlack = 5 * time.Second

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bootprof", flag.ContinueOnError)
	var (
		archName = fs.String("arch", "x86_64", "guest arch: x86_64 or aarch64")
		kernel   = fs.String("kernel", "", "guest kernel image (required)")
		symbols  = fs.String("symbols", "", "ELF with the kernel's symbols (default: -kernel, if it is an ELF)")
		initrd   = fs.String("initrd", "", "initramfs to boot with (e.g. from invm -state-dir)")
		appendS  = fs.String("append", "", "extra kernel command line parameters")
		qemuBin  = fs.String("qemu", "", "QEMU binary (default qemu-system-<arch> on PATH)")
		duration = fs.Duration("duration", defaultDuration, "how long to sample")
		interval = fs.Duration("interval", defaultInterval, "pause between samples")
		top      = fs.Int("top", 25, "functions listed")
		bucket   = fs.Duration("bucket", defaultBucket, "timeline bucket (0: no timeline)")
		memory   = fs.Int("memory", 256, "guest RAM in MiB")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kernel == "" {
		return errors.New("-kernel is required")
	}
	if *symbols == "" {
		*symbols = *kernel
	}
	syms, err := readSymbols(*symbols)
	if err != nil {
		return fmt.Errorf("-symbols: %w (pass the kernel's vmlinux with -symbols)", err)
	}
	p, err := qemu.ProfileFor(arch.Arch(*archName))
	if err != nil {
		return fmt.Errorf("-arch: %w", err)
	}
	dir, err := os.MkdirTemp("", "bootprof-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	spec := qemu.Spec{Arch: arch.Arch(*archName), Accel: qemu.AccelTCG, Kernel: *kernel, Initrd: *initrd, MemoryMiB: *memory, CPUs: 1,
		QMPSocket: filepath.Join(dir, "qmp.sock"), Quiet: true, ExtraCmdline: strings.Fields(*appendS)}
	if p.TSCEarly {
		spec.TSCkHz, _ = qemu.HostTSCkHz("/proc/cpuinfo")
	}
	qargs, err := qemu.Args(spec)
	if err != nil {
		return err
	}
	bin := *qemuBin
	if bin == "" {
		bin = p.Binary
	}
	var console bytes.Buffer
	cmd := exec.Command(bin, qargs...)
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	// As the runner starts QEMU: it dies with bootprof, even a killed one.
	vm, err := proc.Start(cmd)
	if err != nil {
		return err
	}
	defer vm.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), *duration+monitorSlack)
	defer cancel()
	mon, err := vmm.QEMU{}.Attach(ctx, spec.QMPSocket, vm.Done())
	if err != nil {
		return fmt.Errorf("%w; console: %s", err, console.String())
	}
	defer mon.Close()
	var samples []sample
	for time.Since(start) < *duration {
		pc, err := programCounter(ctx, mon.(*vmm.QMP))
		if err != nil {
			break // QEMU exited (the guest reset or powered off)
		}
		samples = append(samples, sample{at: time.Since(start), fn: syms.name(pc)})
		time.Sleep(*interval)
	}
	report(out, samples, *top, *bucket)
	return nil
}

var pcRE = regexp.MustCompile(`\b(?:RIP|EIP|PC)=([0-9a-fA-F]+)`)

// programCounter asks QEMU for the first vCPU's registers and returns its
// program counter.
func programCounter(ctx context.Context, mon *vmm.QMP) (uint64, error) {
	regs, err := mon.HumanMonitor(ctx, "info registers")
	if err != nil {
		return 0, err
	}
	return parsePC(regs)
}

// parsePC finds the program counter in `info registers` output (x86: RIP=,
// or EIP= while the firmware or the PVH entry runs in 32-bit mode; aarch64:
// PC=).
func parsePC(regs string) (uint64, error) {
	m := pcRE.FindStringSubmatch(regs)
	if m == nil {
		return 0, errors.New("no RIP=, EIP= or PC= in info registers")
	}
	return strconv.ParseUint(m[1], 16, 64)
}

// symtab maps addresses to the function containing them.
type symtab struct {
	addrs []uint64
	names []string
}

func readSymbols(path string) (symtab, error) {
	f, err := elf.Open(path)
	if err != nil {
		return symtab{}, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return symtab{}, err
	}
	var fns []elf.Symbol
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			fns = append(fns, s)
		}
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].Value < fns[j].Value })
	var t symtab
	for _, s := range fns {
		t.addrs, t.names = append(t.addrs, s.Value), append(t.names, s.Name)
	}
	return t, nil
}

// name returns the function containing pc: "user/firmware" for the lower
// half (user space, the firmware, the kernel's 32-bit entry), the address
// itself when no symbol covers it.
func (t symtab) name(pc uint64) string {
	if pc < 1<<47 {
		return "user/firmware"
	}
	i := sort.Search(len(t.addrs), func(i int) bool { return t.addrs[i] > pc }) - 1
	if i < 0 {
		return fmt.Sprintf("%#x", pc)
	}
	return t.names[i]
}

type sample struct {
	at time.Duration
	fn string
}

// report prints the top functions by sample count and, per bucket, the
// three functions seen most.
func report(w io.Writer, samples []sample, top int, bucket time.Duration) {
	fmt.Fprintf(w, "%d samples\n", len(samples))
	for i, c := range counts(samples) {
		if i == top {
			break
		}
		fmt.Fprintf(w, "%5d %5.1f%%  %s\n", c.n, 100*float64(c.n)/float64(len(samples)), c.fn)
	}
	if bucket <= 0 {
		return
	}
	fmt.Fprintln(w, "timeline (bucket start: samples, top functions)")
	for len(samples) > 0 {
		b := samples[0].at / bucket
		n := 0
		for n < len(samples) && samples[n].at/bucket == b {
			n++
		}
		var top3 []string
		for i, c := range counts(samples[:n]) {
			if i == 3 {
				break
			}
			top3 = append(top3, fmt.Sprintf("%s %d", c.fn, c.n))
		}
		fmt.Fprintf(w, "%6.2fs %3d  %s\n", (b * bucket).Seconds(), n, strings.Join(top3, ", "))
		samples = samples[n:]
	}
}

type count struct {
	fn string
	n  int
}

// counts returns the functions of samples by descending count, then name.
func counts(samples []sample) []count {
	m := map[string]int{}
	for _, s := range samples {
		m[s.fn]++
	}
	var cs []count
	for fn, n := range m {
		cs = append(cs, count{fn, n})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].n != cs[j].n {
			return cs[i].n > cs[j].n
		}
		return cs[i].fn < cs[j].fn
	})
	return cs
}
