// Package vmspectest holds the one table of VM spec cases that every front
// door is tested with: package vmspec itself, the go_vm_test rule (through
// tests/analysis/spec_cases.bzl, generated from this table), Gazelle's
// //invm: directives and invm's flags and $INVM_* variables. Adding a field
// means adding rows here.
package vmspectest

// Setting is one field in its text form (lists comma-separated for nics,
// space-separated for cmdline: the directive and flag syntax).
type Setting struct {
	Field, Value string
}

// Case is a set of fields and what every front door must say about it.
type Case struct {
	// Name is a short identifier (a Bazel target name part).
	Name string
	// Settings are the fields the user wrote.
	Settings []Setting
	// Error is the "FIELD: MESSAGE" text every front door's error must
	// contain; "" means the spec is valid.
	Error string
}

// Cases are the spec cases, valid and invalid.
var Cases = []Case{
	{Name: "defaults"},
	{Name: "full", Settings: []Setting{
		{"memory", "512M"}, {"cpus", "2"}, {"nics", "e1000,virtio_net"}, {"mgmt_nic", "virtio_net"},
		{"guest_hugepages", "2M:64"}, {"host_pages", "2M"}, {"iommu", "true"}, {"transport", "virtio-serial"},
		{"accel", "tcg"}, {"tcg_timeout_scale", "5"}, {"cmdline", "loglevel=3 quiet"}, {"backend", "qemu"},
		{"vfio_nics", "1"}, {"start", "cold"},
	}},
	{Name: "start_snapshot", Settings: []Setting{{"start", "snapshot"}}},
	{Name: "vfio_all", Settings: []Setting{{"nics", "e1000,virtio_net"}, {"vfio_nics", "all"}}},
	{Name: "vfio_indexes", Settings: []Setting{{"nics", "e1000,virtio_net,e1000e"}, {"vfio_nics", "2,0"}, {"iommu", "true"}}},
	{Name: "memory_in_g", Settings: []Setting{{"memory", "1G"}, {"host_pages", "1G"}}},
	{Name: "memory_in_k", Settings: []Setting{{"memory", "131072K"}}},
	{Name: "hugepages_at_the_margin", Settings: []Setting{{"memory", "256M"}, {"guest_hugepages", "2M:96"}}},
	{Name: "eight_nics", Settings: []Setting{{"nics", "e1000,e1000,e1000,e1000,e1000,e1000,e1000,e1000"}}},

	{Name: "memory_too_small", Settings: []Setting{{"memory", "32M"}},
		Error: `memory: "32M" is out of range; give 64M to 1024G`},
	{Name: "memory_too_big", Settings: []Setting{{"memory", "2048G"}},
		Error: `memory: "2048G" is out of range; give 64M to 1024G`},
	{Name: "memory_not_a_size", Settings: []Setting{{"memory", "lots"}},
		Error: `memory: "lots" is not a size; write a whole number with K, M or G, e.g. 512M`},
	{Name: "memory_bare_number", Settings: []Setting{{"memory", "512"}},
		Error: `memory: "512" is not a size; write a whole number with K, M or G, e.g. 512M`},
	{Name: "memory_not_whole_mib", Settings: []Setting{{"memory", "1536K"}},
		Error: `memory: "1536K" is not a whole number of MiB`},
	{Name: "hugepages_over_margin", Settings: []Setting{{"memory", "256M"}, {"guest_hugepages", "2M:100"}},
		Error: `guest_hugepages: "2M:100" needs 200 MiB, leaving less than 64 MiB of memory "256M"; raise memory or lower the count`},
	{Name: "hugepages_2_to_the_53", Settings: []Setting{{"guest_hugepages", "1G:9007199254740992"}},
		Error: `guest_hugepages: "1G:9007199254740992" needs 9223372036854775808 MiB, leaving less than 64 MiB of memory "256M"`},
	{Name: "hugepages_syntax", Settings: []Setting{{"guest_hugepages", "64"}},
		Error: `guest_hugepages: "64": write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. 2M:64`},
	{Name: "hugepages_size", Settings: []Setting{{"guest_hugepages", "4k:10"}},
		Error: `guest_hugepages: "4k:10": write SIZE:COUNT`},
	{Name: "nine_nics", Settings: []Setting{{"nics", "e1000,e1000,e1000,e1000,e1000,e1000,e1000,e1000,e1000"}},
		Error: `nics: 9 NICs; at most 8`},
	{Name: "bad_nic", Settings: []Setting{{"nics", "e1000,rtl8139"}},
		Error: `nics: "rtl8139" is not allowed; use one of virtio_net, e1000, e1000e`},
	{Name: "bad_mgmt_nic", Settings: []Setting{{"mgmt_nic", "rtl8139"}},
		Error: `mgmt_nic: "rtl8139" is not allowed; use one of virtio_net, e1000, e1000e`},
	{Name: "cpus_zero", Settings: []Setting{{"cpus", "0"}},
		Error: `cpus: "0" is not a whole number from 1 to 64`},
	{Name: "cpus_too_many", Settings: []Setting{{"cpus", "65"}},
		Error: `cpus: "65" is not a whole number from 1 to 64`},
	{Name: "bad_accel", Settings: []Setting{{"accel", "hvf"}},
		Error: `accel: "hvf" is not allowed; use one of auto, kvm, tcg`},
	{Name: "bad_backend", Settings: []Setting{{"backend", "firecracker"}},
		Error: `backend: "firecracker" is not allowed; use one of qemu`},
	{Name: "bad_transport", Settings: []Setting{{"transport", "vsock"}},
		Error: `transport: "vsock" is not allowed; use one of auto, vhost-vsock, vhost-user-vsock, virtio-serial`},
	{Name: "bad_start", Settings: []Setting{{"start", "warm"}},
		Error: `start: "warm" is not allowed; use one of cold, snapshot, auto`},
	{Name: "bad_host_pages", Settings: []Setting{{"host_pages", "64k"}},
		Error: `host_pages: "64k" is not allowed; use one of 4k, 2M, 1G`},
	{Name: "host_pages_misaligned", Settings: []Setting{{"memory", "512M"}, {"host_pages", "1G"}},
		Error: `memory: "512M" is not a multiple of host_pages "1G"`},
	{Name: "vfio_index_beyond_nics", Settings: []Setting{{"nics", "e1000,virtio_net"}, {"vfio_nics", "0,2"}},
		Error: `vfio_nics: NIC 2 does not exist: nics has 2 NICs`},
	{Name: "vfio_without_nics", Settings: []Setting{{"vfio_nics", "0"}},
		Error: `vfio_nics: NIC 0 does not exist: nics has 0 NICs`},
	{Name: "vfio_all_without_nics", Settings: []Setting{{"vfio_nics", "all"}},
		Error: `vfio_nics: "all" needs NICs; nics is empty`},
	{Name: "vfio_not_an_index", Settings: []Setting{{"nics", "e1000"}, {"vfio_nics", "0000:00:10.0"}},
		Error: `vfio_nics: "0000:00:10.0" is not a NIC index from 0 to 7; write indexes into nics (0 for the first NIC), or all alone`},
	{Name: "vfio_index_past_max", Settings: []Setting{{"nics", "e1000"}, {"vfio_nics", "8"}},
		Error: `vfio_nics: "8" is not a NIC index from 0 to 7`},
	{Name: "vfio_all_and_index", Settings: []Setting{{"nics", "e1000"}, {"vfio_nics", "all,0"}},
		Error: `vfio_nics: "all" is not a NIC index from 0 to 7`},
	{Name: "vfio_twice", Settings: []Setting{{"nics", "e1000,e1000"}, {"vfio_nics", "1,1"}},
		Error: `vfio_nics: NIC 1 twice`},
	{Name: "scale_zero", Settings: []Setting{{"tcg_timeout_scale", "0"}},
		Error: `tcg_timeout_scale: "0" is not a whole number from 1 to 1000`},
}
