package kernel

import "testing"

func TestDefaultFragments(t *testing.T) {
	frags, err := DefaultFragments()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"00-base.config": "", "05-boot-speed.config": "", "10-console-x86_64.config": "x86_64", "10-console-aarch64.config": "aarch64",
		"20-virtio.config": "", "30-intel-e1000.config": "", "30-vfio-iommu.config": "", "30-hugepages.config": "",
		"30-pvpanic.config": "", "30-layer-window.config": "x86_64", "40-x86_64.config": "x86_64", "50-distro.config": "", "40-aarch64-virt.config": "aarch64", "90-disable.config": "",
	}
	if len(frags) != len(want) {
		t.Errorf("got %d fragments, want %d", len(frags), len(want))
	}
	for _, f := range frags {
		arch, ok := want[f.Name]
		if !ok {
			t.Errorf("unexpected fragment %s", f.Name)
			continue
		}
		if len(f.Options) == 0 {
			t.Errorf("%s sets no option", f.Name)
		}
		if arch == "" && len(f.Arches) != 0 || arch != "" && (len(f.Arches) != 1 || f.Arches[0] != arch) {
			t.Errorf("%s: arches %q, want %q", f.Name, f.Arches, arch)
		}
	}
}
