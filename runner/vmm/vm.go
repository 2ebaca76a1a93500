package vmm

import (
	"os"

	"github.com/rules-go-vm/rules_go_vm/arch"
	"github.com/rules-go-vm/rules_go_vm/runner/vsock"
	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// VM describes one guest to boot, whatever the hypervisor: the shape the
// runner planned (CPUs, memory and its page backing, NICs, IOMMU), what it
// prepared (kernel, initrd, the host-guest channel, the monitor socket) and
// the accelerator it chose. A Backend lowers it to its own command line;
// the guest console is always the hypervisor's standard output.
type VM struct {
	// Arch is the guest architecture.
	Arch arch.Arch
	// Machine overrides the backend's machine type; "" lets the backend
	// choose (one with a PCI bus when a device needs it, see
	// Backend.Machine).
	Machine string
	// Accel is the accelerator, "kvm" or "tcg" ("" means tcg).
	Accel string
	// CPUs is the number of vCPUs; MemoryMiB the guest RAM.
	CPUs, MemoryMiB int
	// HostPages is the host page backing of guest RAM: "" or "4k"
	// (shared anonymous memory), "2M" or "1G" (a file on HugetlbfsDir, a
	// host hugetlbfs mount of that page size).
	HostPages, HugetlbfsDir string
	// GuestHugepages reserves guest hugepages at boot; zero means none.
	GuestHugepages vmspec.Hugepages
	// NICs are the guest's network cards, in PCI slot order; NICs 2k and
	// 2k+1 are cabled back to back, none reaches the host.
	NICs []NIC
	// MgmtNIC is the management NIC (Model "" for none), alone on its own
	// network.
	MgmtNIC NIC
	// IOMMU gives the guest a virtual IOMMU.
	IOMMU bool
	// Kernel is the guest kernel image; Initrd the initramfs ("" for none).
	Kernel, Initrd string
	// Cmdline is appended to the kernel command line the backend makes
	// (console, architecture, accelerator and device parameters).
	Cmdline []string
	// Quiet asks the kernel for a quiet console ("quiet").
	Quiet bool
	// TSCkHz is the host's TSC frequency, for a guest that cannot
	// calibrate its own (QEMU's x86 microvm under TCG); 0 when unknown.
	TSCkHz int
	// Channel is the host-guest channel device (Transport "" for none).
	Channel Channel
	// Monitor is the unix socket the hypervisor serves its monitor on (it
	// creates it); "" means no monitor.
	Monitor string
	// Restore is a saved guest's state file (see Saver) to restore instead
	// of booting; the rest of the VM must be the saved one's (its Channel
	// socket and Monitor may differ; Kernel and Initrd are not read: the
	// guest is in the saved RAM). "" boots.
	Restore string
	// SaveFormat is how the VM's state is saved and restored (Save*
	// formats); "" is SaveStream. Both sides of a save must say the same.
	SaveFormat string
	// RAMFile, when set, is the guest RAM: a file the VM maps shared (its
	// writes reach the file: a template being made) or, with
	// RAMFilePrivate, copy-on-write (its writes stay its own and the file
	// may be read-only: a restore). SaveRAMFile needs it.
	RAMFile        string
	RAMFilePrivate bool
	// LayerShare, when set, is a host directory the guest may mount
	// read-only over 9p, tagged protocol.LayerShareTag: a snapshot
	// start's test layer is a file in it (a template is made with an empty
	// one, each restore gets its own).
	LayerShare string
	// LayerWindow, when its File is set, is a layer window: MiB MiB of
	// guest-physical memory the guest kernel does not use (where:
	// Backend.LayerWindow), backed by File mapped shared and left out of a
	// SaveRAMFile save, so each restore brings its own file with its test
	// layer at the start (protocol.LayerInWindow).
	LayerWindow LayerWindow
}

// LayerWindow is VM.LayerWindow.
type LayerWindow struct {
	File string
	MiB  int
}

// Save formats (VM.SaveFormat): what a saved VM's state file holds.
const (
	// SaveStream is the whole state, RAM's pages included, as one
	// stream that a restore reads through.
	SaveStream = "stream"
	// SaveMappedRAM puts every RAM page at a fixed offset of the state
	// file (QEMU's mapped-ram), which a restore reads page-aligned.
	SaveMappedRAM = "mapped-ram"
	// SaveRAMFile leaves RAM out of the state: the VM's RAM is VM.RAMFile,
	// which a restore maps copy-on-write (QEMU's x-ignore-shared).
	SaveRAMFile = "ram-file"
)

// SaveFormats are the save formats.
var SaveFormats = []string{SaveStream, SaveMappedRAM, SaveRAMFile}

// NIC is one guest network card.
type NIC struct {
	// Model is one of vmspec.NICModels.
	Model string
	// MAC is its address.
	MAC string
}

// Channel is the guest's device of a host-guest transport.
type Channel struct {
	// Transport is the kind: vsock.VhostUserVsock, vsock.VhostVsock or
	// vsock.VirtioSerial ("" for no channel device).
	Transport vsock.Transport
	// Socket is the vhost-user daemon's socket (VhostUserVsock), or the
	// unix socket the host listens on for the port (VirtioSerial).
	Socket string
	// CID is the guest's vsock CID (VhostVsock, reserved on Device).
	CID uint32
	// Device is the host's open vhost-vsock device (VhostVsock): the
	// hypervisor inherits it (see Files).
	Device *os.File
}

// Files are the open files the hypervisor process inherits, in order from
// file descriptor 3; a backend's arguments refer to them by those numbers.
func (vm VM) Files() []*os.File {
	if vm.Channel.Transport == vsock.VhostVsock && vm.Channel.Device != nil {
		return []*os.File{vm.Channel.Device}
	}
	return nil
}

// firstInheritedFD is the file descriptor of Files()[0] in the hypervisor
// (after stdin, stdout and stderr).
const firstInheritedFD = 3
