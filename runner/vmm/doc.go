// Package vmm is the runner's hypervisor backend: a Backend turns a guest
// description (qemu.Spec, the runner's arch-neutral VM shape) into the
// hypervisor's command line and attaches a Monitor to the started VM, which
// reports lifecycle events (shutdown, reset, guest panic), answers status
// queries and asks the VM to quit gracefully.
//
// QEMU is the implementation (driven over QMP with
// github.com/digitalocean/go-qemu/qmp). Callers only see Backend, Monitor
// and Event, so another hypervisor (cloud-hypervisor over its REST API
// socket) can be added as a second Backend without touching them.
package vmm
