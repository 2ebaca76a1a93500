// Package key is the match-key vocabulary shared by every classifier in acl/:
// fixed-size big-endian field values, the four predicate kinds, key schemas,
// rules, and packing a key to bytes.
//
// # Fields and kinds
//
// A key is an ordered list of fields. Each field has a name, a [Kind]
// ([KindPrefix], [KindMask], [KindRange] or [KindExact]), a size in bytes
// (1, 2, 4, 8 or 16) and an offset in the packed key. Packed keys are the
// fields' big-endian bytes laid end to end in declaration order.
//
// The value vocabulary ([U8], [U16], [U32], [U64], [U128], [IPv4], [IPv6],
// [Port], [VNI]) implements [Value]: a fixed byte width plus a big-endian
// write. A VNI is a 24-bit value carried in a 4-byte field (high byte zero),
// because classifiers model fields in 1/2/4/8/16-byte widths.
//
// # Declaring a key: struct tags, read once
//
// Rust upstream derives the key description with a proc macro. Go has no
// derive; the two idiomatic substitutes are struct tags read with reflect or a
// go generate tool. This package uses struct tags, read exactly once per type
// by [CodecOf] (and cached), because:
//
//   - the key declaration stays a plain struct, with no generated file to keep
//     in sync and no extra tool in the (Bazel/gazelle) build;
//   - reflection only runs at table build: [CodecOf] turns the tags into a
//     small list of (struct offset, width) pack operations, so packing a key on
//     the hot path is a loop of fixed-width loads and big-endian stores with no
//     reflection and no allocation;
//   - runtime-shaped tables need a schema value anyway ([Schema]); a typed key
//     is just a struct whose schema is derived from its tags.
//
// A key is declared like this:
//
//	type FiveTuple struct {
//		Proto key.U8   `acl:"proto,exact"`
//		Src   key.IPv4 `acl:"src,prefix"`
//		Dst   key.IPv4 `acl:"dst,prefix"`
//		SPort key.Port `acl:"sport,range"`
//		DPort key.Port `acl:"dport,range"`
//	}
//
// The tag is `acl:"name,kind"`; untagged fields (metadata, say) are ignored.
// Allowed Go field types: unsigned integers of 8/16/32/64 bits (including
// named types such as [Port] and [VNI]), byte arrays of 1, 2, 4, 8 or 16 bytes
// (such as [IPv4] and [IPv6]) and [U128].
//
// # Rules
//
// A [Rule] carries one predicate ([Pred]) per schema field, positionally; a
// missing or zero predicate is a wildcard. Predicates are built with [Exact],
// [Prefix], [Mask], [Range] and [Any] and must match the field's kind and
// size. [Schema.Lower] validates a rule and lowers it to a canonical
// byte-level form ([Lowered]) that every backend consumes; failures are
// [*RuleError] values naming the rule index and the field, wrapping one of the
// sentinel errors of this package.
//
// # Precedence
//
// Every backend in acl/ resolves overlapping rules the same way: the highest
// [Rule.Priority] wins; among equal priorities the rule added first wins.
package key
