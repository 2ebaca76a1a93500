// Command lcovmerger merges LCOV tracefiles for `bazel coverage`: it stands
// in for Bazel's CoverageOutputGenerator, a Java tool Bazel downloads
// (remote_coverage_tools) and which an offline machine does not have. It
// takes that tool's two command lines:
//
// As the per-test merger (--coverage_output_generator; collect_coverage.sh
// runs it after a passing test):
//
//	lcovmerger --coverage_dir=DIR --output_file=coverage.dat \
//	    [--filter_sources=REGEXP]... [--source_file_manifest=MANIFEST]
//
// merges every *.dat file below DIR, drops the source files matching a
// --filter_sources regexp and, when the manifest lists source files, those
// it does not list (the sources of the targets --instrumentation_filter
// selected).
//
// As the report generator (--coverage_report_generator; --combined_report=lcov):
//
//	lcovmerger --reports_file=LIST --output_file=_coverage_report.dat
//
// merges the tracefiles LIST names, one path a line.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rules-go-vm/rules_go_vm/runner/lcov"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lcovmerger:", err)
		os.Exit(1)
	}
}

// regexps is a repeatable flag of regular expressions.
type regexps []*regexp.Regexp

func (r *regexps) String() string { return fmt.Sprint(*r) }

func (r *regexps) Set(s string) error {
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		return err
	}
	*r = append(*r, re)
	return nil
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("lcovmerger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("coverage_dir", "", "merge every *.dat file below this directory")
	reports := fs.String("reports_file", "", "merge the tracefiles this file lists, one path a line")
	output := fs.String("output_file", "", "the merged tracefile to write")
	manifest := fs.String("source_file_manifest", "", "keep only the source files this file lists (when it lists any)")
	var filters regexps
	fs.Var(&filters, "filter_sources", "drop the source files matching this regexp (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output == "" || (*dir == "") == (*reports == "") {
		return errors.New("usage: --output_file=F and one of --coverage_dir=DIR or --reports_file=LIST")
	}
	var inputs []string
	var err error
	if *dir != "" {
		inputs, err = datFiles(*dir, *output)
	} else {
		inputs, err = readList(*reports)
	}
	if err != nil {
		return err
	}
	var r lcov.Report
	for _, in := range inputs {
		if err := readInto(&r, in); err != nil {
			return err
		}
	}
	keep, err := sourceFilter(*manifest, filters)
	if err != nil {
		return err
	}
	r.Filter(keep)
	return writeReport(&r, *output)
}

// datFiles lists the *.dat files below dir, but not output.
func datFiles(dir, output string) ([]string, error) {
	outAbs, _ := filepath.Abs(output)
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if abs, _ := filepath.Abs(p); !d.IsDir() && strings.HasSuffix(p, ".dat") && abs != outAbs {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--coverage_dir: %w", err)
	}
	return files, nil
}

// readList reads the non-empty lines of a file.
func readList(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--reports_file: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func readInto(r *lcov.Report, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.Read(bufio.NewReader(f), name)
}

// sourceFilter is the files to keep: not matching a filter and, when the
// manifest lists source files, listed there.
func sourceFilter(manifest string, filters regexps) (func(string) bool, error) {
	listed := map[string]bool{}
	if manifest != "" {
		names, err := readList(manifest)
		if err != nil {
			return nil, fmt.Errorf("--source_file_manifest: %w", err)
		}
		for _, n := range names {
			listed[n] = true
		}
	}
	return func(sf string) bool {
		for _, re := range filters {
			if re.MatchString(sf) {
				return false
			}
		}
		return len(listed) == 0 || listed[sf]
	}, nil
}

func writeReport(r *lcov.Report, name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := r.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
