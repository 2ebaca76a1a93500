//go:build dpdk

package dpdkacl

/*
#include <rte_errno.h>
*/
import "C"

import (
	"errors"
	"fmt"

	"github.com/rules-go-vm/rules_go_vm/dpdk"
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

// eal is the package dpdk EAL these options ask for: no devices, one
// lcore, heap memory unless hugepages are preferred and free.
func (o EALOptions) eal() dpdk.EALOptions {
	mem := o.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	return dpdk.EALOptions{MemoryMB: mem, Hugepages: o.PreferHugepages && dpdk.FreeHugepages(), Extra: o.Extra}
}

// Args returns the EAL argument vector (without argv[0]) these options
// produce on this machine.
func (o EALOptions) Args() []string { return o.eal().Args() }

// InitEAL makes sure the DPDK EAL is up: it starts it with package dpdk
// (the one EAL of the process) unless it already runs, e.g. because the
// program started it itself with NICs for a dataplane test. A failure of
// the first start is returned again by later calls.
func InitEAL(o EALOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	err := dpdk.InitEAL(o.eal())
	if errors.Is(err, dpdk.ErrEALTwice) && dpdk.EALRunning() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEAL, err)
	}
	return nil
}

// EALArgs returns the arguments the EAL was started with (nil before).
func EALArgs() []string { return dpdk.EALArgs() }

// Version returns the linked DPDK's version string (rte_version), e.g.
// "DPDK 25.11.4". It does not need the EAL.
func Version() string { return dpdk.Version() }
