// Package payload holds the guest-side payloads of the invm host tests: each
// test is one scenario, selected with -test.run. They only make sense inside
// a guest (IN_VM=1); tests/invm builds this package with `go test -c`.
package payload

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/rules-go-vm/rules_go_vm/guestinit"
	"github.com/rules-go-vm/rules_go_vm/invm"
)

func inGuest(t *testing.T) {
	if os.Getenv("IN_VM") != "1" {
		t.Fatal("payload: not in a guest (IN_VM unset); run through invm")
	}
}

// TestPass passes, writing to stdout and stderr.
func TestPass(t *testing.T) {
	inGuest(t)
	fmt.Println("PAYLOAD-STDOUT pass")
	fmt.Fprintln(os.Stderr, "PAYLOAD-STDERR pass")
}

// TestFail fails: the test binary exits 1.
func TestFail(t *testing.T) {
	inGuest(t)
	t.Error("PAYLOAD failing on purpose")
}

// TestKernelPanic makes the guest kernel panic: panic_on_oom, then OOM.
func TestKernelPanic(t *testing.T) {
	inGuest(t)
	if err := os.WriteFile("/proc/sys/vm/panic_on_oom", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	var hold [][]byte
	for {
		b := make([]byte, 4<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hold = append(hold, b)
	}
}

// TestKillInit kills the guest init (SIGABRT makes the Go PID 1 crash).
func TestKillInit(t *testing.T) {
	inGuest(t)
	if err := syscall.Kill(1, syscall.SIGABRT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute)
	t.Error("init survived")
}

// TestLeakChild passes but leaves a child process running.
func TestLeakChild(t *testing.T) {
	inGuest(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSleepForever$")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let it get going
}

// TestSleepForever is the leaked child (and the hang).
func TestSleepForever(t *testing.T) {
	inGuest(t)
	time.Sleep(time.Hour)
}

// TestWaitForKill prints a marker, then runs long enough for the host test
// to kill the vsock daemon.
func TestWaitForKill(t *testing.T) {
	inGuest(t)
	fmt.Println("PAYLOAD-READY-FOR-KILL")
	for i := 0; i < 600; i++ {
		fmt.Println("PAYLOAD tick", i)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOutputs writes files to the undeclared outputs directory (invm.OutputsDir).
func TestOutputs(t *testing.T) {
	inGuest(t)
	dir := invm.OutputsDir()
	if dir == "" {
		t.Fatal("TEST_UNDECLARED_OUTPUTS_DIR is not set")
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte("PAYLOAD-OUTPUT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFlood writes PAYLOAD_FLOOD_MIB MiB (default 32) to stdout, then
// passes: the verdict must still arrive, with every byte before it.
func TestFlood(t *testing.T) {
	inGuest(t)
	mib := 32
	if s := os.Getenv("PAYLOAD_FLOOD_MIB"); s != "" {
		fmt.Sscan(s, &mib)
	}
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	start := time.Now()
	for range mib * 1024 {
		w.Write(line)
	}
	w.Flush()
	fmt.Fprintf(os.Stderr, "PAYLOAD-FLOOD %d MiB in %v\n", mib, time.Since(start))
}

// TestStacks blocks in a recognisable function until the host stops the
// run (and asks for the stacks). The marker comes only once the test's
// goroutine is parked there: printed before, the host's SIGTERM could
// overtake it on a slow (TCG) guest and catch the goroutine still running
// in TestStacks.
func TestStacks(t *testing.T) {
	inGuest(t)
	go func() {
		for !parkedIn("payloadBlockedHere") {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println("PAYLOAD-READY-FOR-SIGTERM")
	}()
	payloadBlockedHere()
}

// parkedIn reports whether a goroutine is asleep in function fn.
func parkedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		if bytes.Contains(header, []byte("[sleep")) && bytes.Contains(g, []byte("."+fn+"(")) {
			return true
		}
	}
	return false
}

//go:noinline
func payloadBlockedHere() { time.Sleep(time.Hour) }

// TestEcho copies stdin to stdout byte by byte (run as an invm -command
// to measure the host<->guest round trip).
func TestEcho(t *testing.T) {
	inGuest(t)
	b := make([]byte, 1)
	for {
		if _, err := os.Stdin.Read(b); err != nil {
			return
		}
		if _, err := os.Stdout.Write(b); err != nil {
			return
		}
	}
}

// TestVsockConns opens PAYLOAD_CONNS vsock connections to the host (CID 2,
// port PAYLOAD_PORT) at once and writes PAYLOAD_CONN_KIB KiB on each, in
// 4 KiB writes (vhost-device-vsock stalls a stream on larger ones), for the
// host's multi-connection throughput benchmark. Connection k sends k as one
// byte, then bytes (i + k) % 251 for i = 0, 1, ... so the host can check
// every byte.
func TestVsockConns(t *testing.T) {
	inGuest(t)
	conns, kib, port := 1, 4096, 5000
	fmt.Sscan(os.Getenv("PAYLOAD_CONNS"), &conns)
	fmt.Sscan(os.Getenv("PAYLOAD_CONN_KIB"), &kib)
	fmt.Sscan(os.Getenv("PAYLOAD_PORT"), &port)
	errs := make(chan error, conns)
	start := time.Now()
	for k := range conns {
		go func() {
			c, err := vsock.Dial(vsock.Host, uint32(port), nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if _, err := c.Write([]byte{byte(k)}); err != nil {
				errs <- err
				return
			}
			chunk := make([]byte, 4096)
			for n := range kib / 4 {
				for i := range chunk {
					chunk[i] = byte((n*4096 + i + k) % 251)
				}
				if _, err := c.Write(chunk); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "PAYLOAD-CONNS %d x %d KiB in %v\n", conns, kib, time.Since(start))
}

// SnapshotMarker is the file TestSnapshotIsolation writes: a guest
// restored from a template must never see one a previous restore wrote.
const SnapshotMarker = "/var/invm-snapshot-marker"

// TestSnapshotIsolation fails when SnapshotMarker exists (an earlier run
// of the same template leaked into this one), then writes it, and prints
// 16 bytes of the kernel's random pool and the guest's wall clock: two
// restores of one template must print different random bytes, and a clock
// that is the host's, not the template's.
func TestSnapshotIsolation(t *testing.T) {
	inGuest(t)
	if b, err := os.ReadFile(SnapshotMarker); err == nil {
		t.Fatalf("PAYLOAD %s exists (%q): written by an earlier run", SnapshotMarker, b)
	}
	if err := os.MkdirAll(filepath.Dir(SnapshotMarker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SnapshotMarker, []byte("written"), 0o644); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PAYLOAD-RANDOM %x\n", buf)
	fmt.Printf("PAYLOAD-CLOCK %d\n", time.Now().Unix())
}

// TestLocalVsockCID: the guest init's view of its vsock CID (what a
// template listening on kernel vhost-vsock puts in its hello, and what
// the host checks after a restore) is the CID the host gave the guest,
// $INVMTEST_WANT_CID.
func TestLocalVsockCID(t *testing.T) {
	inGuest(t)
	want, err := strconv.ParseUint(os.Getenv("INVMTEST_WANT_CID"), 10, 32)
	if err != nil {
		t.Fatalf("INVMTEST_WANT_CID: %v", err)
	}
	got, err := guestinit.LocalVsockCID()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(got) != want {
		t.Fatalf("LocalVsockCID = %d, want %d", got, want)
	}
	t.Logf("guest vsock CID %d", got)
}
