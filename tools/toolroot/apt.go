package toolroot

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoMirror is returned when the host's apt configuration names no Debian
// archive that debootstrap could use.
var ErrNoMirror = errors.New("no Debian mirror found in the host's apt sources")

// AptSource is one enabled "deb" source of the host's apt configuration.
type AptSource struct {
	URI        string
	Suites     []string
	Components []string
	File       string
}

// ReadAptSources reads etcApt/sources.list, etcApt/sources.list.d/*.list
// (one-line format) and etcApt/sources.list.d/*.sources (deb822 format).
func ReadAptSources(etcApt string) ([]AptSource, error) {
	var out []AptSource
	files := []string{filepath.Join(etcApt, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, err := filepath.Glob(filepath.Join(etcApt, "sources.list.d", pat))
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f, ".sources") {
			out = append(out, parseDeb822(f, string(b))...)
		} else {
			out = append(out, parseOneLine(f, string(b))...)
		}
	}
	return out, nil
}

func parseOneLine(file, text string) []AptSource {
	var out []AptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options, e.g. [signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, AptSource{URI: f[0], Suites: []string{f[1]}, Components: f[2:], File: file})
	}
	return out
}

func parseDeb822(file, text string) []AptSource {
	var out []AptSource
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		if !containsWord(fields["types"], "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, AptSource{
				URI:        uri,
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				File:       file,
			})
		}
	}
	return out
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// DebianMirror picks the archive to debootstrap another suite from: the first
// source that carries a plain release suite (not -security, -updates or
// -backports) with the main component.
func DebianMirror(srcs []AptSource) (string, error) {
	for _, s := range srcs {
		if !containsWord(strings.Join(s.Components, " "), "main") {
			continue
		}
		for _, suite := range s.Suites {
			if strings.Contains(suite, "-") || strings.Contains(suite, "/") {
				continue
			}
			return strings.TrimSuffix(s.URI, "/"), nil
		}
	}
	return "", fmt.Errorf("%w: want a `deb` source with a release suite and the main component", ErrNoMirror)
}
