//go:build dpdk

package dpdkacl

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
	ErrDPDK = dpdk.ErrDPDK
	// ErrClosed reports use of a closed table.
	ErrClosed = errors.New("table closed")
	// ErrOptions reports invalid options.
	ErrOptions = errors.New("invalid options")
)

// Error is a failed DPDK call with its errno and rte_strerror text
// (package dpdk's).
type Error = dpdk.Error

// dpdkErr is errno (either sign) of the call op as an *Error.
func dpdkErr(op string, code int) error { return dpdk.Errno(op, code) }

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
