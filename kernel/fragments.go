// Package kernel holds the guest kernel configuration fragments
// (fragments/*.config) and source patches (patches/*.patch), embedded so
// tools can build the default kernel without a checkout. See kernel/kconfig
// for the fragment format, patches/README.md for the patches and
// kernel/kbuild for building.
package kernel

import (
	"embed"
	"io/fs"

	"github.com/rules-go-vm/rules_go_vm/kernel/kconfig"
)

//go:embed fragments/*.config
var fragments embed.FS

//go:embed patches/*.patch
var patches embed.FS

// Fragments returns the default fragments as a file system whose top level
// holds the *.config files (load them with kconfig.LoadDir).
func Fragments() fs.FS {
	sub, err := fs.Sub(fragments, "fragments")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// DefaultFragments parses the embedded fragments, in merge order (pass
// them to kbuild.Options.Fragments; each applies to the arches its
// "# arch:" line names, or to all).
func DefaultFragments() ([]*kconfig.Fragment, error) {
	return kconfig.LoadDir(Fragments())
}

// Patches returns the default source patches as a file system whose top
// level holds the *.patch files (load them with kbuild.LoadPatches, which
// orders them by name).
func Patches() fs.FS {
	sub, err := fs.Sub(patches, "patches")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}
