//go:build dpdk

package dpdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSysfs makes a sysfs tree: hugepages free of one size, and PCI
// devices (address -> driver, "" for none), all network class.
func fakeSysfs(t *testing.T, free string, devs map[string]string) string {
	t.Helper()
	root := t.TempDir()
	hp := filepath.Join(root, "kernel/mm/hugepages/hugepages-2048kB")
	must(t, os.MkdirAll(hp, 0o755))
	must(t, os.WriteFile(filepath.Join(hp, "free_hugepages"), []byte(free+"\n"), 0o644))
	for addr, drv := range devs {
		d := filepath.Join(root, "bus/pci/devices", addr)
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "class"), []byte("0x020000\n"), 0o644))
		if drv != "" {
			must(t, os.Symlink("../../../bus/pci/drivers/"+drv, filepath.Join(d, "driver")))
		}
	}
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckSystem(t *testing.T) {
	devs := map[string]string{"0000:00:10.0": "vfio-pci", "0000:00:11.0": "e1000", "0000:00:12.0": ""}
	for _, tc := range []struct {
		name  string
		free  string
		o     EALOptions
		want  error
		words []string
	}{
		{"no hugepages asked", "0", EALOptions{}, nil, nil},
		{"hugepages free", "64", EALOptions{Hugepages: true, Allow: []string{"0000:00:10.0"}}, nil, nil},
		{"device without a driver", "64", EALOptions{Allow: []string{"0000:00:12.0"}}, nil, nil},
		{"no free hugepages", "0", EALOptions{Hugepages: true}, ErrNoHugepages, []string{"guest_hugepages", "--no-huge"}},
		{"no such device", "64", EALOptions{Allow: []string{"0000:00:1f.0"}}, ErrNoDevice,
			[]string{"0000:00:1f.0", "0000:00:11.0 (e1000)", "0000:00:10.0 (vfio-pci)"}},
		{"kernel driver", "64", EALOptions{Allow: []string{"0000:00:10.0", "0000:00:11.0"}}, ErrKernelDriver,
			[]string{"0000:00:11.0", "kernel driver e1000", "vfio_nics", `invm.BindVFIO("0000:00:11.0")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := sysfs
			sysfs = fakeSysfs(t, tc.free, devs)
			defer func() { sysfs = old }()
			err := checkSystem(tc.o)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("checkSystem = %v, want %v", err, tc.want)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
