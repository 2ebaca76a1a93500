package runner

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner/proc"
	"github.com/rules-go-vm/rules_go_vm/runner/qemu"
	"github.com/rules-go-vm/rules_go_vm/runner/vmm"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// TestPlanOptions: the plan phase's host-free part reads the arch from the
// binary, checks the shape against it and fills in the shell's command.
func TestPlanOptions(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "a.test")
	if err := os.WriteFile(bin, elfHeader(2, 183), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1000, 0)
	var res Result
	p, err := planOptions(Options{TestBinary: bin, NICs: []string{"e1000"}, Shell: true}.WithDefaults(), start, &res)
	if err != nil {
		t.Fatal(err)
	}
	if p.o.Arch != arch.AArch64 || res.Arch != arch.AArch64 || p.profile.Binary != "qemu-system-aarch64" || p.start != start {
		t.Errorf("plan: arch %q (result %q), profile %q, start %v", p.o.Arch, res.Arch, p.profile.Binary, p.start)
	}
	if !slices.Equal(p.o.Command, []string{GuestBusybox, "sh", "-i"}) {
		t.Errorf("shell command %q", p.o.Command)
	}
	if len(p.shape.NICs) != 1 || p.shape.NICs[0].MAC != qemu.NICMAC("a.test", 0) || p.shape.Arch != arch.AArch64 {
		t.Errorf("shape %+v", p.shape)
	}
	// The machine check needs the arch from the binary.
	os.WriteFile(bin, elfHeader(2, 62), 0o755)
	_, err = planOptions(Options{TestBinary: bin, IOMMU: true, Machine: "microvm"}.WithDefaults(), start, &res)
	if !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("IOMMU on microvm: %v", err)
	}
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	if _, err := planOptions(Options{TestBinary: bin}.WithDefaults(), start, &res); !errors.Is(err, ErrInvalidOptions) || !errors.Is(err, ErrUnsupportedBinary) {
		t.Errorf("a script: %v", err)
	}
}

func TestGuestConfig(t *testing.T) {
	o := Options{TestBinary: "/b/x.test", Args: []string{"-test.v"}, Env: []string{"A=1"}, TestTimeout: time.Minute,
		GuestHugepages: vmspec.Hugepages{Size: "2M", Count: 4}, NICs: []string{"e1000"}, Arch: arch.X86_64}.WithDefaults()
	ch := protocol.Channel{Kind: protocol.ChannelVsock, CID: protocol.HostCID, Port: 1234}
	cfg := guestConfig(o, o.shape(), ch, qemu.AccelTCG, 0, []string{"H=2"})
	wantEnv := []string{"A=1", "H=2", EnvNICs + "=e1000 0000:00:10.0 " + qemu.NICMAC("x.test", 0), EnvGuestHugepages + "=2M:4"}
	if cfg.Path != GuestDir+"/x.test" || cfg.Dir != GuestDir || cfg.Channel != ch || cfg.Hostname != DefaultHostname ||
		time.Duration(cfg.Timeout) != time.Minute || !slices.Equal(cfg.Env, wantEnv) || !slices.Equal(cfg.HugePageSizes, []string{"2M"}) {
		t.Errorf("config %+v", cfg)
	}
	if cfg.DebugPort != 0 || cfg.AckTimeout != 0 {
		t.Errorf("debug port without a command: %+v", cfg)
	}
	if cfg.CoverageDir != "" {
		t.Errorf("a coverage directory without Options.CoverageDir: %q", cfg.CoverageDir)
	}
	o.CoverageDir = t.TempDir()
	if cfg = guestConfig(o, o.shape(), ch, qemu.AccelTCG, 0, nil); cfg.CoverageDir != GuestCoverageDir {
		t.Errorf("with Options.CoverageDir: guest coverage dir %q, want %q", cfg.CoverageDir, GuestCoverageDir)
	}
	o.CoverageDir = ""
	o.Command, o.GuestTestPath = []string{"/bin/true"}, "/invm/runfiles/x_test"
	cfg = guestConfig(o, o.shape(), ch, qemu.AccelTCG, 0, nil)
	if cfg.DebugPort != protocol.DefaultDebugPort || time.Duration(cfg.AckTimeout) != o.Timeout || cfg.Path != o.GuestTestPath {
		t.Errorf("with a command: %+v", cfg)
	}
}

func TestGuestTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		external bool
		accel    string
		spent    time.Duration
		wantArgs []string
		wantTime time.Duration
	}{
		{"TCG: no timeout of ours", nil, false, qemu.AccelTCG, 10 * time.Second, nil, 100 * time.Second},
		{"KVM: the nominal timeout", []string{"-test.v"}, false, qemu.AccelKVM, 10 * time.Second, []string{"-test.v", "-test.timeout=30s"}, 100 * time.Second},
		{"the user's -test.timeout stays, TCG", []string{"-test.timeout=90s"}, true, qemu.AccelTCG, 10 * time.Second, []string{"-test.timeout=90s"}, 90 * time.Second},
		{"the user's -test.timeout stays, KVM", []string{"--test.timeout", "90s"}, false, qemu.AccelKVM, 0, []string{"--test.timeout", "90s"}, 100 * time.Second},
		{"external deadline: time spent comes off the guest's bound", nil, true, qemu.AccelTCG, 10 * time.Second, nil, 90 * time.Second},
		{"never below MinTestTimeout", nil, true, qemu.AccelTCG, 200 * time.Second, nil, MinTestTimeout},
	} {
		o := Options{Args: tc.args, TestTimeout: 100 * time.Second, TCGTimeoutScale: 3, KVMTestTimeout: 30 * time.Second, ExternalDeadline: tc.external}
		args, timeout := guestTimeouts(o, tc.accel, tc.spent)
		if !slices.Equal(args, tc.wantArgs) || timeout != tc.wantTime {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, args, timeout, tc.wantArgs, tc.wantTime)
		}
	}
}

func TestVMDescription(t *testing.T) {
	o := Options{TestBinary: "x.test", Arch: arch.X86_64, Kernel: "/k/vmlinux", ExtraCmdline: []string{"loglevel=7"}}.WithDefaults()
	p := &runPlan{o: o, shape: o.shape()}
	pr := &prepared{state: "/s", initrd: "/s/initrd.cpio", accel: AccelChoice{Accel: qemu.AccelKVM},
		ch: &channel{device: vmm.Channel{Transport: vsock.VirtioSerial, Socket: "/s/serial.sock"}}}
	vm := vmDescription(p, pr)
	if vm.Accel != qemu.AccelKVM || vm.Kernel != "/k/vmlinux" || vm.Initrd != "/s/initrd.cpio" || vm.Monitor != "/s/qmp.sock" ||
		!reflect.DeepEqual(vm.Channel, pr.ch.device) || !vm.Quiet || !slices.Equal(vm.Cmdline, []string{"loglevel=7"}) || vm.CPUs != DefaultCPUs {
		t.Errorf("VM %+v", vm)
	}
	p.o.NoMonitor, p.o.Verbose = true, true
	if vm := vmDescription(p, pr); vm.Monitor != "" || vm.Quiet {
		t.Errorf("no monitor, verbose: %+v", vm)
	}
}

func TestCollectResult(t *testing.T) {
	vp, err := proc.Start(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	<-vp.Done()
	start := vp.ExitTime().Add(-time.Second)
	s := &vmSession{connected: start.Add(300 * time.Millisecond), verdictAt: start.Add(800 * time.Millisecond), translations: 7}
	var res Result
	v := &protocol.Verdict{Pass: true}
	collectResult(&res, protocol.SessionResult{Pass: true, Verdict: v}, s, &bootedVM{proc: vp, start: start})
	if !res.Pass || res.Verdict != v || res.Translations != 7 || res.Boot != 300*time.Millisecond || res.VM != time.Second ||
		res.AfterVerdict != 200*time.Millisecond || !res.VerdictAt.Equal(s.verdictAt) {
		t.Errorf("result %+v", res)
	}
}
