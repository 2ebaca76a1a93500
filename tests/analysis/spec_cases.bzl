"""The VM spec cases every front door is tested with (package vmspectest), as go_vm_test attributes."""

# Generated from package vmspec by `go run ./vmspec/cmd/specgen`: do not edit.

SPEC_CASES = [
    {"attrs": {}, "error": "", "name": "defaults"},
    {"attrs": {"accel": "tcg", "backend": "qemu", "cmdline": ["loglevel=3", "quiet"], "cpus": 2, "guest_hugepages": "2M:64", "host_pages": "2M", "iommu": True, "memory": "512M", "mgmt_nic": "virtio_net", "nics": ["e1000", "virtio_net"], "tcg_timeout_scale": 5, "transport": "virtio-serial"}, "error": "", "name": "full"},
    {"attrs": {"host_pages": "1G", "memory": "1G"}, "error": "", "name": "memory_in_g"},
    {"attrs": {"memory": "131072K"}, "error": "", "name": "memory_in_k"},
    {"attrs": {"guest_hugepages": "2M:96", "memory": "256M"}, "error": "", "name": "hugepages_at_the_margin"},
    {"attrs": {"nics": ["e1000", "e1000", "e1000", "e1000", "e1000", "e1000", "e1000", "e1000"]}, "error": "", "name": "eight_nics"},
    {"attrs": {"memory": "32M"}, "error": "memory: \"32M\" is out of range; give 64M to 1024G", "name": "memory_too_small"},
    {"attrs": {"memory": "2048G"}, "error": "memory: \"2048G\" is out of range; give 64M to 1024G", "name": "memory_too_big"},
    {"attrs": {"memory": "lots"}, "error": "memory: \"lots\" is not a size; write a whole number with K, M or G, e.g. 512M", "name": "memory_not_a_size"},
    {"attrs": {"memory": "512"}, "error": "memory: \"512\" is not a size; write a whole number with K, M or G, e.g. 512M", "name": "memory_bare_number"},
    {"attrs": {"memory": "1536K"}, "error": "memory: \"1536K\" is not a whole number of MiB", "name": "memory_not_whole_mib"},
    {"attrs": {"guest_hugepages": "2M:100", "memory": "256M"}, "error": "guest_hugepages: \"2M:100\" needs 200 MiB, leaving less than 64 MiB of memory \"256M\"; raise memory or lower the count", "name": "hugepages_over_margin"},
    {"attrs": {"guest_hugepages": "1G:9007199254740992"}, "error": "guest_hugepages: \"1G:9007199254740992\" needs 9223372036854775808 MiB, leaving less than 64 MiB of memory \"256M\"", "name": "hugepages_2_to_the_53"},
    {"attrs": {"guest_hugepages": "64"}, "error": "guest_hugepages: \"64\": write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. 2M:64", "name": "hugepages_syntax"},
    {"attrs": {"guest_hugepages": "4k:10"}, "error": "guest_hugepages: \"4k:10\": write SIZE:COUNT", "name": "hugepages_size"},
    {"attrs": {"nics": ["e1000", "e1000", "e1000", "e1000", "e1000", "e1000", "e1000", "e1000", "e1000"]}, "error": "nics: 9 NICs; at most 8", "name": "nine_nics"},
    {"attrs": {"nics": ["e1000", "rtl8139"]}, "error": "nics: \"rtl8139\" is not allowed; use one of virtio_net, e1000, e1000e", "name": "bad_nic"},
    {"attrs": {"mgmt_nic": "rtl8139"}, "error": "mgmt_nic: \"rtl8139\" is not allowed; use one of virtio_net, e1000, e1000e", "name": "bad_mgmt_nic"},
    {"attrs": {"cpus": 0}, "error": "cpus: \"0\" is not a whole number from 1 to 64", "name": "cpus_zero"},
    {"attrs": {"cpus": 65}, "error": "cpus: \"65\" is not a whole number from 1 to 64", "name": "cpus_too_many"},
    {"attrs": {"accel": "hvf"}, "error": "accel: \"hvf\" is not allowed; use one of auto, kvm, tcg", "name": "bad_accel"},
    {"attrs": {"backend": "firecracker"}, "error": "backend: \"firecracker\" is not allowed; use one of qemu", "name": "bad_backend"},
    {"attrs": {"transport": "vsock"}, "error": "transport: \"vsock\" is not allowed; use one of auto, vhost-vsock, vhost-user-vsock, virtio-serial", "name": "bad_transport"},
    {"attrs": {"host_pages": "64k"}, "error": "host_pages: \"64k\" is not allowed; use one of 4k, 2M, 1G", "name": "bad_host_pages"},
    {"attrs": {"host_pages": "1G", "memory": "512M"}, "error": "memory: \"512M\" is not a multiple of host_pages \"1G\"", "name": "host_pages_misaligned"},
    {"attrs": {"tcg_timeout_scale": 0}, "error": "tcg_timeout_scale: \"0\" is not a whole number from 1 to 1000", "name": "scale_zero"},
]
