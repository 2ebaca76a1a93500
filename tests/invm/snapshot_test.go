package invm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/runner"
)

// templateOf is the template directory a snapshot start's log names.
var templateOf = regexp.MustCompile(`invm: start snapshot \(.*; template (\S+)\)`)

// clockSlack is how far apart a guest clock printed in whole seconds may
// be from the host's read just before the run, for the restored clock
// check: a rounding, not a timing.
const clockSlack = 1

// TestSnapshotIsolation restores one template three times: each restore
// must pass the payload that fails when an earlier run's file is there,
// say it started from the snapshot, draw other random bytes than the
// others, and have the host's clock (set from the layer), not the
// template's. (The clock check fails with the guest init's SetClock
// removed; the random one does not fail without the layer's seed on this
// host, whose guests also get RDRAND/RNDR and timing entropy after a
// restore, but guards the outcome that matters.)
func TestSnapshotIsolation(t *testing.T) {
	needEnv(t)
	randoms := map[string]bool{}
	var tmpl string
	for i := range 3 {
		if i == 2 {
			// The template's clock is now well behind the host's.
			time.Sleep(2 * time.Second)
		}
		start := time.Now().Unix()
		state := filepath.Join(t.TempDir(), "state")
		o := runInvm(t, state, nil, "-v", "-start", "snapshot", env.payload, "-test.run=^TestSnapshotIsolation$", "-test.v")
		if o.code != 0 {
			t.Fatalf("restore %d: exit %d\nstdout:\n%s\nstderr:\n%s", i, o.code, o.stdout, o.stderr)
		}
		m := templateOf.FindStringSubmatch(o.stderr)
		if m == nil {
			t.Fatalf("restore %d: no snapshot start in the log:\n%s", i, o.stderr)
		}
		if tmpl != "" && m[1] != tmpl {
			t.Errorf("restore %d: template %s, the first was %s", i, m[1], tmpl)
		}
		tmpl = m[1]
		r := field(t, o.stdout, "PAYLOAD-RANDOM")
		if randoms[r] {
			t.Errorf("restore %d: random bytes %s again: the pool was not reseeded", i, r)
		}
		randoms[r] = true
		clock, err := strconv.ParseInt(field(t, o.stdout, "PAYLOAD-CLOCK"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if clock < start-clockSlack {
			t.Errorf("restore %d: guest clock %d, the host's was %d before the run: the template's clock", i, clock, start)
		}
		assertClean(t, state)
	}
}

// field is the value after "NAME " on stdout's line starting with name.
func field(t *testing.T, stdout, name string) string {
	t.Helper()
	for _, line := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s line in stdout:\n%s", name, stdout)
	return ""
}

// copyTemplate makes a template (a snapshot start of the cache's) and
// returns a private copy of it.
func copyTemplate(t *testing.T) string {
	t.Helper()
	o := runInvm(t, "", nil, "-v", "-start", "snapshot", env.payload, "-test.run=^TestPass$")
	m := templateOf.FindStringSubmatch(o.stderr)
	if o.code != 0 || m == nil {
		t.Fatalf("making the template: exit %d\nstderr:\n%s", o.code, o.stderr)
	}
	dst := filepath.Join(t.TempDir(), "template")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(m[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(m[1], e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestSnapshotFallback: a template that must not be restored (made by
// another QEMU build) is refused with the reason logged, and a restore
// that fails (a broken state file) falls back to a cold boot; either way
// the test runs once and passes.
func TestSnapshotFallback(t *testing.T) {
	needEnv(t)
	for _, tc := range []struct {
		name   string
		spoil  func(t *testing.T, dir string)
		reason []string
	}{
		{
			name: "other QEMU build",
			spoil: func(t *testing.T, dir string) {
				editMeta(t, dir, func(m *runner.TemplateMeta) { m.QEMUBuildID = "0123456789abcdef" })
			},
			reason: []string{"made by QEMU build id 0123456789abcdef", "this QEMU's build id is", "invm: start cold ("},
		},
		{
			name: "broken state",
			spoil: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, runner.TemplateStateFile), 4096); err != nil {
					t.Fatal(err)
				}
			},
			reason: []string{"invm: start snapshot", "snapshot start failed before the guest spoke", "cold boot"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTemplate(t)
			tc.spoil(t, dir)
			state := filepath.Join(t.TempDir(), "state")
			o := runInvm(t, state, nil, "-v", "-start", "snapshot", "-template", dir, env.payload, "-test.run=^TestPass$", "-test.v")
			if o.code != 0 || strings.Count(o.stdout, "--- PASS: TestPass") != 1 {
				t.Errorf("exit %d, want one pass", o.code)
			}
			for _, w := range tc.reason {
				if !strings.Contains(o.stderr, w) {
					t.Errorf("the log lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
			}
			assertClean(t, state)
		})
	}
}

// editMeta rewrites the template.json of the template in dir.
func editMeta(t *testing.T, dir string, edit func(*runner.TemplateMeta)) {
	t.Helper()
	p := filepath.Join(dir, runner.TemplateMetaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m runner.TemplateMeta
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotParity runs scenarios after a cold boot and after a restore:
// the exit code and what the test says must be the same.
func TestSnapshotParity(t *testing.T) {
	needEnv(t)
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"pass", []string{"-test.run=^TestPass$", "-test.v"}, 0, []string{"PAYLOAD-STDOUT pass", "PAYLOAD-STDERR pass", "--- PASS: TestPass"}},
		{"failing test", []string{"-test.run=^TestFail$"}, 1, []string{"PAYLOAD failing on purpose", "FAIL"}},
		{"guest kernel panic", []string{"-test.run=^TestKernelPanic$"}, runner.ExitGuestPanic, []string{"guest kernel panic", "Kernel panic - not syncing"}},
		{"leaked child", []string{"-test.run=^TestLeakChild$"}, runner.ExitVerdictFail, []string{"leaked", "TestSleepForever"}},
		{"go test timeout", []string{"-test.run=^TestSleepForever$", "-test.timeout=3s"}, 2, []string{"panic: test timed out after 3s"}},
		{"outputs", []string{"-test.run=^TestOutputs$"}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, start := range []string{"cold", "snapshot"} {
				state := filepath.Join(t.TempDir(), "state")
				out := filepath.Join(t.TempDir(), "outputs")
				args := append([]string{"-v", "-start", start, "-memory", "128M", "-outputs-dir", out, env.payload}, tc.args...)
				o := runInvm(t, state, nil, args...)
				if o.code != tc.wantCode {
					t.Errorf("%s: exit %d, want %d", start, o.code, tc.wantCode)
				}
				for _, w := range append(tc.want, "invm: start "+start+" (") {
					if !strings.Contains(o.stdout+o.stderr, w) {
						t.Errorf("%s: output lacks %q", start, w)
					}
				}
				if tc.name == "outputs" {
					if b, err := os.ReadFile(filepath.Join(out, "report.txt")); err != nil || string(b) != "PAYLOAD-OUTPUT\n" {
						t.Errorf("%s: report.txt: %q %v", start, b, err)
					}
				}
				if t.Failed() {
					t.Logf("%s:\nstdout:\n%s\nstderr:\n%s", start, o.stdout, o.stderr)
					return
				}
				assertClean(t, state)
			}
		})
	}
}
