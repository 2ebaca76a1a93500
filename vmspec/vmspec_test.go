package vmspec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
	"github.com/rules-go-vm/rules_go_vm/vmspec/vmspectest"
)

// resolve applies a case's settings the way every front door does.
func resolve(c vmspectest.Case) (vmspec.Shape, error) {
	var s vmspec.Shape
	for _, st := range c.Settings {
		if err := s.Set(st.Field, st.Value); err != nil {
			return s, err
		}
	}
	s = s.Defaults()
	return s, s.Validate()
}

func TestCases(t *testing.T) {
	for _, c := range vmspectest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := resolve(c)
			if c.Error == "" {
				if err != nil {
					t.Fatalf("valid case: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.Error) {
				t.Fatalf("error %v, want %q", err, c.Error)
			}
			var fe *vmspec.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, vmspec.ErrInvalid) {
				t.Errorf("error %v is not a *FieldError wrapping ErrInvalid", err)
			}
		})
	}
}

// TestRoundTrip: the resolved text form of every field parses back to the
// same shape (what `invm -v` prints can be written back).
func TestRoundTrip(t *testing.T) {
	for _, c := range vmspectest.Cases {
		s, err := resolve(c)
		if err != nil {
			continue
		}
		var back vmspec.Shape
		for _, f := range vmspec.Fields {
			if err := back.Set(f.Name, s.Get(f.Name)); err != nil {
				t.Fatalf("%s: %s=%q: %v", c.Name, f.Name, s.Get(f.Name), err)
			}
		}
		if back.String() != s.String() {
			t.Errorf("%s: %s != %s", c.Name, back, s)
		}
	}
}

func TestDefaultsAreFieldDefaults(t *testing.T) {
	s := vmspec.Shape{}.Defaults()
	for _, f := range vmspec.Fields {
		if f.Default != "" && s.Get(f.Name) != f.Default {
			t.Errorf("%s: Defaults() gives %q, the field says %q", f.Name, s.Get(f.Name), f.Default)
		}
	}
}

func TestSetErrors(t *testing.T) {
	for _, tc := range []struct{ field, value, want string }{
		{"colour", "red", `unknown field "colour"`},
		{"iommu", "yes", `iommu: "yes" is not a boolean; use true or false`},
		{"cpus", "two", `cpus: "two" is not a whole number from 1 to 64`},
		{"memory", "-64M", `memory: "-64M" is not a size`},
		{"memory", "+64M", `memory: "+64M" is not a size`},
		{"memory", "99999999999999999999G", `is out of range`},
		{"guest_hugepages", "2M:-1", `write SIZE:COUNT`},
		{"guest_hugepages", "2M:99999999999999999999", `write SIZE:COUNT`},
	} {
		var s vmspec.Shape
		if err := s.Set(tc.field, tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%s, %q) = %v, want %q", tc.field, tc.value, err, tc.want)
		}
	}
	var s vmspec.Shape
	for _, name := range []string{"hugepages", "guest-hugepages", "mgmt-nic", "host-pages"} {
		if _, ok := vmspec.Lookup(name); !ok {
			t.Errorf("Lookup(%q) failed", name)
		}
	}
	if err := s.Set("iommu", ""); err != nil || !s.IOMMU {
		t.Errorf("a bare iommu: %v %v", err, s.IOMMU)
	}
}

func TestFormatMiB(t *testing.T) {
	for mib, want := range map[int]string{64: "64M", 1024: "1G", 1536: "1536M", 3072: "3G"} {
		if got := vmspec.FormatMiB(mib); got != want {
			t.Errorf("FormatMiB(%d) = %s, want %s", mib, got, want)
		}
		if back, err := vmspec.ParseMemory(want); err != nil || back != mib {
			t.Errorf("ParseMemory(%s) = %d, %v", want, back, err)
		}
	}
}
