package dpdk

import (
	"errors"
	"fmt"
)

// Sentinel errors of this package.
var (
	// ErrEAL reports an EAL initialisation failure.
	ErrEAL = errors.New("dpdk: EAL init failed")
	// ErrEALTwice reports a second InitEAL: DPDK starts one EAL per process.
	ErrEALTwice = errors.New("dpdk: the EAL was already initialised in this process (InitEAL may be called once)")
	// ErrNoEAL reports a call that needs the EAL before InitEAL succeeded.
	ErrNoEAL = errors.New("dpdk: the EAL is not running")
	// ErrDPDK reports a failing DPDK call; the *Error carries rte_errno.
	ErrDPDK = errors.New("dpdk call failed")
	// ErrOptions reports invalid options.
	ErrOptions = errors.New("dpdk: invalid options")
	// ErrNoPort reports a port id that names no ethdev port.
	ErrNoPort = errors.New("dpdk: no such port")
	// ErrClosed reports use of a closed port or pool.
	ErrClosed = errors.New("dpdk: closed")
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
