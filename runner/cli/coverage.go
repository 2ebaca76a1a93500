package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/runner"
)

// GuestCoverProfile is the name, in the guest's coverage directory
// (runner.GuestCoverageDir), of the profile a -test.coverprofile asks for;
// the other files there are -test.gocoverdir's.
const GuestCoverProfile = "invm.coverprofile"

// coverage is where the test's coverage goes on the host: what `go test
// -cover` asked the test binary for (-test.gocoverdir, -test.coverprofile,
// $GOCOVERDIR), which the guest writes into runner.GuestCoverageDir and
// copyBack then puts at these paths.
type coverage struct {
	dir     string // -test.gocoverdir, else $GOCOVERDIR: covmeta.* and covcounters.* files
	profile string // -test.coverprofile, absolute
	staging string // Options.CoverageDir: the guest's files, before copyBack
}

// planCoverage rewrites o.Args' coverage flags to guest paths and, when
// there are any (or $GOCOVERDIR is set), gives the run a coverage directory
// and the guest test $GOCOVERDIR (where Go's runtime writes the counters
// of a test binary that exits early). With none, o is left as it was.
func planCoverage(o *runner.Options, getenv func(string) string) (*coverage, error) {
	c := &coverage{}
	var args []string
	for i := 0; i < len(o.Args); i++ {
		name, val, hasVal := testFlag(o.Args[i])
		if name != "test.gocoverdir" && name != "test.coverprofile" {
			args = append(args, o.Args[i])
			continue
		}
		if !hasVal {
			if i+1 == len(o.Args) {
				return nil, fmt.Errorf("%w: -%s needs a value", runner.ErrInvalidOptions, name)
			}
			i++
			val = o.Args[i]
		}
		guest := runner.GuestCoverageDir
		if name == "test.coverprofile" {
			abs, err := filepath.Abs(val)
			if err != nil {
				return nil, fmt.Errorf("%w: -test.coverprofile %q: %v", runner.ErrInvalidOptions, val, err)
			}
			c.profile, guest = abs, runner.GuestCoverageDir+"/"+GuestCoverProfile
		} else {
			c.dir = val
		}
		args = append(args, "-"+name+"="+guest)
	}
	if c.dir == "" {
		c.dir = getenv("GOCOVERDIR")
	}
	if c.dir == "" && c.profile == "" {
		return nil, nil
	}
	staging, err := os.MkdirTemp("", "invm-coverage-")
	if err != nil {
		return nil, fmt.Errorf("%w: coverage staging directory: %v", runner.ErrInternal, err)
	}
	c.staging = staging
	o.Args, o.CoverageDir = args, staging
	o.Env = append(o.Env, "GOCOVERDIR="+runner.GuestCoverageDir)
	return c, nil
}

// testFlag splits a test binary argument "-test.x=v" (or "--test.x") into
// its name and value.
func testFlag(a string) (name, val string, hasVal bool) {
	if !strings.HasPrefix(a, "-") {
		return "", "", false
	}
	return strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
}

// copyBack puts the guest's coverage files at the host paths the test was
// given, whatever the run's outcome (a test that crashed still has the
// counters Go's runtime wrote on its way out), and removes the staging
// directory.
func (c *coverage) copyBack() error {
	defer os.RemoveAll(c.staging)
	entries, err := os.ReadDir(c.staging)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		src := filepath.Join(c.staging, e.Name())
		switch {
		case e.Name() == GuestCoverProfile && c.profile != "":
			errs = append(errs, copyFile(src, c.profile))
		case e.Name() != GuestCoverProfile && c.dir != "":
			errs = append(errs, copyFile(src, filepath.Join(c.dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy coverage to %s: %w", dst, err)
	}
	return out.Close()
}
