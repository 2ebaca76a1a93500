// Package cgo is a library that calls the C library through cgo: a test
// binary that uses it is dynamically linked (unless linked with -static),
// and needs its loader and libc in the guest.
package cgo

/*
#include <unistd.h>
#include <gnu/libc-version.h>
*/
import "C"

// Getpid is getpid(2) through the C library.
func Getpid() int { return int(C.getpid()) }

// LibcVersion is the version of the C library the process runs with.
func LibcVersion() string { return C.GoString(C.gnu_get_libc_version()) }
