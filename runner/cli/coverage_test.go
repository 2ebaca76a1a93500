package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/runner"
)

func TestPlanCoverage(t *testing.T) {
	wd, _ := os.Getwd()
	const g = runner.GuestCoverageDir
	for _, tc := range []struct {
		name        string
		args        []string
		gocoverdir  string // $GOCOVERDIR
		wantArgs    []string
		wantDir     string
		wantProfile string
		none        bool // no coverage: options untouched
	}{
		{name: "none", args: []string{"-test.v=true"}, wantArgs: []string{"-test.v=true"}, none: true},
		{
			name:        "go test -cover -coverprofile",
			args:        []string{"-test.paniconexit0", "-test.gocoverdir=/tmp/b001/gocoverdir", "-test.timeout=10m0s", "-test.coverprofile=/tmp/b001/_cover_.out"},
			gocoverdir:  "/tmp/b001/gocoverdir",
			wantArgs:    []string{"-test.paniconexit0", "-test.gocoverdir=" + g, "-test.timeout=10m0s", "-test.coverprofile=" + g + "/" + GuestCoverProfile},
			wantDir:     "/tmp/b001/gocoverdir",
			wantProfile: "/tmp/b001/_cover_.out",
		},
		{
			name:        "two-argument forms, relative profile",
			args:        []string{"--test.coverprofile", "c.out", "-test.gocoverdir", "d"},
			wantArgs:    []string{"-test.coverprofile=" + g + "/" + GuestCoverProfile, "-test.gocoverdir=" + g},
			wantDir:     "d",
			wantProfile: filepath.Join(wd, "c.out"),
		},
		{
			name:       "GOCOVERDIR only",
			args:       []string{"-test.run=X"},
			gocoverdir: "/tmp/cov",
			wantArgs:   []string{"-test.run=X"},
			wantDir:    "/tmp/cov",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := runner.Options{Args: tc.args, Env: []string{"A=1"}}
			c, err := planCoverage(&o, func(k string) string { return map[string]string{"GOCOVERDIR": tc.gocoverdir}[k] })
			if err != nil {
				t.Fatal(err)
			}
			if tc.none {
				if c != nil || o.CoverageDir != "" || !slices.Equal(o.Env, []string{"A=1"}) {
					t.Errorf("coverage %+v, dir %q, env %q: want none", c, o.CoverageDir, o.Env)
				}
				return
			}
			defer os.RemoveAll(c.staging)
			if !slices.Equal(o.Args, tc.wantArgs) || c.dir != tc.wantDir || c.profile != tc.wantProfile {
				t.Errorf("args %q dir %q profile %q; want %q %q %q", o.Args, c.dir, c.profile, tc.wantArgs, tc.wantDir, tc.wantProfile)
			}
			if o.CoverageDir != c.staging || !slices.Equal(o.Env, []string{"A=1", "GOCOVERDIR=" + g}) {
				t.Errorf("coverage dir %q (staging %q), env %q", o.CoverageDir, c.staging, o.Env)
			}
		})
	}
	o := runner.Options{Args: []string{"-test.coverprofile"}}
	if _, err := planCoverage(&o, func(string) string { return "" }); !errors.Is(err, runner.ErrInvalidOptions) {
		t.Errorf("-test.coverprofile without a value: %v", err)
	}
}

// TestCopyBack: the guest's profile goes to -test.coverprofile's path, its
// other files to the coverage directory, and the staging directory goes.
func TestCopyBack(t *testing.T) {
	dir := t.TempDir()
	c := &coverage{dir: filepath.Join(dir, "gocoverdir"), profile: filepath.Join(dir, "out", "c.out"), staging: filepath.Join(dir, "staging")}
	for name, text := range map[string]string{GuestCoverProfile: "mode: set\n", "covmeta.1": "m", "covcounters.1.2.3": "c"} {
		if err := os.MkdirAll(c.staging, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.staging, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.copyBack(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{c.profile: "mode: set\n", filepath.Join(c.dir, "covmeta.1"): "m", filepath.Join(c.dir, "covcounters.1.2.3"): "c"} {
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", path, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, GuestCoverProfile)); err == nil {
		t.Error("the profile also landed in the coverage directory")
	}
	if _, err := os.Stat(c.staging); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory left: %v", err)
	}
}
