// Package vmm is the runner's hypervisor backend: a Backend turns a VM (a
// hypervisor-neutral description of one guest: CPUs, memory and its page
// backing, NICs, IOMMU, kernel, initrd, command line, the host-guest
// channel device, the monitor socket) into the hypervisor's command line
// and attaches a Monitor to the started VM, which reports lifecycle events
// (shutdown, reset, guest panic), answers status queries and asks the VM to
// quit gracefully.
//
// QEMU is the implementation: it lowers a VM to QEMU's own model
// (qemu.Spec, see QEMUSpec) and drives the monitor over QMP with
// github.com/digitalocean/go-qemu/qmp. Callers only see Backend, VM,
// Monitor and Event, so another hypervisor (cloud-hypervisor over its REST
// API socket) can be added as a second Backend without touching them.
package vmm
