package gazelle_invm

import (
	"reflect"
	"strings"
	"testing"

	bzl "github.com/bazelbuild/buildtools/build"
)

func TestParseSetting(t *testing.T) {
	tests := []struct {
		name, value string
		attr        string
		want        any
		wantErr     string
	}{
		{"memory", "512M", "memory", "512M", ""},
		{"memory", "1G", "memory", "1G", ""},
		{"memory", "65536K", "memory", "65536K", ""},
		{"memory", "512MB", "", nil, "not a size"},
		{"memory", "32M", "", nil, "too small"},
		{"memory", "1000K", "", nil, "whole number of MiB"},
		{"memory", "-5M", "", nil, "not a size"},
		{"cpus", "2", "cpus", 2, ""},
		{"cpus", "65", "", nil, "from 1 to 64"},
		{"nics", "e1000, e1000e", "nics", []string{"e1000", "e1000e"}, ""},
		{"nics", "virtio_net,virtio_net", "nics", []string{"virtio_net", "virtio_net"}, ""},
		{"nics", "rtl8139", "", nil, "use virtio_net, e1000, e1000e"},
		{"nics", "", "", nil, "needs NIC models"},
		{"mgmt_nic", "virtio_net", "mgmt_nic", "virtio_net", ""},
		{"mgmt_nic", "rtl8139", "", nil, "use one of virtio_net, e1000, e1000e"},
		{"mgmt_nic", "", "", nil, "is not a NIC model"},
		{"hugepages", "2M:64", "guest_hugepages", "2M:64", ""},
		{"guest_hugepages", "1G:1", "guest_hugepages", "1G:1", ""},
		{"hugepages", "4k:64", "", nil, "SIZE:COUNT"},
		{"hugepages", "2M:0", "", nil, "SIZE:COUNT"},
		{"iommu", "", "iommu", true, ""},
		{"iommu", "on", "", nil, "takes no value"},
		{"arch", "x86_64,aarch64", "target_compatible_with", []string{"aarch64", "x86_64"}, ""},
		{"arch", "aarch64", "target_compatible_with", []string{"aarch64"}, ""},
		{"arch", "arm64", "", nil, "not a guest arch"},
		{"host_pages", "2M", "host_pages", "2M", ""},
		{"host_pages", "4K", "", nil, "use one of 4k, 2M, 1G"},
		{"accel", "kvm", "accel", "kvm", ""},
		{"backend", "firecracker", "", nil, "use one of qemu"},
		{"kernel", "//kernels:lts", "kernel", "//kernels:lts", ""},
		{"kernel", "not a label", "", nil, "not a label"},
		{"cmdline", "quiet  loglevel=3", "cmdline", []string{"quiet", "loglevel=3"}, ""},
		{"tcg_timeout_scale", "0", "", nil, "from 1 to 1000"},
		{"ram", "512M", "", nil, `unknown directive "ram"; known: accel, arch`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			s, err := parseSetting(tt.name, tt.value, "f.go:1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.attr != tt.attr || !reflect.DeepEqual(s.value, tt.want) {
				t.Errorf("got %s = %#v, want %s = %#v", s.attr, s.value, tt.attr, tt.want)
			}
		})
	}
}

func TestReadTestFile(t *testing.T) {
	tests := []struct {
		name, src    string
		guest        bool
		internal     bool
		directives   []string // attr=raw
		errSubstring string
	}{
		{
			name:  "host",
			src:   "package p\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) {}\n",
			guest: false, internal: true,
		},
		{
			name:       "guest with directives after the package clause and above a function",
			src:        "package p_test\n\n//invm:memory 512M\n//invm:nics e1000\n\nimport (\n\t\"testing\"\n\n\t\"github.com/rules-go-vm/rules_go_vm/invm\"\n)\n\n//invm:iommu\nfunc TestX(t *testing.T) { invm.Require(t) }\n",
			guest:      true,
			directives: []string{"memory=512M", "nics=e1000", "iommu=true"},
		},
		{
			name:         "directive in a function body",
			src:          "package p\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) {\n\t//invm:cpus 2\n}\n",
			internal:     true,
			errSubstring: "p/x_test.go:6: //invm:cpus 2 is inside a declaration",
		},
		{
			name:         "bad value names file and line",
			src:          "package p\n\n//invm:cpus many\n",
			internal:     true,
			errSubstring: `p/x_test.go:3: //invm:cpus: "many" is not a whole number`,
		},
		{
			name:     "a comment that only mentions invm: is no directive",
			src:      "package p\n\n// see //invm:memory in the docs\n",
			internal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf, err := readTestFile("x_test.go", "p/x_test.go", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if tf.guest != tt.guest || tf.internal != tt.internal {
				t.Errorf("guest, internal = %v, %v; want %v, %v", tf.guest, tf.internal, tt.guest, tt.internal)
			}
			var got []string
			for _, d := range tf.directives {
				got = append(got, d.attr+"="+d.raw)
			}
			if !reflect.DeepEqual(got, tt.directives) {
				t.Errorf("directives = %q, want %q", got, tt.directives)
			}
			errs := strings.Join(tf.errs, "\n")
			if (tt.errSubstring == "") != (errs == "") || !strings.Contains(errs, tt.errSubstring) {
				t.Errorf("errors = %q, want %q", errs, tt.errSubstring)
			}
		})
	}
}

func TestVMAttrsConflictsAndDefaults(t *testing.T) {
	mem := func(raw, pos string) setting { return setting{attr: "memory", raw: raw, value: raw, pos: pos} }
	ic := &invmConfig{enabled: true, defaults: map[string]setting{"memory": mem("1G", "BUILD.bazel:2"), "cpus": {attr: "cpus", raw: "2", value: 2}}}
	got, errs := vmAttrs(ic, []testFile{{directives: []setting{mem("512M", "a_test.go:3")}}, {directives: []setting{mem("512M", "b_test.go:3")}}})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if want := map[string]any{"memory": "512M", "cpus": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("attrs = %v, want %v (file directives win over directory defaults)", got, want)
	}
	_, errs = vmAttrs(ic, []testFile{{directives: []setting{mem("512M", "a_test.go:3")}}, {directives: []setting{mem("2G", "b_test.go:4")}}})
	if len(errs) != 1 || !strings.Contains(errs[0], "b_test.go:4: memory = \"2G\" conflicts with a_test.go:3") {
		t.Errorf("errors = %q, want a conflict naming both files", errs)
	}
}

func TestDropStrings(t *testing.T) {
	tests := []struct{ in, want string }{
		{`["//a", "//invm", "//b"]`, `["//a", "//b"]`},
		{`["//invm"]`, `[]`},
		{`["//a"] + select({"@io_bazel_rules_go//go/platform:linux": ["//invm", "//c"], "//conditions:default": []})`,
			`["//a"] + select({"@io_bazel_rules_go//go/platform:linux": ["//c"], "//conditions:default": []})`},
		{`["//invm"] + select({"@io_bazel_rules_go//go/platform:linux": ["//c"]})`,
			`select({"@io_bazel_rules_go//go/platform:linux": ["//c"]})`},
	}
	for _, tt := range tests {
		f, err := bzl.ParseBuild("x", []byte("x = "+tt.in))
		if err != nil {
			t.Fatal(err)
		}
		got := dropStrings(f.Stmt[0].(*bzl.AssignExpr).RHS, map[string]bool{"//invm": true})
		if s := bzl.FormatString(got); squash(s) != squash(tt.want) {
			t.Errorf("dropStrings(%s) = %s, want %s", tt.in, s, tt.want)
		}
	}
}

func TestVMTestName(t *testing.T) {
	for in, want := range map[string]string{"foo_test": "foo_vm_test", "go_default_test": "go_default_vm_test", "odd": "odd_vm_test"} {
		if got := vmTestName(in); got != want {
			t.Errorf("vmTestName(%q) = %q, want %q", in, got, want)
		}
	}
}

// squash drops layout (spaces, newlines, trailing commas) from Starlark.
func squash(s string) string {
	s = strings.Join(strings.Fields(s), "")
	return strings.NewReplacer(",]", "]", ",}", "}", ",)", ")").Replace(s)
}
