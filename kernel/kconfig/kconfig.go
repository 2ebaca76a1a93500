// Package kconfig parses, merges and verifies Linux kernel configuration
// fragments.
//
// A fragment is a file of .config lines, one concern per file:
//
//	CONFIG_X=y | m | n | "string" | 123 | 0x1f
//	# CONFIG_X is not set
//	# arch: x86_64 aarch64      (optional directive: only for these arches)
//	# any other comment
//
// Anything else is a syntax error reported with file:line; so is a comment
// that starts like an option ("# CONFIG_X ..." or "#CONFIG_X...") but is
// not the exact "is not set" form, because a typo there would silently drop
// the option.
//
// Fragments are merged in order (later wins; a conflicting value is recorded
// with both positions), the merged fragment is applied over `make
// tinyconfig`, and after `make olddefconfig` Check verifies that every
// requested option survived: Kconfig silently drops an option whose
// dependencies are not met, which is the usual failure.
package kconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

// Sentinel errors.
var (
	// ErrSyntax reports a malformed fragment or .config line.
	ErrSyntax = errors.New("malformed config line")
	// ErrNotSatisfied reports requested options that did not survive
	// olddefconfig; the error is a *CheckError.
	ErrNotSatisfied = errors.New("requested kernel options did not survive olddefconfig")
)

// Pos is a position in a fragment.
type Pos struct {
	File string
	Line int
}

// String returns "file:line".
func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Option is one option setting. Name has no CONFIG_ prefix; Value is "y",
// "m", "n", a quoted string exactly as written (escapes kept) or a number.
type Option struct {
	Name  string
	Value string
	Pos   Pos
}

// String returns the .config spelling of the option.
func (o Option) String() string {
	if o.Value == "n" {
		return "# CONFIG_" + o.Name + " is not set"
	}
	return "CONFIG_" + o.Name + "=" + o.Value
}

// Fragment is a parsed fragment file.
type Fragment struct {
	// Name identifies the fragment in messages (usually its file name).
	Name string
	// Content is the raw text (hashed for build cache keys).
	Content []byte
	// Arches lists the architectures from "# arch:" directives; empty
	// means every architecture.
	Arches []string
	// Options in file order.
	Options []Option
}

// AppliesTo reports whether the fragment is meant for arch.
func (f *Fragment) AppliesTo(arch string) bool {
	if len(f.Arches) == 0 {
		return true
	}
	for _, a := range f.Arches {
		if a == arch {
			return true
		}
	}
	return false
}

var (
	nameRE      = `[A-Za-z0-9_]+`
	assignRE    = regexp.MustCompile(`^CONFIG_(` + nameRE + `)=(.*)$`)
	notSetRE    = regexp.MustCompile(`^# CONFIG_(` + nameRE + `) is not set$`)
	optLikeRE   = regexp.MustCompile(`^#\s*CONFIG_`)
	archRE      = regexp.MustCompile(`^#\s*arch:(.*)$`)
	numberRE    = regexp.MustCompile(`^(-?[0-9]+|0[xX][0-9a-fA-F]+)$`)
	stringValRE = regexp.MustCompile(`^"([^"\\]|\\.)*"$`)
)

// validValue reports whether v is a well-formed option value.
func validValue(v string) bool {
	switch v {
	case "y", "m", "n":
		return true
	}
	return numberRE.MatchString(v) || stringValRE.MatchString(v)
}

// Parse parses a fragment read from r; name is used in positions and
// errors. Errors wrap ErrSyntax and carry file:line.
func Parse(name string, r io.Reader) (*Fragment, error) {
	content, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &Fragment{Name: name, Content: content}
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		pos := Pos{File: name, Line: n}
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			if m := notSetRE.FindStringSubmatch(line); m != nil {
				f.Options = append(f.Options, Option{Name: m[1], Value: "n", Pos: pos})
			} else if optLikeRE.MatchString(line) {
				return nil, fmt.Errorf("%s: %w: %q: a commented option must read \"# CONFIG_NAME is not set\"", pos, ErrSyntax, line)
			} else if m := archRE.FindStringSubmatch(line); m != nil {
				arches := strings.Fields(m[1])
				if len(arches) == 0 {
					return nil, fmt.Errorf("%s: %w: %q: empty arch directive", pos, ErrSyntax, line)
				}
				f.Arches = append(f.Arches, arches...)
			}
		default:
			m := assignRE.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: %w: %q: want CONFIG_NAME=VALUE or \"# CONFIG_NAME is not set\"", pos, ErrSyntax, line)
			}
			if !validValue(m[2]) {
				return nil, fmt.Errorf("%s: %w: %q: value must be y, m, n, a number or a double-quoted string", pos, ErrSyntax, line)
			}
			f.Options = append(f.Options, Option{Name: m[1], Value: m[2], Pos: pos})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// ParseFS parses the named files of fsys, in the given order.
func ParseFS(fsys fs.FS, names ...string) ([]*Fragment, error) {
	var frags []*Fragment
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		f, err := Parse(n, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		frags = append(frags, f)
	}
	return frags, nil
}

// LoadDir parses every *.config file at the top of fsys, sorted by name
// (name fragments "00-base.config", "90-disable.config", ... to order them).
func LoadDir(fsys fs.FS) ([]*Fragment, error) {
	names, err := fs.Glob(fsys, "*.config")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.config fragments: %w", fs.ErrNotExist)
	}
	sort.Strings(names)
	return ParseFS(fsys, names...)
}

// Conflict records an option set to different values, by Earlier and
// then by Later (which wins).
type Conflict struct {
	Earlier, Later Option
}

// String describes the conflict with both positions.
func (c Conflict) String() string {
	return fmt.Sprintf("CONFIG_%s: %s sets %s, %s sets %s (the later wins)",
		c.Later.Name, c.Earlier.Pos, c.Earlier.Value, c.Later.Pos, c.Later.Value)
}

// Merged is the result of merging fragments.
type Merged struct {
	// Options holds the final value of every option, sorted by name, each
	// with the position it came from.
	Options []Option
	// Conflicts lists options set to different values, in merge order.
	Conflicts []Conflict
}

// Merge merges fragments in order; a later value overrides an earlier one
// and a differing value is recorded as a Conflict. Setting the same value
// twice is not a conflict (the first position is kept).
func Merge(frags ...*Fragment) *Merged {
	byName := map[string]Option{}
	m := &Merged{}
	for _, f := range frags {
		for _, o := range f.Options {
			old, ok := byName[o.Name]
			if ok && old.Value == o.Value {
				continue
			}
			if ok {
				m.Conflicts = append(m.Conflicts, Conflict{Earlier: old, Later: o})
			}
			byName[o.Name] = o
		}
	}
	for _, o := range byName {
		m.Options = append(m.Options, o)
	}
	sort.Slice(m.Options, func(i, j int) bool { return m.Options[i].Name < m.Options[j].Name })
	return m
}

// WriteTo writes the merged fragment, one option per line preceded by a
// comment naming its origin, ready to append to a tinyconfig .config.
func (m *Merged) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	b.WriteString("# Merged by rules_go_vm kernel/kconfig.\n")
	for _, o := range m.Options {
		fmt.Fprintf(&b, "# from %s\n%s\n", o.Pos, o)
	}
	return b.WriteTo(w)
}

// ParseConfig parses a full .config (as written by olddefconfig) into a map
// from option name (no CONFIG_ prefix) to value ("n" for "is not set").
func ParseConfig(name string, r io.Reader) (map[string]string, error) {
	f, err := Parse(name, r)
	if err != nil {
		return nil, err
	}
	cfg := make(map[string]string, len(f.Options))
	for _, o := range f.Options {
		cfg[o.Name] = o.Value
	}
	return cfg, nil
}

// Problem is a requested option that did not survive.
type Problem struct {
	// Want is the requested option, with the fragment position.
	Want Option
	// Got is the final value ("n" for "is not set"); "" if absent.
	Got string
}

// String describes the problem and its likely cause.
func (p Problem) String() string {
	switch {
	case p.Got == "":
		return fmt.Sprintf("%s (%s): absent from the final .config: its dependencies are not met (or the option does not exist in this kernel version)", p.Want, p.Want.Pos)
	case p.Got == "n":
		return fmt.Sprintf("%s (%s): ended up not set: a dependency is missing (see its \"depends on\" in Kconfig) or it is forced off", p.Want, p.Want.Pos)
	case p.Want.Value == "n":
		return fmt.Sprintf("%s (%s): ended up as %s: another option selects it", p.Want, p.Want.Pos, p.Got)
	default:
		return fmt.Sprintf("%s (%s): ended up as %s: a dependency limits it, or the value is out of range", p.Want, p.Want.Pos, p.Got)
	}
}

// CheckError lists every requested option that did not survive.
type CheckError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *CheckError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s (usually a missing dependency: add it to a fragment):", len(e.Problems), ErrNotSatisfied)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotSatisfied) true.
func (e *CheckError) Is(target error) bool { return target == ErrNotSatisfied }

// Check verifies that every option of want has its requested value in the
// final configuration cfg (from ParseConfig). A requested "n" is satisfied
// by an absent option (Kconfig omits invisible options, which are off).
// The error is a *CheckError listing every problem.
func Check(want []Option, cfg map[string]string) error {
	var e CheckError
	for _, o := range want {
		got, ok := cfg[o.Name]
		switch {
		case o.Value == "n" && (!ok || got == "n"):
		case ok && got == o.Value:
		default:
			e.Problems = append(e.Problems, Problem{Want: o, Got: got})
		}
	}
	if len(e.Problems) > 0 {
		return &e
	}
	return nil
}
