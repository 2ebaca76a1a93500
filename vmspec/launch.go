package vmspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Launch is what a go_vm_test target hands to its launcher
// (runner/cmd/vmtest): the Shape in its text form, as the user wrote it,
// and what to boot and run. The rule writes it as JSON into the test's
// runfiles; paths in it are runfiles paths ("_main/pkg/x") except Test and
// WorkDir, which are paths inside the guest. Parse re-checks every field
// with the same parsers the rule's constants come from, so a hand-written
// or stale file fails naming the field, never with a confusing boot
// failure.
type Launch struct {
	// Arch is the guest arch, from the target platform.
	Arch string `json:"arch"`
	// Shape holds the shape fields by name (Fields): a list for a
	// KindStringList field, the text form (a JSON string) for the others.
	Shape map[string]json.RawMessage `json:"shape"`
	// Kernel and KernelManifest are the guest kernel and its build
	// manifest.
	Kernel         string `json:"kernel"`
	KernelManifest string `json:"kernel_manifest,omitempty"`
	// Layers are the initramfs layers: the base layer first.
	Layers []string `json:"layers"`
	// Env and Args reach the test in the guest.
	Env  map[string]string `json:"env"`
	Args []string          `json:"args"`
	// Test is the test binary's path in the guest; WorkDir its working
	// directory there.
	Test    string `json:"test"`
	WorkDir string `json:"workdir"`
	// Template is the snapshot-start template of the VM (a directory made
	// by runner/cmd/mktemplate), "" for none: the launcher restores it
	// when the shape's start allows, else boots cold.
	Template string `json:"template,omitempty"`
	// NoTemplate is why the build made no template for a start = "auto"
	// VM (e.g. its shape is not the shared template's): the launcher
	// boots cold and its log says this reason.
	NoTemplate string `json:"no_template,omitempty"`
}

// Resolve parses the shape fields and the arch and applies the defaults.
func (l Launch) Resolve() (Shape, error) {
	s := Shape{Arch: l.Arch}
	var errs []error
	for _, f := range Fields {
		raw, ok := l.Shape[f.Name]
		if !ok {
			continue
		}
		if err := setRaw(&s, f, raw); err != nil {
			errs = append(errs, err)
		}
	}
	for name := range l.Shape {
		if _, ok := Lookup(name); !ok {
			errs = append(errs, fmt.Errorf("%w: shape: unknown field %q; known: %s", ErrInvalid, name, FieldNames()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Shape{}, err
	}
	s = s.Defaults()
	return s, s.Validate()
}

// setRaw sets field f from its JSON value in a launch file.
func setRaw(s *Shape, f Field, raw json.RawMessage) error {
	if f.Kind == KindStringList {
		var items []string
		if err := json.Unmarshal(raw, &items); err != nil {
			return fieldErr(f.Name, "want a list of strings: %s", err.Error())
		}
		return s.SetList(f.Name, items)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return fieldErr(f.Name, "want its text form as a string, e.g. \"%s\": %s", f.Example, err.Error())
	}
	return s.Set(f.Name, v)
}

// Validate checks the fields that are not the shape's.
func (l Launch) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fieldErr(field, format, a...))
	}
	if err := CheckArch(l.Arch); err != nil {
		errs = append(errs, err)
	}
	if l.Kernel == "" {
		bad("kernel", "is empty; name the kernel image")
	}
	if len(l.Layers) == 0 {
		bad("layers", "is empty; the base layer (guest init) is required")
	}
	if !strings.HasPrefix(l.Test, "/") {
		bad("test", "%q must be an absolute path in the guest", l.Test)
	}
	if l.WorkDir != "" && !strings.HasPrefix(l.WorkDir, "/") {
		bad("workdir", "%q must be an absolute path in the guest", l.WorkDir)
	}
	return errors.Join(errs...)
}

// Parse decodes a launch file strictly (unknown fields are errors),
// validates it and resolves its shape.
func Parse(b []byte) (Launch, Shape, error) {
	var l Launch
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Launch{}, Shape{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s, err := l.Resolve()
	if err := errors.Join(l.Validate(), err); err != nil {
		return Launch{}, Shape{}, err
	}
	return l, s, nil
}

// Read reads and parses the launch file at path.
func Read(path string) (Launch, Shape, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Launch{}, Shape{}, err
	}
	l, s, err := Parse(b)
	if err != nil {
		return Launch{}, Shape{}, fmt.Errorf("%s: %w", path, err)
	}
	return l, s, nil
}
