package lifecycle_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rules-go-vm/rules_go_vm/lifecycle"
)

// A server with two components: requests stop before the store they
// write to.
func Example() {
	const (
		serveDrain = 2 * time.Second // in-flight requests finish
		storeFlush = 5 * time.Second // the store flushes and closes
	)
	sd, err := lifecycle.New(context.Background(), lifecycle.Options{
		Stages: []lifecycle.Stage{
			{Name: "serve", Deadline: serveDrain},
			{Name: "store", Deadline: storeFlush, Stop: func(context.Context) error {
				fmt.Println("store flushed")
				return nil
			}},
		},
		// Signals: sigs, from lifecycle.NotifySignals(), in a real main.
	})
	if err != nil {
		panic(err)
	}
	sd.Subsystem("serve").GoFatalOnExit("listener", func(ctx context.Context) error {
		<-ctx.Done() // serve until the serve stage drains
		fmt.Println("listener stopped")
		return nil
	})
	sd.Cancel(nil) // in a real main: a signal, or a fatal report
	<-sd.Done()
	rep := sd.Drain()
	fmt.Println(rep.Err(), sd.ExitCode())
	// Output:
	// listener stopped
	// store flushed
	// <nil> 0
}
