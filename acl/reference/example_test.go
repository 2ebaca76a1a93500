package reference_test

import (
	"fmt"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/lookup"
	"github.com/rules-go-vm/rules_go_vm/acl/reference"
)

// FiveTuple declares a key: one tagged field per match field, in order.
type FiveTuple struct {
	Proto key.U8   `acl:"proto,exact"`
	Src   key.IPv4 `acl:"src,prefix"`
	Dst   key.IPv4 `acl:"dst,prefix"`
	SPort key.Port `acl:"sport,range"`
	DPort key.Port `acl:"dport,range"`
}

// Example shows the whole flow: declare a key, add rules, classify a batch.
func Example() {
	const tcp = 6
	entries := []key.Entry[string]{
		{Rule: key.Rule{Priority: 10, Fields: []key.Pred{
			key.Exact(key.U8(tcp)),
			key.Prefix(key.MustV4("10.0.0.0"), 8),
			key.Any(),
			key.Any(),
			key.Range(key.Port(443), key.Port(443)),
		}}, Action: "allow https"},
		{Rule: key.Rule{Priority: 1, Fields: []key.Pred{ // lower priority catch-all
			key.Any(), key.Any(), key.Any(), key.Any(), key.Any(),
		}}, Action: "drop"},
	}
	table, err := reference.NewTyped[FiveTuple, string](entries, reference.Options{})
	if err != nil {
		panic(err)
	}
	batch := []FiveTuple{
		{Proto: tcp, Src: key.MustV4("10.1.2.3"), Dst: key.MustV4("192.0.2.1"), SPort: 40000, DPort: 443},
		{Proto: tcp, Src: key.MustV4("11.1.2.3"), Dst: key.MustV4("192.0.2.1"), SPort: 40000, DPort: 443},
	}
	acts := make([]string, len(batch))
	hits := make([]bool, len(batch))
	table.LookupBatch(batch, acts, hits)
	fmt.Println(acts)

	// The same table through the generic Lookup vocabulary.
	var l lookup.Lookup[FiveTuple, string] = table
	v, ok := l.Lookup(batch[0])
	fmt.Println(v, ok)
	// Output:
	// [allow https drop]
	// allow https true
}

// Example_runtimeSchema classifies packed keys of a schema known only at
// run time.
func Example_runtimeSchema() {
	s := key.MustSchema(
		key.Field{Name: "vni", Kind: key.KindExact, Size: 4},
		key.Field{Name: "dst", Kind: key.KindPrefix, Size: 16},
	)
	table, err := reference.New(s, []key.Entry[int]{
		{Rule: key.Rule{Fields: []key.Pred{key.Exact(key.VNI(42)), key.Prefix(key.MustV6("2001:db8::"), 32)}}, Action: 7},
	}, reference.Options{})
	if err != nil {
		panic(err)
	}
	k := make([]byte, s.Size())
	_ = s.Pack(k, key.VNI(42), key.MustV6("2001:db8::1"))
	fmt.Println(table.Lookup(k))
	// Output: 7 true
}
