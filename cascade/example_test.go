package cascade_test

import (
	"errors"
	"fmt"
	"sort"

	"github.com/rules-go-vm/rules_go_vm/cascade"
)

// Example walks through write → rotate → compact → subscribe.
func Example() {
	c, err := cascade.New[string, int](cascade.Options[int]{})
	if err != nil {
		panic(err)
	}
	sub, err := c.Subscribe(cascade.SubscribeOptions{Buffer: 4})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	// Write: lands in the mutable head, visible to live reads at once.
	g := c.Put("web", 80)
	c.Put("ssh", 22)
	v, ok := c.Get("web")
	fmt.Println("write acknowledged at generation", g, "- live read:", v, ok)

	// Rotate: freeze the head; snapshots see everything sealed.
	if err := c.Rotate(g + 1); err != nil {
		panic(err)
	}
	snap := c.Snapshot()
	c.Delete("ssh") // a tombstone in the new head
	c.Put("dns", 53)
	_, live := c.Get("ssh")
	ssh, inSnap := snap.Get("ssh")
	fmt.Println("ssh live:", live, "- in snapshot:", ssh, inSnap)

	// Misuse is an error, not corruption.
	err = c.Rotate(g)
	fmt.Println("rotate backwards is stale:", errors.Is(err, cascade.ErrStaleGeneration))

	// Compact: fold frozen layers into the tail.
	if err := c.Rotate(c.Generation() + 1); err != nil {
		panic(err)
	}
	if err := c.Compact(); err != nil {
		panic(err)
	}
	final := c.Snapshot()
	var keys []string
	for k, v := range final.All() {
		keys = append(keys, fmt.Sprint(k, "=", v))
	}
	sort.Strings(keys)
	fmt.Println("after compact:", keys, "tail at generation", final.TailGeneration())

	// Subscribe: each rotation delivered its frozen entries.
	for range 2 {
		ev := <-sub.Events()
		fmt.Println("drained generation", ev.Generation, "with", len(ev.Entries), "entries; lag", sub.Lag())
	}
	// Output:
	// write acknowledged at generation 1 - live read: 80 true
	// ssh live: false - in snapshot: 22 true
	// rotate backwards is stale: true
	// after compact: [dns=53 web=80] tail at generation 2
	// drained generation 1 with 2 entries; lag 0
	// drained generation 2 with 2 entries; lag 0
}
