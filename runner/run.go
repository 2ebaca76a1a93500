package runner

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// Result is the outcome of a run.
type Result struct {
	// Pass is true only for a well-formed session with a passing verdict.
	Pass bool
	// Verdict is the guest's verdict, nil when none was received.
	Verdict *protocol.Verdict
	// Reason explains a failure in one line.
	Reason string
	// Arch, Kernel, QEMU and Accel say what ran; AccelReason why that
	// accelerator.
	Arch                arch.Arch
	Kernel, QEMU, Accel string
	AccelReason         string
	// CommandLine reproduces the run: the vsock daemon's command, then
	// QEMU's (the state directory's initrd is gone after the run unless
	// Options.StateDir was given).
	CommandLine string
	// ConsoleTail is the end of the guest console.
	ConsoleTail string
	// QEMUStderr is QEMU's own error output.
	QEMUStderr string
	// Boot is QEMU start → guest connected; VM is QEMU start → QEMU exit
	// (boot, test, verdict, power-off); Total is the whole run.
	Boot, VM, Total time.Duration
	// Transport is the transport used and TransportReason why.
	Transport, TransportReason string
	// VerdictAt is when the verdict reached the host (zero if none).
	VerdictAt time.Time
	// AfterVerdict is verdict → QEMU exit: the Ack, the guest's unmounts
	// and power-off (zero without a verdict or a QEMU exit).
	AfterVerdict time.Duration
	// Translations is the number of TCG translation blocks when the verdict
	// arrived (Options.CountTranslations; 0 when not counted).
	Translations int64
	// Start is how the guest started, StartCold or StartSnapshot (restored
	// from Template), and StartReason why.
	Start, StartReason, Template string
}

// Timings describes how long each phase of the run took, in one line:
// the host's view (boot = QEMU start → guest connected, VM = QEMU start →
// exit, after verdict = verdict → QEMU exit, total = the whole Run) and the
// guest's own (kernel boot, init setup, test, teardown).
func (r Result) Timings() string {
	ms := func(d time.Duration) time.Duration { return d.Round(TimingsPrecision) }
	host := fmt.Sprintf("host boot %v, VM %v, after verdict %v, total %v", ms(r.Boot), ms(r.VM), ms(r.AfterVerdict), ms(r.Total))
	v := r.Verdict
	if v == nil {
		return host + "; no verdict"
	}
	g := v.Timings
	line := fmt.Sprintf("%s; guest kernel %v, setup %v, test %v, teardown %v; host overhead (total - guest clock) %v, outside the test (total - guest test) %v",
		host, ms(g.Boot), ms(g.Setup), ms(g.Test), ms(g.Teardown), ms(r.Total-g.Boot-g.Setup-g.Test-g.Teardown), ms(r.Total-g.Test))
	if r.Translations > 0 {
		line += fmt.Sprintf("; %d translation blocks at the verdict", r.Translations)
	}
	return line
}

// TimingsPrecision is what Result.Timings rounds durations to.
const TimingsPrecision = time.Millisecond

// ConsoleTailLines is how many console lines Result.ConsoleTail keeps.
const ConsoleTailLines = 40

// Run boots a guest, runs the test and returns its verdict. The error is
// non-nil for failures that are not the test's (see the sentinel errors);
// a failing test is a nil error with Result.Pass false.
//
// A run is five phases: plan (the options checked and resolved against the
// host: planOptions, findHost), prepare (state directory, initrd, the
// channel's host side and daemon: prepare), boot (the backend starts the VM:
// boot), session (the guest's streams until its verdict and power-off:
// vmSession.run) and collect (the verdict and timings into the Result:
// collectResult). Each phase fills in what it learnt in res as it goes, so a
// failed run still says how far it got. Whatever the phases made is
// released by the run's one teardown (teardown.go), on every return.
func Run(ctx context.Context, o Options) (res Result, err error) {
	o = o.WithDefaults()
	start := o.Now()
	defer func() { res.Total = o.Now().Sub(start) }()
	p, err := planOptions(o, start, &res)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	td, ctx, stop, err := newTeardown(ctx, o.Log)
	if err != nil {
		return res, err
	}
	defer stop()
	defer td.drain()
	if err := p.findHost(ctx, &res); err != nil {
		return res, err
	}
	pr, err := prepare(ctx, p, &res)
	td.setPrepared(pr)
	if err != nil {
		return res, err
	}
	if o.TemplateOut != "" {
		return res, nil // made in prepare: nothing to run
	}
	if pr.restore != nil {
		retry, err := runVM(ctx, p, pr, td, &res)
		if !retry {
			return res, err
		}
		// The guest never spoke, so its test never ran: boot it instead.
		fmt.Fprintf(o.Log, "invm: snapshot start failed before the guest spoke (%v); QEMU: %s; cold boot\n", err, tailLines(res.QEMUStderr, 5))
		res.Start, res.StartReason = StartCold, fmt.Sprintf("%s, but the restore failed: %v", p.startup.reason, err)
		if err := pr.coldFallback(p); err != nil {
			return res, err
		}
	}
	_, err = runVM(ctx, p, pr, td, &res)
	return res, err
}

// runVM boots (or restores) the prepared VM, registered with the run's
// teardown, runs the session and collects its result. retry is true when a
// restore failed before the guest spoke (the test never started): the
// restored VM is halted then, and a cold boot may follow.
func runVM(ctx context.Context, p *runPlan, pr *prepared, td *teardown, res *Result) (retry bool, err error) {
	restoring := pr.restore != nil
	vm, err := boot(ctx, p, pr, res)
	td.addVM(vm)
	if err != nil {
		if vm != nil {
			vm.halt()
			vm.record(res)
		}
		return restoring && ctx.Err() == nil, err
	}
	s := newVMSession(p, pr, vm)
	var ln net.Listener = pr.ch.ln
	if restoring {
		ln = &layerListener{Listener: ln, via: pr.restore.via, size: pr.restore.size, now: p.o.Now, log: p.o.Log, start: vm.start}
	}
	out, err := s.run(ctx, ln)
	collectResult(res, out, s, vm)
	retry = restoring && err != nil && out.Hello.Version == 0 && ctx.Err() == nil
	if retry {
		vm.halt()
	}
	vm.record(res)
	return retry, err
}

// collectResult is the collect phase: the session's verdict and
// translation block count, and the host's timings (QEMU start → guest
// connected, → QEMU exit; verdict → QEMU exit), into res.
func collectResult(res *Result, out protocol.SessionResult, s *vmSession, vm *bootedVM) {
	res.Translations = s.translations
	res.Pass, res.Verdict, res.Reason = out.Pass, out.Verdict, out.Reason
	if !s.connected.IsZero() {
		res.Boot = s.connected.Sub(vm.start)
	}
	if vm.proc.Exited() {
		res.VM = vm.proc.ExitTime().Sub(vm.start)
	}
	if !s.verdictAt.IsZero() {
		res.VerdictAt = s.verdictAt
		if vm.proc.Exited() {
			res.AfterVerdict = vm.proc.ExitTime().Sub(s.verdictAt)
		}
	}
}
