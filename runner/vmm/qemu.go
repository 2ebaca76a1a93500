package vmm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
)

// QEMU is the QEMU backend: a VM is lowered to a qemu.Spec (QEMUSpec),
// then to arguments by qemu.Args; the monitor is QMP.
type QEMU struct{}

// Name implements Backend.
func (QEMU) Name() string { return "qemu" }

// Args implements Backend.
func (QEMU) Args(vm VM) ([]string, error) { return qemu.Args(QEMUSpec(vm)) }

// Machine implements Backend: the machine type of the arch's profile (see
// qemu.Spec.MachineType).
func (QEMU) Machine(vm VM) (string, error) { return QEMUSpec(vm).MachineType() }

// LayerWindow implements Backend (qemu.Spec.LayerWindowBase).
func (QEMU) LayerWindow(vm VM) (uint64, error) { return QEMUSpec(vm).LayerWindowBase() }

// QEMUSpec lowers vm to QEMU's own model of a guest.
func QEMUSpec(vm VM) qemu.Spec {
	s := qemu.Spec{
		Arch: vm.Arch, Machine: vm.Machine, Accel: vm.Accel, Kernel: vm.Kernel, Initrd: vm.Initrd,
		MemoryMiB: vm.MemoryMiB, CPUs: vm.CPUs, QMPSocket: vm.Monitor,
		HostPages: vm.HostPages, HugetlbfsDir: vm.HugetlbfsDir, GuestHugepages: vm.GuestHugepages, IOMMU: vm.IOMMU,
		TSCkHz: vm.TSCkHz, Quiet: vm.Quiet, ExtraCmdline: vm.Cmdline,
	}
	if vm.Restore != "" {
		s.Incoming = "file:" + vm.Restore
	}
	s.RAMFile, s.RAMFilePrivate = vm.RAMFile, vm.RAMFilePrivate
	if vm.LayerShare != "" {
		s.Share = qemu.Share{Dir: vm.LayerShare, Tag: protocol.LayerShareTag}
	}
	s.LayerWindow = qemu.LayerWindow{File: vm.LayerWindow.File, MiB: vm.LayerWindow.MiB}
	switch vm.SaveFormat {
	case SaveMappedRAM:
		s.MigrationCaps = []string{qemu.CapMappedRAM}
	case SaveRAMFile:
		s.MigrationCaps = []string{qemu.CapIgnoreShared}
	}
	for _, n := range vm.NICs {
		s.NICs = append(s.NICs, qemu.NIC{Model: n.Model, MAC: n.MAC})
	}
	if vm.MgmtNIC.Model != "" {
		s.MgmtNIC = qemu.NIC{Model: vm.MgmtNIC.Model, MAC: vm.MgmtNIC.MAC}
	}
	switch c := vm.Channel; c.Transport {
	case vsock.VhostUserVsock:
		s.VhostUserSocket = c.Socket
	case vsock.VhostVsock:
		s.VhostVsockCID, s.VhostVsockFD = c.CID, firstInheritedFD
	case vsock.VirtioSerial:
		s.SerialSocket = c.Socket
	}
	return s
}

// attachRetry is the pause between connection attempts while QEMU starts
// (it creates the socket during its start-up, before the guest runs).
const attachRetry = 5 * time.Millisecond

// dialTimeout bounds one connection attempt to the QMP socket.
const dialTimeout = time.Second

// Attach implements Backend: it dials the QMP socket until QEMU serves it,
// then negotiates capabilities.
func (QEMU) Attach(ctx context.Context, socket string, exited <-chan struct{}) (Monitor, error) {
	for {
		mon, err := qmp.NewSocketMonitor("unix", socket, dialTimeout)
		if err == nil {
			return connect(ctx, mon)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: %w (%v)", ErrAttach, socket, ctx.Err(), err)
		case <-exited:
			return nil, fmt.Errorf("%w: %s: the VM exited first (%v)", ErrAttach, socket, err)
		case <-time.After(attachRetry):
		}
	}
}

// connect greets QEMU (qmp_capabilities) within ctx and starts the event
// pump.
func connect(ctx context.Context, mon *qmp.SocketMonitor) (*QMP, error) {
	done := make(chan error, 1)
	go func() { done <- mon.Connect() }()
	select {
	case err := <-done:
		if err != nil {
			mon.Disconnect()
			return nil, fmt.Errorf("%w: QMP greeting: %w", ErrAttach, err)
		}
	case <-ctx.Done():
		mon.Disconnect() // unblocks Connect
		<-done
		return nil, fmt.Errorf("%w: QMP greeting: %w", ErrAttach, ctx.Err())
	}
	raw, err := mon.Events(ctx)
	if err != nil {
		mon.Disconnect()
		return nil, fmt.Errorf("%w: %w", ErrAttach, err)
	}
	q := &QMP{mon: mon, events: make(chan Event, 64), version: mon.Version.String()}
	go q.pump(raw)
	return q, nil
}

// QMP is a Monitor over a QEMU QMP socket.
type QMP struct {
	mon     *qmp.SocketMonitor
	events  chan Event
	version string
	close   sync.Once
}

// Version is QEMU's version from the QMP greeting ("11.1.2").
func (q *QMP) Version() string { return q.version }

// pump forwards QMP events until the connection ends. It always drains raw:
// go-qemu's reader blocks on an unread event, which would block command
// replies too.
func (q *QMP) pump(raw <-chan qmp.Event) {
	defer close(q.events)
	for e := range raw {
		ev := convert(e)
		select {
		case q.events <- ev:
		default: // nobody reads: drop rather than stall the monitor
		}
	}
}

func convert(e qmp.Event) Event {
	ev := Event{Name: e.Event, Kind: EventOther,
		Time: time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)}
	str := func(k string) string {
		s, _ := e.Data[k].(string)
		return s
	}
	switch e.Event {
	case "SHUTDOWN":
		ev.Kind, ev.Reason = EventShutdown, str("reason")
	case "RESET":
		ev.Kind, ev.Reason = EventReset, str("reason")
	case "GUEST_PANICKED", "GUEST_CRASHLOADED":
		ev.Kind, ev.Reason = EventPanic, str("action")
	}
	return ev
}

// Events implements Monitor.
func (q *QMP) Events() <-chan Event { return q.events }

// run executes one QMP command (with args, if any) within ctx and decodes
// its "return" into out (if non-nil).
func (q *QMP) run(ctx context.Context, command string, args map[string]any, out any) error {
	c := qmp.Command{Execute: command}
	if args != nil {
		c.Args = args // a nil map in the interface would be "arguments": null, which QEMU refuses
	}
	cmd, err := json.Marshal(c)
	if err != nil {
		return err
	}
	type reply struct {
		b   []byte
		err error
	}
	done := make(chan reply, 1)
	go func() {
		b, err := q.mon.Run(cmd)
		done <- reply{b, err}
	}()
	var r reply
	select {
	case r = <-done:
	case <-ctx.Done():
		q.Close() // unblocks Run
		return fmt.Errorf("%w: %s: %w", ErrMonitor, command, ctx.Err())
	}
	if r.err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMonitor, command, r.err)
	}
	if out == nil {
		return nil
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(r.b, &resp); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMonitor, command, err)
	}
	if err := json.Unmarshal(resp.Return, out); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMonitor, command, err)
	}
	return nil
}

// Status implements Monitor (query-status).
func (q *QMP) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := q.run(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// Quit implements Monitor (quit).
func (q *QMP) Quit(ctx context.Context) error { return q.run(ctx, "quit", nil, nil) }

// HumanMonitor runs one human monitor (HMP) command, e.g. "info registers",
// and returns its text output (human-monitor-command). QEMU-specific: it is
// not part of Monitor.
func (q *QMP) HumanMonitor(ctx context.Context, commandLine string) (string, error) {
	var out string
	err := q.run(ctx, "human-monitor-command", map[string]any{"command-line": commandLine}, &out)
	return out, err
}

// TranslationBlocks returns how many translation blocks QEMU's TCG has
// made so far (HMP "info jit", "TB count"): under TCG each one is guest
// code run for the first time, so the count is a noise-free measure of how
// much code a boot ran. It fails under KVM, which translates nothing.
func (q *QMP) TranslationBlocks(ctx context.Context) (int64, error) {
	out, err := q.HumanMonitor(ctx, "info jit")
	if err != nil {
		return 0, err
	}
	return ParseTBCount(out)
}

// ParseTBCount reads the "TB count" line of HMP "info jit" output.
func ParseTBCount(infoJIT string) (int64, error) {
	for _, line := range strings.Split(infoJIT, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "TB count")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: info jit: TB count %q", ErrMonitor, strings.TrimSpace(rest))
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: info jit: no TB count (not TCG?): %.80q", ErrMonitor, infoJIT)
}

// savePoll is the pause between migration status queries while saving.
const savePoll = 5 * time.Millisecond

// Save implements Saver: QEMU's migration to a file, in the format the
// VM's SaveFormat set up on QEMU's command line (its capabilities), then
// query-migrate until it completed. The guest keeps running during the
// save and is paused after.
func (q *QMP) Save(ctx context.Context, file string) error {
	if err := q.run(ctx, "migrate", map[string]any{"uri": "file:" + file}, nil); err != nil {
		return err
	}
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := q.run(ctx, "query-migrate", nil, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("%w: migrate to %s: %s: %s", ErrMonitor, file, st.Status, st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: migrate to %s: %w", ErrMonitor, file, ctx.Err())
		case <-time.After(savePoll):
		}
	}
}

// Close implements Monitor. It is safe to call more than once.
func (q *QMP) Close() error {
	var err error
	q.close.Do(func() { err = q.mon.Disconnect() })
	return err
}
