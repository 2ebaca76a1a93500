//go:build dpdk

package dpdk

/*
#define _GNU_SOURCE
#include <stdlib.h>
#include <sched.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>

// Restores the caller's CPU affinity: rte_eal_init pins its caller to the
// main lcore, which would pin a Go runtime thread.
static int rgv_eal_init(int argc, char **argv) {
	cpu_set_t saved;
	int have = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
	int rc = rte_eal_init(argc, argv);
	if (have)
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	return rc;
}

// rte_errno is a per-lcore macro: a function for cgo.
static int rgv_errno(void) { return rte_errno; }
*/
import "C"

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// EALOptions says how to start the EAL. The zero value starts one that
// works on a development machine without devices (no hugepages, no PCI):
// what a unit test wants. A guest test with NICs names them in Allow and
// sets Hugepages.
type EALOptions struct {
	// Lcores is the -l list; "" means "0" (one lcore: the test's thread).
	Lcores string
	// MemoryMB is the EAL memory (-m); 0 means 256.
	MemoryMB int
	// Hugepages uses the hugepages the system has (else --no-huge, with
	// memory from the heap: enough for mempools and rte_acl, not for
	// physical-address DMA).
	Hugepages bool
	// Allow lists the PCI devices the EAL may probe (-a, e.g.
	// "0000:00:10.0"); empty means --no-pci.
	Allow []string
	// VDevs are virtual devices (--vdev, e.g. "net_ring0").
	VDevs []string
	// LogLevel is --log-level; "" means "error".
	LogLevel string
	// Extra are more EAL arguments, appended last.
	Extra []string
}

// Validate checks the options.
func (o EALOptions) Validate() error {
	if o.MemoryMB < 0 {
		return fmt.Errorf("%w: MemoryMB %d: want 0 (default 256) or more", ErrOptions, o.MemoryMB)
	}
	for _, a := range o.Allow {
		if a == "" || strings.ContainsAny(a, " ,") {
			return fmt.Errorf("%w: Allow entry %q: want one PCI address like 0000:00:10.0", ErrOptions, a)
		}
	}
	for _, v := range o.VDevs {
		if v == "" || strings.ContainsAny(v, " ") {
			return fmt.Errorf("%w: VDevs entry %q: want a device like net_ring0", ErrOptions, v)
		}
	}
	return nil
}

// Args returns the EAL argument vector these options make (without
// argv[0]).
func (o EALOptions) Args() []string {
	lcores, mem, level := o.Lcores, o.MemoryMB, o.LogLevel
	if lcores == "" {
		lcores = "0"
	}
	if mem == 0 {
		mem = 256
	}
	if level == "" {
		level = "error"
	}
	args := []string{"-l", lcores, "-m", strconv.Itoa(mem), "--no-shconf", "--no-telemetry", "--log-level=" + level}
	if o.Hugepages {
		// No hugepage files and no runtime directory (a guest has no
		// /var/run/dpdk): the memory lives as long as the process.
		args = append(args, "--in-memory")
	} else {
		args = append(args, "--no-huge")
	}
	if len(o.Allow) == 0 {
		args = append(args, "--no-pci")
	}
	for _, a := range o.Allow {
		args = append(args, "-a", a)
	}
	for _, v := range o.VDevs {
		args = append(args, "--vdev", v)
	}
	return append(args, o.Extra...)
}

// eal is the process's one EAL: DPDK allows one rte_eal_init per process
// (a second, even after rte_eal_cleanup, fails), so the package refuses it
// before DPDK can.
var eal struct {
	sync.Mutex
	tried bool
	err   error
	args  []string
}

// InitEAL starts the EAL with o. It may be called once per process: a
// second call returns ErrEALTwice (with the first call's arguments and
// result in its message), whatever the first call's outcome. A failure
// wraps ErrEAL and carries rte_errno's text (an *Error). Before DPDK runs,
// InitEAL checks what the EAL would fail on obscurely: ErrNoHugepages,
// ErrNoDevice and ErrKernelDriver name the option and the fix, and leave
// InitEAL callable again.
func InitEAL(o EALOptions) error {
	eal.Lock()
	defer eal.Unlock()
	if eal.tried {
		state := "it succeeded"
		if eal.err != nil {
			state = "it failed: " + eal.err.Error()
		}
		return fmt.Errorf("%w: the first call had args %q and %s", ErrEALTwice, eal.args, state)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := checkSystem(o); err != nil {
		return err
	}
	eal.tried = true
	eal.args = o.Args()
	eal.err = initEAL(append([]string{"rules_go_vm"}, eal.args...))
	return eal.err
}

// initEAL calls rte_eal_init with argv.
func initEAL(argv []string) error {
	// The strings and the vector are C memory, kept for the process's
	// lifetime: rte_eal_init permutes the vector and DPDK may keep
	// pointers into it.
	cargv := (**C.char)(C.malloc(C.size_t(len(argv)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	vec := unsafe.Slice(cargv, len(argv)+1)
	for i, a := range argv {
		vec[i] = C.CString(a)
	}
	vec[len(argv)] = nil
	runtime.LockOSThread()
	rc := C.rgv_eal_init(C.int(len(argv)), cargv)
	errno := int(C.rgv_errno())
	runtime.UnlockOSThread()
	if rc < 0 {
		return fmt.Errorf("%w: args %q: %w", ErrEAL, argv[1:], dpdkErr("rte_eal_init", errno))
	}
	return nil
}

// EALArgs returns the arguments InitEAL used (nil before it was called).
func EALArgs() []string {
	eal.Lock()
	defer eal.Unlock()
	return append([]string(nil), eal.args...)
}

// EALRunning reports whether InitEAL succeeded in this process.
func EALRunning() bool { return ealUp() == nil }

// ealUp reports whether the EAL is running (for calls that need it).
func ealUp() error {
	eal.Lock()
	defer eal.Unlock()
	if !eal.tried || eal.err != nil {
		return fmt.Errorf("%w: call InitEAL first", ErrNoEAL)
	}
	return nil
}

// Version is the linked DPDK's version (rte_version, e.g. "DPDK 25.11.0").
// It does not need the EAL.
func Version() string { return C.GoString(C.rte_version()) }

// lastErr is rte_errno as an *Error of op.
func lastErr(op string) error { return dpdkErr(op, int(C.rgv_errno())) }

// Errno is errno (either sign) of the DPDK call op as an *Error, with
// rte_strerror's text: for other cgo packages' DPDK calls (acl/dpdkacl).
func Errno(op string, errno int) error { return dpdkErr(op, errno) }

// dpdkErr is errno (either sign) as an *Error of op.
func dpdkErr(op string, errno int) error {
	if errno < 0 {
		errno = -errno
	}
	return &Error{Op: op, Errno: errno, Msg: C.GoString(C.rte_strerror(C.int(errno)))}
}
