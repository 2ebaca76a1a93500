// Command init is the PID 1 of rules_go_vm guests (package guestinit). Build
// it static: CGO_ENABLED=0 go build ./guestinit/cmd/init.
package main

import (
	"fmt"
	"os"

	"github.com/rules-go-vm/rules_go_vm/guestinit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "init: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	return guestinit.Main()
}
