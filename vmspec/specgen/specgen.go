// Package specgen renders package vmspec for Starlark, which cannot import
// Go: rules/private/spec.bzl (the spec's field names, allowed values,
// limits, defaults, docs and message templates, which go_vm_test's
// analysis-time checks use) and tests/analysis/spec_cases.bzl (the shared
// table of cases, for the rule's analysis tests). `go run
// ./vmspec/cmd/specgen` writes both; //tools/lint fails when they drift.
package specgen

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/bazelbuild/buildtools/build"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
	"github.com/rules-go-vm/rules_go_vm/vmspec/vmspectest"
)

// Files maps each generated file's workspace path to its renderer.
var Files = map[string]func() ([]byte, error){
	"rules/private/spec.bzl":        SpecBzl,
	"tests/analysis/spec_cases.bzl": CasesBzl,
}

const header = "# Generated from package vmspec by `go run ./vmspec/cmd/specgen`: do not edit.\n"

// SpecBzl renders rules/private/spec.bzl.
func SpecBzl() ([]byte, error) {
	var b strings.Builder
	b.WriteString(`"""The VM spec for Starlark: names, allowed values, limits, defaults, docs and messages (package vmspec)."""` + "\n\n")
	b.WriteString(header + "\n")
	lists := []struct {
		name   string
		values []string
	}{
		{"ARCHES", vmspec.Arches}, {"BACKENDS", vmspec.Backends}, {"ACCELS", vmspec.Accels},
		{"NIC_MODELS", vmspec.NICModels}, {"HOST_PAGE_SIZES", vmspec.HostPageSizes},
		{"HUGEPAGE_SIZES", vmspec.HugepageSizes}, {"TRANSPORTS", vmspec.Transports},
		{"STARTS", vmspec.Starts},
	}
	for _, l := range lists {
		fmt.Fprintf(&b, "%s = %s\n\n", l.name, strList(l.values))
	}
	ints := []struct {
		name string
		v    int
	}{
		{"MIN_MEMORY_MIB", vmspec.MinMemoryMiB}, {"MAX_MEMORY_MIB", vmspec.MaxMemoryMiB},
		{"MIN_CPUS", vmspec.MinCPUs}, {"MAX_CPUS", vmspec.MaxCPUs}, {"MAX_NICS", vmspec.MaxNICs},
		{"HUGEPAGE_MARGIN_MIB", vmspec.HugepageMarginMiB},
		{"MIN_TCG_TIMEOUT_SCALE", vmspec.MinTCGTimeoutScale}, {"MAX_TCG_TIMEOUT_SCALE", vmspec.MaxTCGTimeoutScale},
	}
	for _, i := range ints {
		fmt.Fprintf(&b, "%s = %d\n\n", i.name, i.v)
	}
	msgs := []struct{ name, v string }{
		{"MESSAGE_SIZE", vmspec.MessageSize}, {"MESSAGE_WHOLE_MIB", vmspec.MessageWholeMiB},
		{"MESSAGE_MEMORY_RANGE", vmspec.MessageMemoryRange}, {"MESSAGE_ONE_OF", vmspec.MessageOneOf},
		{"MESSAGE_INT_RANGE", vmspec.MessageIntRange}, {"MESSAGE_NIC_COUNT", vmspec.MessageNICCount},
		{"MESSAGE_HUGEPAGES", vmspec.MessageHugepages}, {"MESSAGE_HUGEPAGES_FIT", vmspec.MessageHugepagesFit},
		{"MESSAGE_HOST_PAGE_ALIGN", vmspec.MessageHostPageAlign},
		{"MESSAGE_VFIO_NIC", vmspec.MessageVFIONIC}, {"MESSAGE_VFIO_NIC_RANGE", vmspec.MessageVFIONICRange},
		{"MESSAGE_VFIO_NIC_TWICE", vmspec.MessageVFIONICTwice}, {"MESSAGE_VFIO_NICS_NONE", vmspec.MessageVFIONICsNone},
	}
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s = %s\n\n", m.name, strconv.Quote(m.v))
	}
	b.WriteString("# Each field: its attribute type, default (text form) and doc.\nFIELDS = {\n")
	for _, f := range vmspec.Fields {
		fmt.Fprintf(&b, "    %s: {\"default\": %s, \"doc\": %s, \"kind\": %s},\n",
			strconv.Quote(f.Name), strconv.Quote(f.Default), strconv.Quote(f.Doc), strconv.Quote(string(f.Kind)))
	}
	b.WriteString("}\n")
	return format("spec.bzl", b.String())
}

// CasesBzl renders tests/analysis/spec_cases.bzl: vmspectest.Cases with
// typed attribute values.
func CasesBzl() ([]byte, error) {
	var b strings.Builder
	b.WriteString(`"""The VM spec cases every front door is tested with (package vmspectest), as go_vm_test attributes."""` + "\n\n")
	b.WriteString(header + "\n")
	b.WriteString("SPEC_CASES = [\n")
	for _, c := range vmspectest.Cases {
		var attrs []string
		for _, s := range c.Settings {
			v, err := attrValue(s)
			if err != nil {
				return nil, fmt.Errorf("case %s: %w", c.Name, err)
			}
			attrs = append(attrs, strconv.Quote(s.Field)+": "+v)
		}
		sort.Strings(attrs) // buildifier wants sorted dict keys
		fmt.Fprintf(&b, "    {\"attrs\": {%s}, \"error\": %s, \"name\": %s},\n", strings.Join(attrs, ", "), strconv.Quote(c.Error), strconv.Quote(c.Name))
	}
	b.WriteString("]\n")
	return format("spec_cases.bzl", b.String())
}

// attrValue is a setting as a typed Starlark value for the attribute.
func attrValue(s vmspectest.Setting) (string, error) {
	f, ok := vmspec.Lookup(s.Field)
	if !ok {
		return "", fmt.Errorf("unknown field %q", s.Field)
	}
	switch f.Kind {
	case vmspec.KindInt:
		if _, err := strconv.Atoi(s.Value); err != nil {
			return "", fmt.Errorf("%s = %q is not an int: the rule cannot express it", s.Field, s.Value)
		}
		return s.Value, nil
	case vmspec.KindBool:
		switch s.Value {
		case "true", "":
			return "True", nil
		case "false":
			return "False", nil
		}
		return "", fmt.Errorf("%s = %q is not a bool: the rule cannot express it", s.Field, s.Value)
	case vmspec.KindStringList:
		sep := ","
		if f.Name == "cmdline" {
			return strList(strings.Fields(s.Value)), nil
		}
		var items []string
		for _, it := range strings.Split(s.Value, sep) {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		return strList(items), nil
	}
	return strconv.Quote(s.Value), nil
}

func strList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// format makes the text buildifier-clean (and checks it parses).
func format(name, src string) ([]byte, error) {
	for _, r := range src {
		if r > 0x7e {
			return nil, fmt.Errorf("%s: non-ASCII %q: Go and Starlark quote it differently", name, r)
		}
	}
	f, err := build.ParseBzl(name, []byte(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return build.Format(f), nil
}
