"""The VM spec for Starlark: names, allowed values, limits, defaults, docs and messages (package vmspec)."""

# Generated from package vmspec by `go run ./vmspec/cmd/specgen`: do not edit.

ARCHES = ["x86_64", "aarch64"]

BACKENDS = ["qemu"]

ACCELS = ["auto", "kvm", "tcg"]

NIC_MODELS = ["virtio_net", "e1000", "e1000e"]

HOST_PAGE_SIZES = ["4k", "2M", "1G"]

HUGEPAGE_SIZES = ["2M", "1G"]

TRANSPORTS = ["auto", "vhost-vsock", "vhost-user-vsock", "virtio-serial"]

STARTS = ["cold", "snapshot", "auto"]

MIN_MEMORY_MIB = 64

MAX_MEMORY_MIB = 1048576

MIN_CPUS = 1

MAX_CPUS = 64

MAX_NICS = 8

HUGEPAGE_MARGIN_MIB = 64

MIN_TCG_TIMEOUT_SCALE = 1

MAX_TCG_TIMEOUT_SCALE = 1000

MESSAGE_SIZE = "\"%s\" is not a size; write a whole number with K, M or G, e.g. 512M"

MESSAGE_WHOLE_MIB = "\"%s\" is not a whole number of MiB"

MESSAGE_MEMORY_RANGE = "\"%s\" is out of range; give %dM to %dG"

MESSAGE_ONE_OF = "\"%s\" is not allowed; use one of %s"

MESSAGE_INT_RANGE = "\"%s\" is not a whole number from %d to %d"

MESSAGE_NIC_COUNT = "%d NICs; at most %d"

MESSAGE_HUGEPAGES = "\"%s\": write SIZE:COUNT with SIZE 2M or 1G and COUNT > 0, e.g. 2M:64"

MESSAGE_HUGEPAGES_FIT = "\"%s\" needs %s MiB, leaving less than %d MiB of memory \"%s\"; raise memory or lower the count"

MESSAGE_HOST_PAGE_ALIGN = "\"%s\" is not a multiple of host_pages \"%s\""

MESSAGE_VFIO_NIC = "\"%s\" is not a NIC index from 0 to %d; write indexes into nics (0 for the first NIC), or all alone"

MESSAGE_VFIO_NIC_RANGE = "NIC %d does not exist: nics has %d NICs"

MESSAGE_VFIO_NIC_TWICE = "NIC %d twice"

MESSAGE_VFIO_NICS_NONE = "\"all\" needs NICs; nics is empty"

# Each field: its attribute type, default (text form) and doc.
FIELDS = {
    "accel": {"default": "auto", "doc": "Accelerator: \"auto\" (KVM only after a canary boot proves it works, else TCG), \"kvm\" or \"tcg\".", "kind": "string"},
    "backend": {"default": "qemu", "doc": "VMM: \"qemu\" (cloud-hypervisor is planned).", "kind": "string"},
    "cmdline": {"default": "", "doc": "Extra kernel command-line parameters (space-separated as a directive or flag).", "kind": "string_list"},
    "cpus": {"default": "1", "doc": "Guest vCPUs (1 to 64).", "kind": "int"},
    "guest_hugepages": {"default": "", "doc": "Guest hugepages as SIZE:COUNT, SIZE 2M or 1G, e.g. \"2M:64\", reserved at boot and mounted at /dev/hugepages-SIZE; empty for none. Must leave 64 MiB of memory.", "kind": "string"},
    "host_pages": {"default": "4k", "doc": "Host page backing of guest RAM: \"4k\" (memfd), \"2M\" or \"1G\" (host hugetlbfs); memory must be a multiple of it.", "kind": "string"},
    "iommu": {"default": "false", "doc": "Give the guest a virtual IOMMU (intel-iommu on x86_64, SMMUv3 on aarch64); without one, NICs use VFIO's no-IOMMU mode.", "kind": "bool"},
    "memory": {"default": "256M", "doc": "Guest RAM, a whole number of MiB written with K, M or G, e.g. \"256M\" or \"1G\" (64M to 1024G).", "kind": "string"},
    "mgmt_nic": {"default": "", "doc": "A management NIC next to the nics: its model (\"virtio_net\", \"e1000\", \"e1000e\"), empty for none. It is at PCI address 0000:00:0f.0, alone on its own QEMU hub (no host network, ever), with a deterministic MAC ending in ff; the guest finds it with invm.MgmtNIC() ($INVM_MGMT_NIC). Makes an x86_64 guest a q35 machine.", "kind": "string"},
    "nics": {"default": "", "doc": "NIC models, one NIC each, in PCI order from 0000:00:10.0 (at most 8; comma-separated as a directive or flag): \"virtio_net\", \"e1000\", \"e1000e\".", "kind": "string_list"},
    "start": {"default": "auto", "doc": "How the guest starts: \"cold\" boots it; \"snapshot\" restores a template of the VM (kernel, base layer, shape, QEMU build) booted once to where init waits for its test and saved, then hands it the test in a read-only 9p share (the kernel needs CONFIG_9P_FS and CONFIG_NET_9P_VIRTIO, as the default kernels have); \"auto\" (the default) does that where a template fits and cold-boots otherwise. The restored guest talks over kernel vhost-vsock where /dev/vhost-vsock is usable (it listens, the host dials the new CID it reserved), else over virtio-serial; a KVM template is restored on its host CPU model only. go_vm_test: every test of the default kernel and VM shape restores its arch's one shared template; under \"snapshot\" another shape gets a template of its own, under \"auto\" it cold-boots. invm: templates are made on first use in its cache directory. A spec a template cannot carry (NICs, a management NIC, an IOMMU, vfio_nics, 2M/1G host pages, the vhost-user-vsock transport, a debug command) cold-boots under \"auto\" and is an error under \"snapshot\"; a template made by another QEMU or for another shape is not used, and a failed restore falls back to a cold boot. The test log says which start ran and why.", "kind": "string"},
    "tcg_timeout_scale": {"default": "3", "doc": "How much slower the test may be under TCG than under KVM. go_vm_test raises Bazel's timeout category so it holds the nominal timeout (from `timeout` or `size`) times this factor; when the runner gets KVM, the guest test's own -test.timeout is the nominal one again.", "kind": "int"},
    "transport": {"default": "auto", "doc": "Host<->guest transport of the test's streams: \"auto\" (kernel vhost-vsock when /dev/vhost-vsock is usable, else the vhost-device-vsock daemon, else virtio-serial), \"vhost-vsock\", \"vhost-user-vsock\" or \"virtio-serial\" (one connection for every stream; for guest kernels without vsock). The test log says which one and why.", "kind": "string"},
    "vfio_nics": {"default": "", "doc": "NICs the guest init binds to vfio-pci before the test starts (for DPDK): their indexes in nics (\"0\" for the first, at 0000:00:10.0), or \"all\" (comma-separated as a directive or flag); never the management NIC. Through an IOMMU group with iommu = True, in VFIO's no-IOMMU mode otherwise. A NIC that does not bind fails the test, saying why; the test finds the bound NICs' addresses in $INVM_VFIO_NICS (invm.VFIONICs).", "kind": "string_list"},
}
