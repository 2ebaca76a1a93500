package dynlib

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// systemLookup resolves names in the host's multiarch library directory
// (the fake compiler of these tests).
func systemLookup(_, name string) (string, error) {
	for _, d := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return filepath.EvalSymlinks(p)
		}
	}
	return "", errors.New("not found")
}

// dynamicTool is a dynamically linked program of the host.
func dynamicTool(t *testing.T) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Fatalf("these tests read the x86_64 host's own programs; GOARCH is %s", runtime.GOARCH)
	}
	p, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	if in, err := Interp(p); err != nil || in == "" {
		t.Fatalf("%s: interpreter %q, %v: want a dynamic program", p, in, err)
	}
	return p
}

func TestNeeds(t *testing.T) {
	bin := dynamicTool(t)
	lookups := map[string]func(string, string) (string, error){"fake": systemLookup}
	if gcc, err := exec.LookPath("gcc"); err == nil {
		lookups["gcc"] = func(_, name string) (string, error) { return printFileName(gcc, name) }
	}
	for name, lookup := range lookups {
		t.Run(name, func(t *testing.T) {
			files, err := Needs(bin, Options{CC: "gcc", Lookup: lookup})
			if err != nil {
				t.Fatal(err)
			}
			dst := map[string]string{}
			for _, f := range files {
				dst[f.Dst] = f.Src
				if _, err := os.Stat(f.Src); err != nil {
					t.Errorf("%s: %v", f.Dst, err)
				}
			}
			for _, want := range []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"} {
				if _, ok := dst[want]; !ok {
					t.Errorf("no %s in %v", want, files)
				}
			}
		})
	}
}

func TestNeedsStatic(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := Interp(exe)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Needs(exe, Options{CC: "gcc", Lookup: systemLookup})
	if err != nil || (in == "") != (files == nil) {
		t.Fatalf("Needs(%s) = %v, %v (interpreter %q)", exe, files, err, in)
	}
}

func TestNeedsErrors(t *testing.T) {
	bin := dynamicTool(t)
	noLibc := func(cc, name string) (string, error) {
		if strings.HasPrefix(name, "libc.so") {
			return "", errors.New("not found")
		}
		return systemLookup(cc, name)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want error
		says string
	}{
		{"no compiler", Options{}, nil, "Options.CC is empty"},
		{"libc unknown", Options{CC: "aarch64-linux-gnu-gcc", Lookup: noLibc}, ErrUnresolved, "libc.so.6, needed by"},
	} {
		_, err := Needs(bin, tc.o)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Needs = %v, want an error saying %q", tc.name, err, tc.says)
		}
	}
}
