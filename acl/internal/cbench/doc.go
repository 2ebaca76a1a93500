// Package cbench is the C side of the classify benchmark: the same
// rte_acl_classify loop the Go batch path runs (batches of 64 keys laid out
// stride bytes apart), written in C, so benchmarks can put the cost of
// crossing cgo side by side with a pure C caller. It builds only with the
// dpdk build tag.
package cbench
