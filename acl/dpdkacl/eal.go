//go:build dpdk

package dpdkacl

/*
#define _GNU_SOURCE
#include <stdlib.h>
#include <sched.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>

static int goacl_eal_init(int argc, char **argv) {
	cpu_set_t saved;
	int have = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
	int rc = rte_eal_init(argc, argv);
	if (have)
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	return rc;
}

static int goacl_errno(void) { return rte_errno; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Sentinel errors of this package.
var (
	// ErrEAL reports an EAL initialisation failure.
	ErrEAL = errors.New("dpdk EAL init failed")
	// ErrDPDK reports a failing DPDK call; the *Error carries rte_errno.
	ErrDPDK = errors.New("dpdk call failed")
	// ErrClosed reports use of a closed table.
	ErrClosed = errors.New("table closed")
	// ErrOptions reports invalid options.
	ErrOptions = errors.New("invalid options")
)

// Error is a failed DPDK call with its errno and rte_strerror text.
type Error struct {
	// Op is the DPDK function that failed.
	Op string
	// Errno is the (positive) error number.
	Errno int
	// Msg is rte_strerror(Errno).
	Msg string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("dpdk: %s: %s (errno %d)", e.Op, e.Msg, e.Errno) }

// Unwrap returns ErrDPDK.
func (e *Error) Unwrap() error { return ErrDPDK }

func dpdkErr(op string, code int) error {
	if code < 0 {
		code = -code
	}
	return &Error{Op: op, Errno: code, Msg: C.GoString(C.rte_strerror(C.int(code)))}
}

// EALOptions configures [InitEAL].
type EALOptions struct {
	// MemoryMB is the EAL memory size (-m); 0 means 1024.
	MemoryMB int
	// PreferHugepages drops --no-huge when free hugepages exist.
	PreferHugepages bool
	// Extra are additional EAL arguments, appended last.
	Extra []string
}

// Validate checks the options.
func (o EALOptions) Validate() error {
	if o.MemoryMB < 0 {
		return fmt.Errorf("%w: MemoryMB %d", ErrOptions, o.MemoryMB)
	}
	return nil
}

// Args returns the EAL argument vector (without argv[0]) these options
// produce on this machine.
func (o EALOptions) Args() []string {
	mem := o.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	args := []string{"--no-pci", "--no-shconf", "--no-telemetry", "-l", "0", "--log-level=error", "-m", strconv.Itoa(mem)}
	if !o.PreferHugepages || !freeHugepages() {
		args = append([]string{"--no-huge"}, args...)
	}
	return append(args, o.Extra...)
}

func freeHugepages() bool {
	dirs, _ := filepath.Glob("/sys/kernel/mm/hugepages/hugepages-*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "free_hugepages"))
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return true
		}
	}
	return false
}

var (
	ealOnce sync.Once
	ealErr  error
	ealArgs []string
)

// InitEAL initialises the DPDK EAL once per process. Later calls (with any
// options) return the first call's result.
func InitEAL(o EALOptions) error {
	ealOnce.Do(func() {
		if err := o.Validate(); err != nil {
			ealErr = err
			return
		}
		ealArgs = append([]string{"rules_go_vm-acl"}, o.Args()...)
		argv := make([]*C.char, len(ealArgs)+1)
		for i, a := range ealArgs {
			argv[i] = C.CString(a)
		}
		// argv is Go memory holding C pointers only; rte_eal_init may
		// permute it, the strings are C memory and are kept for the
		// process lifetime (DPDK may keep references).
		cargv := (**C.char)(C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(argv[0]))))
		copy(unsafe.Slice(cargv, len(argv)), argv)
		runtime.LockOSThread()
		rc := C.goacl_eal_init(C.int(len(ealArgs)), cargv)
		runtime.UnlockOSThread()
		if rc < 0 {
			ealErr = fmt.Errorf("%w: args %q: %w", ErrEAL, ealArgs[1:], dpdkErr("rte_eal_init", int(C.goacl_errno())))
		}
	})
	return ealErr
}

// EALArgs returns the arguments InitEAL used (nil before the first call).
func EALArgs() []string { return append([]string(nil), ealArgs...) }

// Version returns the linked DPDK's version string (rte_version), e.g.
// "DPDK 25.11.4". It does not need the EAL.
func Version() string { return C.GoString(C.rte_version()) }
