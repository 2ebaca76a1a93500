// Package dpdk holds the guest tests of DPDK in rules_go_vm guests: frames
// forwarded through DPDK's e1000, e1000e and virtio PMDs on NIC pairs
// cabled back to back inside QEMU, classified by rte_acl against the
// reference classifier, with and without a virtual IOMMU, and the errors
// a user meets on bad input.
package dpdk
