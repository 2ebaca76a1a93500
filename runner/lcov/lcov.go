// Package lcov reads, merges, filters and writes LCOV tracefiles (the
// format of Bazel's coverage.dat): the line (DA), function (FN, FNDA) and
// branch (BRDA) records of each source file (SF). Merging sums the counts
// of the same file, line, function or branch, as Bazel's own merger does;
// the summary records (LF, LH, FNF, FNH, BRF, BRH) are recomputed on
// output.
package lcov

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every error about a malformed tracefile.
var ErrSyntax = errors.New("lcov: malformed tracefile")

// Report is a set of source files' coverage. The zero value is empty and
// ready to use.
type Report struct {
	files map[string]*file
}

type file struct {
	lines    map[int]int64
	funcLine map[string]int
	funcHits map[string]int64
	branches map[branch]int64 // -1: the branch's block never ran ("-")
}

type branch struct{ line, block, branch int }

func newFile() *file {
	return &file{lines: map[int]int64{}, funcLine: map[string]int{}, funcHits: map[string]int64{}, branches: map[branch]int64{}}
}

// Files returns the names (SF) of the report's source files, sorted.
func (r *Report) Files() []string {
	names := make([]string, 0, len(r.files))
	for n := range r.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lines returns the line counts (DA) of a source file: line number to
// hits; nil when the report has no such file.
func (r *Report) Lines(name string) map[int]int64 {
	if f := r.files[name]; f != nil {
		return f.lines
	}
	return nil
}

// Read parses a tracefile and merges it into r; name names the input in
// errors. Records it does not know (TN, VER, the summaries) are skipped.
func (r *Report) Read(in io.Reader, name string) error {
	if r.files == nil {
		r.files = map[string]*file{}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur *file
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, ":")
		if key == "SF" {
			if cur = r.files[val]; cur == nil {
				cur = newFile()
				r.files[val] = cur
			}
			continue
		}
		if key == "end_of_record" {
			cur = nil
			continue
		}
		if cur == nil || line == "" {
			continue
		}
		if err := cur.record(key, val); err != nil {
			return fmt.Errorf("%w: %s:%d: %q: %v", ErrSyntax, name, n, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("lcov: read %s: %w", name, err)
	}
	return nil
}

// record merges one record of a source file's section.
func (f *file) record(key, val string) error {
	fields := strings.Split(val, ",")
	switch key {
	case "DA": // DA:line,hits[,checksum]
		if len(fields) < 2 || len(fields) > 3 {
			return errors.New("want DA:line,hits")
		}
		n, err := counts(fields[:2])
		if err != nil {
			return err
		}
		f.lines[int(n[0])] += n[1]
	case "FN": // FN:line,name or FN:line,endline,name
		if len(fields) < 2 {
			return errors.New("want FN:line,name")
		}
		l, err := strconv.Atoi(fields[0])
		if err != nil {
			return err
		}
		fn := fields[len(fields)-1]
		f.funcLine[fn] = l
		f.funcHits[fn] += 0
	case "FNDA": // FNDA:hits,name
		if len(fields) != 2 {
			return errors.New("want FNDA:hits,name")
		}
		h, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return err
		}
		f.funcHits[fields[1]] += h
	case "BRDA": // BRDA:line,block,branch,taken ("-": never reached)
		if len(fields) != 4 {
			return errors.New("want BRDA:line,block,branch,taken")
		}
		n, err := counts(fields[:3])
		if err != nil {
			return err
		}
		return f.branch(branch{int(n[0]), int(n[1]), int(n[2])}, fields[3])
	}
	return nil
}

func (f *file) branch(b branch, taken string) error {
	prev, seen := f.branches[b]
	if taken == "-" {
		if !seen {
			f.branches[b] = -1
		}
		return nil
	}
	t, err := strconv.ParseInt(taken, 10, 64)
	if err != nil {
		return err
	}
	f.branches[b] = max(prev, 0) + t
	return nil
}

// counts parses fields as non-negative numbers.
func counts(fields []string) ([]int64, error) {
	n := make([]int64, len(fields))
	for i, s := range fields {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("field %d: %q is not a count", i+1, s)
		}
		n[i] = v
	}
	return n, nil
}

// Filter keeps the source files for which keep is true.
func (r *Report) Filter(keep func(name string) bool) {
	for n := range r.files {
		if !keep(n) {
			delete(r.files, n)
		}
	}
}

// Write writes r as a tracefile, files sorted by name, each with its
// function, branch and line records (sorted) and their summaries.
func (r *Report) Write(out io.Writer) error {
	w := bufio.NewWriter(out)
	for _, name := range r.Files() {
		r.files[name].write(w, name)
	}
	return w.Flush()
}

func (f *file) write(w *bufio.Writer, name string) {
	fmt.Fprintf(w, "SF:%s\n", name)
	fns := make([]string, 0, len(f.funcHits))
	for fn := range f.funcHits {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool {
		if a, b := f.funcLine[fns[i]], f.funcLine[fns[j]]; a != b {
			return a < b
		}
		return fns[i] < fns[j]
	})
	hit := 0
	for _, fn := range fns {
		if l, ok := f.funcLine[fn]; ok {
			fmt.Fprintf(w, "FN:%d,%s\n", l, fn)
		}
	}
	for _, fn := range fns {
		fmt.Fprintf(w, "FNDA:%d,%s\n", f.funcHits[fn], fn)
		if f.funcHits[fn] > 0 {
			hit++
		}
	}
	if len(fns) > 0 {
		fmt.Fprintf(w, "FNF:%d\nFNH:%d\n", len(fns), hit)
	}
	f.writeBranches(w)
	lines := make([]int, 0, len(f.lines))
	for l := range f.lines {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	hit = 0
	for _, l := range lines {
		fmt.Fprintf(w, "DA:%d,%d\n", l, f.lines[l])
		if f.lines[l] > 0 {
			hit++
		}
	}
	fmt.Fprintf(w, "LH:%d\nLF:%d\nend_of_record\n", hit, len(lines))
}

func (f *file) writeBranches(w *bufio.Writer) {
	if len(f.branches) == 0 {
		return
	}
	bs := make([]branch, 0, len(f.branches))
	for b := range f.branches {
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.line != b.line {
			return a.line < b.line
		}
		if a.block != b.block {
			return a.block < b.block
		}
		return a.branch < b.branch
	})
	hit := 0
	for _, b := range bs {
		taken := "-"
		if t := f.branches[b]; t >= 0 {
			taken = strconv.FormatInt(t, 10)
			if t > 0 {
				hit++
			}
		}
		fmt.Fprintf(w, "BRDA:%d,%d,%d,%s\n", b.line, b.block, b.branch, taken)
	}
	fmt.Fprintf(w, "BRF:%d\nBRH:%d\n", len(bs), hit)
}
