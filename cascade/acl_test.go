package cascade_test

import (
	"cmp"
	"net/netip"
	"slices"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/cascade"
)

// This file is an ACL-shaped consumer: rules are keyed by their priority (their
// identity), but packets are classified by predicate, not by key. The
// classifier is compiled from a Snapshot and cached by generation, the way a
// software dataplane (or a hardware offload fed by drain events) would use the
// cascade. Unlike the upstream Rust toy, rules can also be removed: a
// tombstone on a priority is definitive, so the removal shadows the rule in
// older layers.

type priority uint32

type aclRule struct {
	src, dst netip.Prefix
	port     uint16 // 0 matches any port
	permit   bool
}

type packet struct {
	src, dst netip.Addr
	port     uint16
}

func (r aclRule) matches(p packet) bool {
	return r.src.Contains(p.src) && r.dst.Contains(p.dst) && (r.port == 0 || r.port == p.port)
}

type prioritized struct {
	prio priority
	rule aclRule
}

// classifier is a compiled, immutable view: rules sorted by priority (lower
// wins), matched first-match.
type classifier struct {
	gen   cascade.Generation
	rules []prioritized
}

func compile(s cascade.Snapshot[priority, aclRule]) *classifier {
	c := &classifier{gen: s.Generation()}
	for p, r := range s.All() {
		c.rules = append(c.rules, prioritized{p, r})
	}
	slices.SortFunc(c.rules, func(a, b prioritized) int { return cmp.Compare(a.prio, b.prio) })
	return c
}

// classify returns the action and priority of the first matching rule;
// default deny.
func (c *classifier) classify(p packet) (permit bool, prio priority, ok bool) {
	for _, r := range c.rules {
		if r.rule.matches(p) {
			return r.rule.permit, r.prio, true
		}
	}
	return false, 0, false
}

// acl recompiles only when a rotation published a new generation.
type acl struct {
	c        *cascade.Cascade[priority, aclRule]
	compiled *classifier
}

func (a *acl) classify(p packet) (bool, priority, bool) {
	if s := a.c.Snapshot(); a.compiled == nil || a.compiled.gen != s.Generation() {
		a.compiled = compile(s)
	}
	return a.compiled.classify(p)
}

func pkt(src, dst string, port uint16) packet {
	return packet{netip.MustParseAddr(src), netip.MustParseAddr(dst), port}
}

func rule(src, dst string, port uint16, permit bool) aclRule {
	return aclRule{netip.MustParsePrefix(src), netip.MustParsePrefix(dst), port, permit}
}

func TestACLConsumer(t *testing.T) {
	c, err := cascade.New[priority, aclRule](cascade.Options[aclRule]{})
	if err != nil {
		t.Fatal(err)
	}
	a := &acl{c: c}

	// Baseline policy, compacted into the tail.
	c.Put(100, rule("10.0.0.0/8", "0.0.0.0/0", 0, true))
	c.Put(900, rule("0.0.0.0/0", "0.0.0.0/0", 0, false))
	rotate(t, c)
	compact(t, c)
	// A more specific deny, frozen but not compacted.
	c.Put(50, rule("10.1.0.0/16", "192.168.0.0/16", 22, false))
	rotate(t, c)

	type want struct {
		permit bool
		prio   priority
		ok     bool
	}
	steps := []struct {
		name   string
		mutate func()
		probes map[packet]want
	}{
		{
			name:   "tail and frozen rules combine by priority",
			mutate: func() {},
			probes: map[packet]want{
				pkt("10.1.2.3", "192.168.1.1", 22): {false, 50, true},
				pkt("10.1.2.3", "192.168.1.1", 80): {true, 100, true},
				pkt("10.9.9.9", "8.8.8.8", 53):     {true, 100, true},
				pkt("172.16.0.1", "8.8.8.8", 53):   {false, 900, true},
			},
		},
		{
			name: "head rules are not classified until rotated",
			mutate: func() {
				c.Put(10, rule("172.16.0.0/12", "0.0.0.0/0", 443, true))
			},
			probes: map[packet]want{
				pkt("172.16.0.1", "1.1.1.1", 443): {false, 900, true},
			},
		},
		{
			name:   "after rotation the head rule wins",
			mutate: func() { rotate(t, c) },
			probes: map[packet]want{
				pkt("172.16.0.1", "1.1.1.1", 443): {true, 10, true},
				pkt("172.16.0.1", "1.1.1.1", 80):  {false, 900, true},
			},
		},
		{
			name: "removing a tail rule: tombstone shadows it",
			mutate: func() {
				c.Delete(100)
				rotate(t, c)
			},
			probes: map[packet]want{
				pkt("10.9.9.9", "8.8.8.8", 53):     {false, 900, true},
				pkt("10.1.2.3", "192.168.1.1", 22): {false, 50, true},
			},
		},
		{
			name: "replacing a frozen rule by priority, then compacting all",
			mutate: func() {
				c.Put(50, rule("10.1.0.0/16", "192.168.0.0/16", 22, true))
				rotate(t, c)
				compact(t, c)
			},
			probes: map[packet]want{
				pkt("10.1.2.3", "192.168.1.1", 22): {true, 50, true},
				pkt("10.1.2.3", "192.168.1.1", 23): {false, 900, true},
			},
		},
		{
			name: "removing the default leaves no match",
			mutate: func() {
				c.Delete(900)
				rotate(t, c)
			},
			probes: map[packet]want{
				pkt("8.8.8.8", "8.8.4.4", 53): {false, 0, false},
			},
		},
	}
	for _, st := range steps {
		st.mutate()
		for p, w := range st.probes {
			permit, prio, ok := a.classify(p)
			if (want{permit, prio, ok}) != w {
				t.Errorf("%s: classify(%v) = (%v, %d, %v), want %+v", st.name, p, permit, prio, ok, w)
			}
		}
	}
	// The compiled classifier was rebuilt per generation, not per packet.
	if got := a.compiled.gen; got != c.Snapshot().Generation() {
		t.Errorf("compiled generation %d, snapshot %d", got, c.Snapshot().Generation())
	}
}
