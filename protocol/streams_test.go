package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// listen returns a unix listener in a temporary directory and a dialer.
func listen(t testing.TB) (*net.UnixListener, func() (net.Conn, error)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, func() (net.Conn, error) { return net.Dial("unix", path) }
}

// openGuest dials the control stream and one stream per role.
func openGuest(t testing.TB, dial func() (net.Conn, error), roles ...Role) (*Guest, net.Conn) {
	t.Helper()
	data := map[Role]io.ReadWriteCloser{}
	for _, r := range roles {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		data[r] = c
	}
	ctrl, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuestStreams(ctrl, data, "test")
	if err != nil {
		t.Fatal(err)
	}
	return g, ctrl
}

type memFiles struct {
	mu    sync.Mutex
	files map[string]*bytes.Buffer
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (m *memFiles) Create(name string) (io.WriteCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string]*bytes.Buffer{}
	}
	b := &bytes.Buffer{}
	m.files[name] = b
	return nopCloser{b}, nil
}

func TestStreamsSession(t *testing.T) {
	for _, pass := range []bool{true, false} {
		ln, dial := listen(t)
		errc := make(chan error, 1)
		big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
		go func() {
			g, ctrl := openGuest(t, dial, DataRoles...)
			defer ctrl.Close()
			defer g.Close()
			var wg sync.WaitGroup
			wg.Add(3)
			go func() { defer wg.Done(); _, _ = g.Stdout().Write(big) }()
			go func() { defer wg.Done(); _, _ = g.Stderr().Write([]byte("err\n")) }()
			go func() {
				defer wg.Done()
				_ = g.Event([]byte(`{"Action":"pass"}`))
				_, _ = g.File("a/b.txt", strings.NewReader("hello"))
				_, _ = g.File("empty", strings.NewReader(""))
				_, _ = g.File("big.bin", bytes.NewReader(big))
			}()
			_ = g.Diag("diag line")
			wg.Wait()
			v := Verdict{Pass: pass}
			if !pass {
				v.ExitCode, v.Reason = 1, "boom"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc <- g.Finish(ctx, v)
		}()
		var stdout, stderr, events, diag bytes.Buffer
		files := &memFiles{}
		res, err := CollectStreams(context.Background(), ln, CollectOptions{Stdout: &stdout, Stderr: &stderr, Events: &events, Diag: &diag, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		if gerr := <-errc; gerr != nil {
			t.Fatalf("guest: %v", gerr)
		}
		if res.Pass != pass || !bytes.Equal(stdout.Bytes(), big) || stderr.String() != "err\n" ||
			events.String() != "{\"Action\":\"pass\"}\n" || diag.String() != "diag line\n" {
			t.Errorf("pass %v (want %v), stdout %d, stderr %q, events %q, diag %q", res.Pass, pass, stdout.Len(), stderr.String(), events.String(), diag.String())
		}
		if res.Hello.Streams != StreamsOf(DataRoles...) {
			t.Errorf("declared %#x", res.Hello.Streams)
		}
		if res.Files != 3 || files.files["a/b.txt"].String() != "hello" || files.files["empty"].Len() != 0 || !bytes.Equal(files.files["big.bin"].Bytes(), big) {
			t.Errorf("files: %d, %v", res.Files, files.files)
		}
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	n       int
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.n += len(p)
	return len(p), nil
}

// TestVerdictNotDelayedByFlood: the output sink is stuck, the guest floods
// its output stream; the verdict still arrives, and the session completes
// once the sink moves again.
func TestVerdictNotDelayedByFlood(t *testing.T) {
	ln, dial := listen(t)
	sink := &blockingWriter{release: make(chan struct{})}
	got := make(chan Verdict, 1)
	guestErr := make(chan error, 1)
	const flood = 8 << 20
	go func() {
		g, ctrl := openGuest(t, dial, DataRoles...)
		defer ctrl.Close()
		defer g.Close()
		go func() { _, _ = g.Stdout().Write(make([]byte, flood)) }() // blocks: nobody drains it
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		guestErr <- g.Finish(ctx, Verdict{Pass: true})
	}()
	done := make(chan error, 1)
	go func() {
		_, err := CollectStreams(context.Background(), ln, CollectOptions{Stdout: sink, OnVerdict: func(v Verdict) { got <- v }})
		done <- err
	}()
	select {
	case v := <-got:
		if !v.Pass {
			t.Fatalf("verdict %+v", v)
		}
	case <-time.After(time.Minute):
		t.Fatal("verdict held up by the output flood")
	}
	select {
	case err := <-done:
		t.Fatalf("session ended (%v) while the output stream was not drained", err)
	default:
	}
	close(sink.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-guestErr; err != nil {
		t.Fatal(err)
	}
}

// rawGuest writes hand-made frames: role → frames, then closes.
func rawStreams(t testing.TB, dial func() (net.Conn, error), streams ...[]byte) {
	t.Helper()
	for _, s := range streams {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer c.Close()
			_, _ = c.Write(s)
			_, _ = io.Copy(io.Discard, c) // until the host closes
		}()
	}
}

func roleHello(t testing.TB, r Role, s Streams) []byte {
	return frame(t, FrameHello, EncodeHello(Hello{Version: Version, Role: r, Streams: s}))
}

func TestStreamRules(t *testing.T) {
	out := StreamsOf(RoleOutput)
	ctrl := func(s Streams, frames ...[]byte) []byte {
		return cat(append([][]byte{roleHello(t, RoleControl, s)}, frames...)...)
	}
	pass := verdictFrame(t, Verdict{Pass: true})
	end := frame(t, FrameEnd, nil)
	stdout := frame(t, FrameStdout, []byte("x"))
	file := func(p string) []byte {
		b := make([]byte, 2, 2+len(p))
		b[0], b[1] = byte(len(p)>>8), byte(len(p))
		return frame(t, FrameFile, append(append(b, p...), "data"...))
	}
	for _, tc := range []struct {
		name    string
		streams [][]byte
		err     error
	}{
		{"pass", [][]byte{ctrl(out, pass), cat(roleHello(t, RoleOutput, 0), stdout, end)}, nil},
		{"undeclared stream", [][]byte{ctrl(0, pass), cat(roleHello(t, RoleOutput, 0), stdout, end)}, ErrStream},
		{"duplicate role", [][]byte{ctrl(out), cat(roleHello(t, RoleOutput, 0), stdout), cat(roleHello(t, RoleOutput, 0), stdout)}, ErrStream},
		{"two controls", [][]byte{ctrl(0), ctrl(0, pass)}, ErrStream},
		{"wrong frame on stream", [][]byte{ctrl(out, pass), cat(roleHello(t, RoleOutput, 0), frame(t, FrameDiag, nil), end)}, ErrUnexpectedFrame},
		{"frame after end", [][]byte{ctrl(out, pass), cat(roleHello(t, RoleOutput, 0), end, stdout)}, ErrStream},
		{"stream without end", [][]byte{ctrl(out, pass), cat(roleHello(t, RoleOutput, 0), stdout)}, ErrStream},
		{"declared stream never opened", [][]byte{ctrl(out, pass)}, ErrStream},
		{"output frame on control when declared", [][]byte{ctrl(out, stdout, pass), cat(roleHello(t, RoleOutput, 0), end)}, ErrUnexpectedFrame},
		{"garbled data stream", [][]byte{ctrl(out, pass), cat(roleHello(t, RoleOutput, 0), []byte("garbage garbage"))}, ErrBadFrame},
		{"old version", [][]byte{helloFrame(t, 1)}, ErrVersion},
		{"path traversal", [][]byte{ctrl(StreamsOf(RoleFiles), pass), cat(roleHello(t, RoleFiles, 0), file("../x"), end)}, ErrBadFile},
		{"absolute path", [][]byte{ctrl(StreamsOf(RoleFiles), pass), cat(roleHello(t, RoleFiles, 0), file("/etc/passwd"), end)}, ErrBadFile},
		{"file twice", [][]byte{ctrl(StreamsOf(RoleFiles), pass), cat(roleHello(t, RoleFiles, 0), file("a"), file("b"), file("a"), end)}, ErrBadFile},
		{"no verdict", [][]byte{ctrl(out), cat(roleHello(t, RoleOutput, 0), end)}, ErrNoVerdict},
		{"duplicate verdict", [][]byte{ctrl(0, pass, pass)}, ErrDuplicateVerdict},
		{"too many connections", [][]byte{ctrl(0), ctrl(0), ctrl(0), ctrl(0), ctrl(0), ctrl(0)}, ErrStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, dial := listen(t)
			rawStreams(t, dial, tc.streams...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := CollectStreams(ctx, ln, CollectOptions{Linger: 50 * time.Millisecond, DrainTimeout: 500 * time.Millisecond})
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if (err == nil) != res.Pass {
				t.Errorf("pass %v with err %v", res.Pass, err)
			}
		})
	}
}

func TestFileLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  CollectOptions
		files map[string]int
		err   error
	}{
		{"within", CollectOptions{MaxFiles: 3, MaxFileBytes: 100}, map[string]int{"a": 50, "b/c": 50}, nil},
		{"too many files", CollectOptions{MaxFiles: 2}, map[string]int{"a": 1, "b": 1, "c": 1}, ErrBadFile},
		{"directories count", CollectOptions{MaxFiles: 2}, map[string]int{"a": 1, "b/c": 1}, ErrBadFile},
		{"too many bytes", CollectOptions{MaxFileBytes: 100}, map[string]int{"a": 60, "b": 41}, ErrBadFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, dial := listen(t)
			errc := make(chan error, 1)
			go func() {
				g, ctrl := openGuest(t, dial, RoleFiles)
				defer ctrl.Close()
				defer g.Close()
				for name, n := range tc.files {
					_, _ = g.File(name, bytes.NewReader(make([]byte, n)))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				errc <- g.Finish(ctx, Verdict{Pass: true})
			}()
			dir := t.TempDir()
			tc.opts.Files = DirSink{Dir: dir}
			tc.opts.Linger = -1
			_, err := CollectStreams(context.Background(), ln, tc.opts)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil {
				if gerr := <-errc; gerr != nil {
					t.Fatal(gerr)
				}
				for name, n := range tc.files {
					if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() != int64(n) {
						t.Errorf("%s: %v", name, err)
					}
				}
			}
		})
	}
}

func TestValidOutputPath(t *testing.T) {
	for _, p := range []string{"a", "a/b", "x.txt", "a b/ü", "..a", "a.."} {
		if err := ValidOutputPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "/a", "../a", "a/../b", "a/..", ".", "./a", "a//b", "a/", "a\x00b", "a\\b", strings.Repeat("x", MaxPath+1), "\xff"} {
		if err := ValidOutputPath(p); !errors.Is(err, ErrBadFile) {
			t.Errorf("%q: %v, want ErrBadFile", p, err)
		}
	}
	// What a careless or hostile guest sends, with the words of the error.
	deep := strings.Repeat("d/", MaxPathDepth) + "f"
	for _, tc := range []struct{ path, want string }{
		{deep, "33 levels deep, at most 32 allowed"},
		{strings.Repeat("a/", 500) + "f", "501 levels deep"},
		{"bad\nname", "control character"},
		{"esc\x1b[2Jape", "control character"},
		{"del\x7f", "control character"},
		{"c1\u0085x", "control character"},
		{"console.log", "runner's own file"},
		{"runner.log", "runner's own file"},
		{"test.json", "runner's own file"},
		{"qemu-command.txt", "runner's own file"},
		{"console.log/inner", "runner's own file"},
	} {
		err := ValidOutputPath(tc.path)
		if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want ErrBadFile saying %q", clip([]byte(tc.path)), err, tc.want)
		}
	}
	for _, p := range []string{strings.Repeat("d/", MaxPathDepth-1) + "f", "logs/console.log", "console.log.txt", "tëst.json"} {
		if err := ValidOutputPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
}

func TestOutputTally(t *testing.T) {
	tl := OutputTally{MaxEntries: 4, MaxBytes: 10}
	steps := []struct {
		path string
		size int64
		ok   bool
	}{
		{"a/b/f", 3, true},  // a, a/b, f: 3 entries
		{"a/c/g", 1, false}, // a/c and g would make 5
		{"a/b/h", 1, true},  // a/b is known: 4 entries
		{"i", 0, false},     // 5 entries
	}
	for _, st := range steps {
		err := tl.Add(st.path, st.size)
		if (err == nil) != st.ok {
			t.Fatalf("Add(%q) = %v, want ok %v", st.path, err, st.ok)
		}
	}
	if tl.Files != 2 || tl.Dirs != 2 || tl.Bytes != 4 {
		t.Errorf("tally %+v, want 2 files, 2 dirs, 4 bytes (a refused Add counts nothing)", tl)
	}
	if err := tl.AddBytes(7); !errors.Is(err, ErrBadFile) {
		t.Errorf("AddBytes over the limit: %v", err)
	}
	if err := (&OutputTally{}).Add("x", -1); !errors.Is(err, ErrBadFile) {
		t.Errorf("negative size: %v", err)
	}
}

// TestHostileFileFrames sends File frames no honest guest sends (its own
// writer refuses these paths) and checks the host refuses them before it
// makes more than a bounded number of directories.
func TestHostileFileFrames(t *testing.T) {
	raw := func(p string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(p)))
		return append(b, p...)
	}
	var deepFiles, dirFlood, names [][]byte
	for i := range 20 {
		deepFiles = append(deepFiles, raw(strings.Repeat("a/", 499)+fmt.Sprint(i)))
	}
	for i := range 100 { // 100 chains of 31 directories: 3,200 entries from 0 bytes
		dirFlood = append(dirFlood, raw(fmt.Sprintf("%d/", i)+strings.Repeat("d/", MaxPathDepth-2)+"f"))
	}
	for _, n := range []string{"console.log", "runner.log", "x\ny"} {
		names = append(names, raw(n))
	}
	for _, tc := range []struct {
		name   string
		chunks [][]byte
		want   string
	}{
		{"20 empty files at depth 500", deepFiles, "levels deep"},
		{"directory flood", dirFlood, "files and directories"},
		{"reserved and control names", names, "path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := appendFrame(t, nil, FrameHello, EncodeHello(Hello{Version: Version, Role: RoleControl}))
			for _, c := range tc.chunks {
				stream = appendFrame(t, stream, FrameFile, c)
			}
			vp, _ := EncodeVerdict(Verdict{Pass: true})
			stream = appendFrame(t, stream, FrameVerdict, vp)
			dir := t.TempDir()
			rw := struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(stream), io.Discard}
			res, err := Collect(context.Background(), rw, CollectOptions{Files: DirSink{Dir: dir}, Linger: -1})
			if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), tc.want) || res.Pass {
				t.Fatalf("Collect = pass %v, %v; want ErrBadFile saying %q", res.Pass, err, tc.want)
			}
			entries := 0
			_ = filepath.WalkDir(dir, func(string, fs.DirEntry, error) error { entries++; return nil })
			if entries-1 > DefaultMaxFiles {
				t.Errorf("%d files and directories made on the host, limit %d", entries-1, DefaultMaxFiles)
			}
		})
	}
}

func appendFrame(t *testing.T, dst []byte, ft FrameType, p []byte) []byte {
	t.Helper()
	b, err := AppendFrame(dst, ft, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDirSinkSymlink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if w, err := (DirSink{Dir: dir}).Create("link/x"); err == nil {
		w.Close()
		t.Fatalf("created a file through a symlink out of the outputs directory")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Fatalf("file written outside")
	}
}

func TestRequestStacks(t *testing.T) {
	ln, dial := listen(t)
	stacks := make(chan struct{})
	got := make(chan Request, 1)
	go func() {
		g, ctrl := openGuest(t, dial, RoleOutput)
		defer ctrl.Close()
		defer g.Close()
		close(stacks) // the host is "cancelled" once the guest is up
		req := <-g.Requests()
		got <- req
		_, _ = g.Stderr().Write([]byte("goroutine 1 [running]:\n"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Finish(ctx, Verdict{ExitCode: 2, Reason: "stopped"})
	}()
	var stderr bytes.Buffer
	res, err := CollectStreams(context.Background(), ln, CollectOptions{Stderr: &stderr, Stacks: stacks, Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-got; r != RequestStacks {
		t.Errorf("request %v", r)
	}
	if res.Pass || !strings.Contains(stderr.String(), "goroutine 1") {
		t.Errorf("pass %v stderr %q", res.Pass, stderr.String())
	}
}

// TestManyConnections: 64 sessions at once, each with its own output
// stream (64 concurrent guest→host connections, plus their control
// streams), 64 MiB in total, every byte checked.
func TestManyConnections(t *testing.T) {
	const conns, per = 64, 1 << 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	for i := range conns {
		ln, dial := listen(t)
		data := make([]byte, per)
		rng := rand.NewChaCha8([32]byte{byte(i)})
		_, _ = rng.Read(data)
		want := sha256.Sum256(data)
		wg.Add(2)
		go func() {
			defer wg.Done()
			g, ctrl := openGuest(t, dial, RoleOutput)
			defer ctrl.Close()
			defer g.Close()
			w := g.Stdout()
			for p := data; len(p) > 0; { // odd-sized writes
				n := min(len(p), 1+rand.IntN(100<<10))
				if _, err := w.Write(p[:n]); err != nil {
					errs <- err
					return
				}
				p = p[n:]
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := g.Finish(ctx, Verdict{Pass: true}); err != nil {
				errs <- fmt.Errorf("guest %d: %w", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			n := &countWriter{w: h}
			res, err := CollectStreams(context.Background(), ln, CollectOptions{Stdout: n, Linger: -1})
			if err != nil || !res.Pass {
				errs <- fmt.Errorf("host %d: %v", i, err)
				return
			}
			if n.n != per || !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- fmt.Errorf("host %d: %d bytes, checksum mismatch", i, n.n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return c.w.Write(p)
}

// TestDiagNeverBlocks: a host that never reads the diag stream cannot
// block Guest.Diag.
func TestDiagNeverBlocks(t *testing.T) {
	_, dial := listen(t) // nobody accepts: writes fill the socket buffer and block
	g, ctrl := openGuest(t, dial, RoleDiag)
	defer ctrl.Close()
	defer g.Close()
	line := strings.Repeat("d", MaxDiag)
	done := make(chan struct{})
	go func() {
		for range 10 * DiagQueue {
			_ = g.Diag(line)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Diag blocked")
	}
	if g.Dropped() == 0 {
		t.Errorf("nothing dropped")
	}
}

func TestCoveragePath(t *testing.T) {
	for _, tc := range []struct {
		path, rest string
		ok         bool
	}{
		{CoverageOutputDir + "/go_coverage.1.dat", "go_coverage.1.dat", true},
		{CoverageOutputDir + "/sub/covmeta.x", "sub/covmeta.x", true},
		{CoverageOutputDir, "", false},
		{"x/" + CoverageOutputDir + "/f", "", false},
		{CoverageOutputDir + "x/f", "", false},
		{"report.txt", "", false},
	} {
		rest, ok := CoveragePath(tc.path)
		if ok != tc.ok || (ok && rest != tc.rest) {
			t.Errorf("CoveragePath(%q) = %q, %v; want %q, %v", tc.path, rest, ok, tc.rest, tc.ok)
		}
	}
}
