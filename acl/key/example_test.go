package key_test

import (
	"fmt"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
)

// ExampleCodecOf declares a key with struct tags and packs it.
func ExampleCodecOf() {
	type Overlay struct {
		VNI key.VNI  `acl:"vni,exact"`
		Dst key.IPv4 `acl:"dst,prefix"`
		Tag string   // not part of the key
	}
	c, err := key.CodecOf[Overlay]()
	if err != nil {
		panic(err)
	}
	k := Overlay{VNI: 0x123456, Dst: key.MustV4("192.0.2.7")}
	fmt.Println(c.Schema())
	fmt.Printf("%x\n", c.Append(nil, &k))
	// Output:
	// vni:exact/4 dst:prefix/4
	// 00123456c0000207
}

// ExampleSchema_Lower shows a validation error naming the rule and field.
func ExampleSchema_Lower() {
	s := key.MustSchema(key.Field{Name: "dst", Kind: key.KindPrefix, Size: 4})
	_, err := s.Lower(3, key.Rule{Fields: []key.Pred{key.Prefix(key.MustV4("10.0.0.0"), 33)}}, 1)
	fmt.Println(err)
	// Output: acl: rule 3 field "dst": prefix longer than field: /33 on a 32-bit field
}
