// Command invm runs a Go test binary inside a Linux guest under QEMU and
// exits with the test's exit code; it is meant for `go test -exec invm`.
// See package runner/cli for the flags and exit codes.
package main

import (
	"context"
	"os"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
	"github.com/rules-go-vm/rules_go_vm/runner"
	"github.com/rules-go-vm/rules_go_vm/runner/cli"
)

func main() {
	sigs, stop := lifecycle.NotifySignals()
	code := runner.Launch(sigs, runner.LaunchGrace, os.Stderr, func(ctx context.Context) int {
		return cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	})
	stop()
	os.Exit(code)
}
