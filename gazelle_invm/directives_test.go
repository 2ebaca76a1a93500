package gazelle_invm

import (
	"reflect"
	"strings"
	"testing"

	bzl "github.com/bazelbuild/buildtools/build"

	"github.com/rules-go-vm/rules_go_vm/vmspec/vmspectest"
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
		{"memory", "65536K", "memory", "64M", ""},
		{"memory", "512MB", "", nil, `memory: "512MB" is not a size`},
		{"cpus", "2", "cpus", 2, ""},
		{"nics", "e1000, e1000e", "nics", []string{"e1000", "e1000e"}, ""},
		{"nics", "virtio_net,virtio_net", "nics", []string{"virtio_net", "virtio_net"}, ""},
		{"nics", "", "nics", []string{}, ""},
		{"mgmt_nic", "virtio_net", "mgmt_nic", "virtio_net", ""},
		{"mgmt_nic", "", "mgmt_nic", "", ""},
		{"hugepages", "2M:64", "guest_hugepages", "2M:64", ""},
		{"guest_hugepages", "1G:1", "guest_hugepages", "1G:1", ""},
		{"iommu", "", "iommu", true, ""},
		{"iommu", "on", "", nil, `iommu: "on" is not a boolean; use true or false`},
		{"arch", "x86_64,aarch64", "target_compatible_with", []string{"aarch64", "x86_64"}, ""},
		{"arch", "aarch64", "target_compatible_with", []string{"aarch64"}, ""},
		{"arch", "arm64", "", nil, `arch: "arm64" is not allowed; use one of x86_64, aarch64`},
		{"accel", "kvm", "accel", "kvm", ""},
		{"kernel", "//kernels:lts", "kernel", "//kernels:lts", ""},
		{"kernel", "not a label", "", nil, "not a label"},
		{"cmdline", "quiet  loglevel=3", "cmdline", []string{"quiet", "loglevel=3"}, ""},
		{"transport", "virtio-serial", "transport", "virtio-serial", ""},
		{"ram", "512M", "", nil, `ram: unknown directive; known: accel, arch, backend`},
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
	mem := func(raw, pos string) setting {
		return setting{attr: "memory", field: "memory", raw: raw, value: raw, pos: pos}
	}
	ic := &invmConfig{enabled: true, defaults: map[string]setting{"memory": mem("1G", "BUILD.bazel:2"), "cpus": {attr: "cpus", field: "cpus", raw: "2", value: 2}}}
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

// TestSpecCases feeds the shared table of VM spec cases (package
// vmspectest) to //invm: directives: each case resolves, or Gazelle
// reports the case's words at the directive's line.
func TestSpecCases(t *testing.T) {
	for _, c := range vmspectest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			src := "package p_test\n\n"
			for _, st := range c.Settings {
				src += "//invm:" + st.Field + " " + st.Value + "\n"
			}
			tf, err := readTestFile("x_test.go", "p/x_test.go", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			_, errs := vmAttrs(&invmConfig{enabled: true, defaults: map[string]setting{}}, []testFile{tf})
			all := strings.Join(append(tf.errs, errs...), "\n")
			switch {
			case c.Error == "" && all != "":
				t.Errorf("valid case: %s", all)
			case c.Error != "" && !strings.Contains(all, c.Error):
				t.Errorf("errors %q, want %q", all, c.Error)
			case c.Error != "" && !strings.Contains(all, "p/x_test.go:"):
				t.Errorf("errors %q do not name the file and line", all)
			}
		})
	}
}
