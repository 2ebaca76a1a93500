package nestedbazel

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		name    string
		argv    []string
		want    int
		wantErr bool
	}{
		{name: "success", argv: []string{"true"}, want: 0},
		{name: "failure", argv: []string{"false"}, want: 1},
		{name: "tests failed", argv: []string{"sh", "-c", "exit 3"}, want: ExitTestsFailed},
		{name: "no such binary", argv: []string{"/nonexistent/bazel"}, want: -1, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, err := ExitCode(exec.Command(tt.argv[0], tt.argv[1:]...).Run())
			if code != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ExitCode(%v) = %d, %v; want %d, error %v", tt.argv, code, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for bazel that prints its arguments and exits 3.
	fake := filepath.Join(dir, "bazel")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\"\npwd\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	b := &Bazel{Binary: fake, Bazelrc: "/rc", Root: "/root-dir", Dir: dir, Prefix: "unit", Log: &log}
	out, code, err := b.Run("test", "//:x")
	if err != nil || code != ExitTestsFailed {
		t.Fatalf("Run = %d, %v; want %d, nil", code, err, ExitTestsFailed)
	}
	if want := "--output_user_root=/root-dir --bazelrc=/rc test //:x\n" + dir + "\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if !strings.HasPrefix(log.String(), "unit: bazel test //:x → exit 3 in ") {
		t.Errorf("summary line %q", log.String())
	}
	if _, err := b.Info("bazel-testlogs"); err == nil || !strings.Contains(err.Error(), "exit 3") {
		t.Errorf("Info of a failing bazel: %v, want an error naming exit 3", err)
	}
	b.Binary = filepath.Join(dir, "missing")
	if _, _, err := b.Run("info"); err == nil {
		t.Error("Run of a missing binary: no error")
	}
}

func TestFind(t *testing.T) {
	t.Setenv(BazelEnv, "/opt/bazel")
	t.Setenv(BazelrcEnv, "/opt/rc")
	if bin, rc, err := Find(); bin != "/opt/bazel" || rc != "/opt/rc" || err != nil {
		t.Errorf("Find() = %q, %q, %v; want the variables' values", bin, rc, err)
	}
	t.Setenv(BazelEnv, "")
	t.Setenv("PATH", t.TempDir())
	if _, _, err := Find(); err == nil || !strings.Contains(err.Error(), BazelEnv) {
		t.Errorf("Find() without bazel: %v, want an error naming $%s", err, BazelEnv)
	}
}

func TestCopyTree(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   map[string]string
		want    map[string]string
		wantErr string
	}{
		{
			name:  "module",
			files: map[string]string{"MODULE.bazel": "local_path_override(\n    " + ModuleOverride + ",\n)\n", "pkg/BUILD.bazel": "x"},
			want:  map[string]string{"MODULE.bazel": "local_path_override(\n    path = \"/checkout\",\n)\n", "pkg/BUILD.bazel": "x"},
		},
		{
			name:  "overlay without a module file",
			files: map[string]string{"kvm/BUILD.bazel": "y"},
			want:  map[string]string{"kvm/BUILD.bazel": "y"},
		},
		{
			name:    "module without the override",
			files:   map[string]string{"MODULE.bazel": "module(name = \"x\")\n"},
			wantErr: "no " + ModuleOverride,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from, to := t.TempDir(), t.TempDir()
			for name, body := range tt.files {
				writeFile(t, filepath.Join(from, name), body)
			}
			err := CopyTree(from, to, "/checkout")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CopyTree: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(to, name))
				if err != nil || string(got) != want {
					t.Errorf("%s: %q, %v; want %q", name, got, err, want)
				}
			}
		})
	}
}

func TestRemoveAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	writeFile(t, filepath.Join(dir, "ro/file"), "x")
	if err := os.Chmod(filepath.Join(dir, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", dir, err)
	}
}

func TestCheckStatus(t *testing.T) {
	const out = `INFO: Build completed, 1 test FAILED, 12 total actions
//:fail_vm_test                                                          FAILED in 2.1s
  /out/testlogs/fail_vm_test/test.log
//:pass_vm_test                                                 (cached) PASSED in 1.3s
//:hang_vm_test                                                         TIMEOUT in 20.1s
`
	for _, tt := range []struct {
		name string
		want map[string]string
		bad  []string
	}{
		{name: "as reported", want: map[string]string{"//:pass_vm_test": "PASSED", "//:fail_vm_test": "FAILED", "//:hang_vm_test": "TIMEOUT"}},
		{name: "wrong status", want: map[string]string{"//:pass_vm_test": "FAILED"}, bad: []string{"//:pass_vm_test is not reported FAILED"}},
		{name: "absent target", want: map[string]string{"//kvm:kvm_vm_test": "FAILED"}, bad: []string{"//kvm:kvm_vm_test"}},
		{name: "prefix of a status", want: map[string]string{"//:fail_vm_test": "FAIL"}, bad: []string{"not reported FAIL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckStatus(out, tt.want)
			if len(tt.bad) == 0 {
				if err != nil {
					t.Errorf("CheckStatus: %v", err)
				}
				return
			}
			for _, b := range tt.bad {
				if err == nil || !strings.Contains(err.Error(), b) {
					t.Errorf("CheckStatus: %v, want an error with %q", err, b)
				}
			}
		})
	}
}

func TestLastLineTail(t *testing.T) {
	for in, want := range map[string]string{
		"WARNING: x\n/out/testlogs\n": "/out/testlogs",
		"one":                         "one",
		"":                            "",
		"a\n  b  \n\n":                "b",
	} {
		if got := LastLine(in); got != want {
			t.Errorf("LastLine(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", tailBytes) + "END"
	if got := Tail(long); !strings.HasPrefix(got, "...") || !strings.HasSuffix(got, "END") || len(got) != tailBytes+3 {
		t.Errorf("Tail of %d bytes: %d bytes, %q...", len(long), len(got), got[:10])
	}
	if got := Tail("short"); got != "short" {
		t.Errorf("Tail(short) = %q", got)
	}
}

func TestReadSpawns(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body string
		want       map[string]int
		wantErr    string
	}{
		{
			name: "stream",
			body: `{"mnemonic": "TestRunner", "runner": "remote", "targetLabel": "//:pass_vm_test", "digest": {"hash": "ab12", "sizeBytes": "140"}}
{"mnemonic": "GoLink", "runner": "remote", "cacheHit": true, "listedOutputs": ["bazel-out/x"]}
{"mnemonic": "GoLink", "remoteCacheHit": true}
{"mnemonic": "GoLink", "runner": "remote cache hit"}`,
			want: map[string]int{"TestRunner": 1, "GoLink": 3},
		},
		{name: "empty", body: "", wantErr: "no spawns"},
		{name: "garbled", body: `{"mnemonic": "x"} {`, wantErr: "spawn 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			writeFile(t, path, tt.body)
			spawns, err := ReadSpawns(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadSpawns: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := Count(spawns)
			for m, n := range tt.want {
				if got[m] != n {
					t.Errorf("%d %s spawns, want %d", got[m], m, n)
				}
			}
			if s := spawns[0]; s.Digest.Hash != "ab12" || s.Label() != "//:pass_vm_test" || s.CacheHit() {
				t.Errorf("first spawn %+v", s)
			}
			if !spawns[1].CacheHit() || !spawns[2].CacheHit() || !spawns[3].CacheHit() || spawns[1].Label() != "bazel-out/x" || spawns[2].Label() != "?" {
				t.Errorf("cache hits: %+v", spawns[1:])
			}
		})
	}
}

// Protobuf encoding, for building gRPC log entries by hand.
func msg(fields ...[]byte) []byte { return concat(fields...) }

func bytesField(num uint64, b []byte) []byte {
	out := binary.AppendUvarint(nil, num<<3|wireBytes)
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

func varintField(num, v uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, num<<3|wireVarint), v)
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func delimited(entries ...[]byte) []byte {
	var out []byte
	for _, e := range entries {
		out = append(binary.AppendUvarint(out, uint64(len(e))), e...)
	}
	return out
}

func digest(hash string) []byte {
	return msg(bytesField(digestHash, []byte(hash)), varintField(2, 140))
}

// operation is a google.longrunning.Operation for action hash; with a
// result when worker is not empty.
func operation(hash string, done bool, worker string, exit int32) []byte {
	md := bytesField(operationMetadata, msg(
		bytesField(1, []byte("type.googleapis.com/build.bazel.remote.execution.v2.ExecuteOperationMetadata")),
		bytesField(anyValue, msg(varintField(1, 4), bytesField(opMetadataAction, digest(hash)))),
	))
	op := concat(bytesField(1, []byte("operations/"+hash)), md)
	if done {
		op = concat(op, varintField(operationDone, 1))
	}
	if worker != "" {
		result := msg(
			bytesField(2, []byte("an output file")),
			varintField(resultExitCode, uint64(int64(exit))), // int32: negative values sign-extend
			bytesField(resultMetadata, msg(bytesField(executedMetadataWorker, []byte(worker)), bytesField(2, []byte("ts")))),
		)
		op = concat(op, bytesField(operationResponse, msg(
			bytesField(1, []byte("type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse")),
			bytesField(anyValue, msg(bytesField(responseResult, result), varintField(2, 0))),
		)))
	}
	return op
}

func entry(call uint64, details []byte) []byte {
	return msg(
		bytesField(3, []byte("build.bazel.remote.execution.v2.Execution/Execute")),
		bytesField(logEntryDetails, bytesField(call, details)),
	)
}

func TestParseExecutions(t *testing.T) {
	const kvm = `{"pool":"kvm","thread":"0","worker":"rules-go-vm-test-kvm-0"}`
	execute := func(reqHash string, ops ...[]byte) []byte {
		d := bytesField(detailsRequest, msg(bytesField(1, []byte("")), bytesField(requestActionDigest, digest(reqHash))))
		for _, op := range ops {
			d = concat(d, bytesField(detailsResponses, op))
		}
		return entry(callExecute, d)
	}
	for _, tt := range []struct {
		name    string
		log     []byte
		want    []Execution
		wantErr string
	}{
		{
			name: "execute: queued, executing, done",
			log: delimited(execute("aa",
				operation("aa", false, "", 0), operation("aa", false, "", 0), operation("aa", true, kvm, 66))),
			want: []Execution{{ActionHash: "aa", Worker: kvm, ExitCode: 66}},
		},
		{
			name: "wait execution: the digest from the operation's metadata",
			log:  delimited(entry(callWaitExecution, bytesField(detailsResponses, operation("bb", true, "w", 0)))),
			want: []Execution{{ActionHash: "bb", Worker: "w"}},
		},
		{
			name: "negative exit code",
			log:  delimited(execute("cc", operation("cc", true, "w", -1))),
			want: []Execution{{ActionHash: "cc", Worker: "w", ExitCode: -1}},
		},
		{
			name: "other calls and unfinished executions are left out",
			log: delimited(
				entry(10, msg(bytesField(1, []byte("find missing")))),
				execute("dd", operation("dd", false, "", 0)),
				execute("ee", operation("ee", true, "", 0)),
				execute("ff", operation("ff", true, "w2", 1)),
			),
			want: []Execution{{ActionHash: "ff", Worker: "w2", ExitCode: 1}},
		},
		{name: "empty log", log: nil},
		{
			name:    "a result for no action",
			log:     delimited(entry(callExecute, bytesField(detailsResponses, operation("", true, "w", 0)))),
			wantErr: "names no action digest",
		},
		{name: "truncated entry", log: delimited(execute("aa", operation("aa", true, kvm, 0)))[:20], wantErr: "entry 1: bad length prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "grpc.log")
			if err := os.WriteFile(path, tt.log, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadExecutions(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadExecutions: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ReadExecutions = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("execution %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
