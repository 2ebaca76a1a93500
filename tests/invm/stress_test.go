//go:build stress

// The stress and speed tests are not part of `go test ./...` (they take
// minutes of the machine): run them with
//
//	go test -tags stress -run 'TestParallelVMs|TestSpeed|TestVsock' -v ./tests/invm/

package invm

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParallelVMs boots 8 guests at once, 3 rounds, each must pass with its
// full output: no collision (each run has its own daemon and CIDs), no flake.
func TestParallelVMs(t *testing.T) {
	needEnv(t)
	const vms, rounds = 8, 3
	for r := range rounds {
		var wg sync.WaitGroup
		errs := make(chan string, vms)
		start := time.Now()
		for i := range vms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				state := filepath.Join(t.TempDir(), "state")
				cmd := exec.Command(env.invm, "-kernel", env.kernel, "-module-root", env.root, "-state-dir", state,
					"-env", "PAYLOAD_FLOOD_MIB=4", env.payload, "-test.run=^TestPass$|^TestFlood$", "-test.v")
				cmd.Dir = t.TempDir()
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), "--- PASS: TestPass") || !strings.Contains(string(out), "--- PASS: TestFlood") {
					errs <- fmt.Sprintf("round %d vm %d: %v\n%s", r, i, err, tail(string(out), 2000))
					return
				}
				assertClean(t, state)
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		t.Logf("round %d: %d VMs in %v", r, vms, time.Since(start))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

var floodRE = regexp.MustCompile(`PAYLOAD-FLOOD (\d+) MiB in (\S+)`)

// flood runs TestFlood with mib MiB over transport and returns the guest's
// write time (the transport's drain rate bounds it: the pipe holds 64 KiB).
func flood(t *testing.T, transport string, mib int) time.Duration {
	cmd := exec.Command(env.invm, "-kernel", env.kernel, "-module-root", env.root, "-transport", transport,
		"-env", "PAYLOAD_FLOOD_MIB="+strconv.Itoa(mib), env.payload, "-test.run=^TestFlood$")
	cmd.Dir = t.TempDir()
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", transport, err, tail(stderr.String(), 2000))
	}
	m := floodRE.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("%s: no PAYLOAD-FLOOD line\n%s", transport, tail(stderr.String(), 2000))
	}
	d, err := time.ParseDuration(m[2])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSpeed measures, side by side in one run: guest→host throughput of
// the test's output over vhost-user-vsock and virtio-serial (interleaved,
// 3 runs each, 64 MiB), and the host→guest→host round trip over the vsock
// debug connection (1 byte, 200 times), which bounds the one-way latency
// of a verdict (guest write → host delivery) from above.
func TestSpeed(t *testing.T) {
	needEnv(t)
	const mib = 64
	var vs, ser []time.Duration
	for range 3 {
		vs = append(vs, flood(t, "vhost-user-vsock", mib))
		ser = append(ser, flood(t, "virtio-serial", mib))
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	rate := func(d time.Duration) float64 { return float64(mib) / d.Seconds() }
	t.Logf("throughput %d MiB, median of 3: vhost-user-vsock %.0f MiB/s, virtio-serial %.0f MiB/s, ratio vsock/serial %.2f",
		mib, rate(med(vs)), rate(med(ser)), rate(med(vs))/rate(med(ser)))

	// Round trip over the debug connection.
	cmd := exec.Command(env.invm, "-kernel", env.kernel, "-module-root", env.root, "-timeout", "90s",
		"-command", "/invm/pkg/payload.test -test.run=^TestEcho$", env.payload, "-test.run=^TestPass$")
	cmd.Dir = t.TempDir()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	br := bufio.NewReader(stdout)
	// Skip the test's own output until the echo is up: send a probe until
	// it comes back.
	var rtts []time.Duration
	buf := make([]byte, 1)
	for i := 0; i < 220; i++ {
		start := time.Now()
		if _, err := stdin.Write([]byte{'a' + byte(i%26)}); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := io.ReadFull(br, buf); err != nil {
				t.Fatalf("echo: %v", err)
			}
			if buf[0] == 'a'+byte(i%26) {
				break
			}
		}
		if i >= 20 { // warm-up
			rtts = append(rtts, time.Since(start))
		}
	}
	stdin.Close() // the echo never ends by itself: the run's -timeout ends it
	slices.Sort(rtts)
	t.Logf("vsock round trip host→guest→host, 1 byte, %d samples: median %v, p90 %v, max %v (one-way ≈ half)",
		len(rtts), rtts[len(rtts)/2], rtts[len(rtts)*9/10], rtts[len(rtts)-1])
}

// conns runs TestVsockConns with n connections moving totalMiB together and
// returns the host-side time from the first accepted connection to the last
// byte, after checking every byte arrived.
func conns(t *testing.T, n, totalMiB int) time.Duration {
	state, err := os.MkdirTemp("", "invm-conns-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	// vhost-device-vsock connects a guest's dial of host port P to
	// <uds-path>_P; the runner's uds-path is <state>/vsock.
	const port = 5000
	ln, err := net.Listen("unix", filepath.Join(state, "vsock_"+strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kib := totalMiB * 1024 / n
	type result struct {
		bytes int64
		err   error
	}
	results := make(chan result, n)
	var first time.Time
	var firstOnce sync.Once
	go func() {
		for range n {
			c, err := ln.Accept()
			if err != nil {
				results <- result{err: err}
				return
			}
			firstOnce.Do(func() { first = time.Now() })
			go func() {
				defer c.Close()
				b, err := checkStream(c)
				results <- result{b, err}
			}()
		}
	}()
	cmd := exec.Command(env.invm, "-kernel", env.kernel, "-module-root", env.root, "-state-dir", state,
		"-env", fmt.Sprintf("PAYLOAD_CONNS=%d,PAYLOAD_CONN_KIB=%d,PAYLOAD_PORT=%d", n, kib, port),
		env.payload, "-test.run=^TestVsockConns$")
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%d connections: %v\n%s", n, err, tail(stderr.String(), 2000))
	}
	var total int64
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("%d connections: %v", n, r.err)
		}
		total += r.bytes
	}
	took := time.Since(first)
	if want := int64(n) * int64(kib) * 1024; total != want {
		t.Fatalf("%d connections: %d bytes arrived, want %d", n, total, want)
	}
	// took runs to the end of the invm run at the latest: use the guest's
	// own account of the writes when it is shorter (it excludes power-off).
	if m := connsRE.FindStringSubmatch(stderr.String()); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil && d < took {
			took = d
		}
	}
	return took
}

// checkStream reads one TestVsockConns connection (its index k, then bytes
// (i + k) % 251) and returns how many data bytes were right.
func checkStream(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	k, err := br.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("connection index: %w", err)
	}
	var i int64
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return i, nil
		}
		if err != nil {
			return i, err
		}
		if want := byte((i + int64(k)) % 251); b != want {
			return i, fmt.Errorf("connection %d: byte %d is %#x, want %#x", k, i, b, want)
		}
		i++
	}
}

var connsRE = regexp.MustCompile(`PAYLOAD-CONNS \d+ x \d+ KiB in (\S+)`)

// TestVsockConnections measures guest→host throughput over vhost-user-vsock
// with 1 and with 16 concurrent connections (64 MiB in total each time,
// interleaved, median of 3), every byte counted on the host.
func TestVsockConnections(t *testing.T) {
	needEnv(t)
	const mib = 64
	var one, sixteen []time.Duration
	for range 3 {
		one = append(one, conns(t, 1, mib))
		sixteen = append(sixteen, conns(t, 16, mib))
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	rate := func(d time.Duration) float64 { return float64(mib) / d.Seconds() }
	t.Logf("vsock guest→host %d MiB, median of 3: 1 connection %.0f MiB/s, 16 connections %.0f MiB/s (ratio %.2f)",
		mib, rate(med(one)), rate(med(sixteen)), rate(med(sixteen))/rate(med(one)))
}

// TestVsock64Connections moves 64 MiB over 64 concurrent guest→host vsock
// connections of one real guest; conns checks every byte arrived.
func TestVsock64Connections(t *testing.T) {
	needEnv(t)
	d := conns(t, 64, 64)
	t.Logf("64 connections, 64 MiB: %v (%.0f MiB/s)", d, 64/d.Seconds())
}
