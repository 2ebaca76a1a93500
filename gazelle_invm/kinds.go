package gazelle_invm

import (
	"slices"

	"github.com/bazelbuild/bazel-gazelle/rule"

	"github.com/rules-go-vm/rules_go_vm/vmspec"
)

// vmTestKind is the rule this language generates.
const vmTestKind = "go_vm_test"

// goTestKind is the Go language's test rule, which this language trims.
const goTestKind = "go_test"

// generatedVMAttrs are the go_vm_test attributes this language writes from
// //invm: directives and # gazelle:invm_* defaults. They are mergeable: Gazelle
// rewrites them on every run (the directives are their source of truth), and
// deletes them when no directive asks for them. A hand edit of one of them
// survives only with a `# keep` comment. They are the VM spec's fields
// (package vmspec) and Gazelle's kernel and arch (target_compatible_with).
var generatedVMAttrs = func() []string {
	attrs := []string{"kernel", "target_compatible_with"} // Gazelle's own directives
	for _, f := range vmspec.Fields {
		attrs = append(attrs, f.Name)
	}
	slices.Sort(attrs)
	return attrs
}()

// Kinds describes go_vm_test to Gazelle's merger:
//   - mergeable (regenerated every run): srcs, embed and generatedVMAttrs;
//   - resolved after indexing: deps;
//   - preserved (written once when the rule is created, or never; hand edits
//     survive): data, size, timeout, tags, args, env, flaky, shard_count,
//     visibility, local, pure and every other attribute.
//
// A go_vm_test is empty, and deleted, when it has no srcs left.
func (*invmLang) Kinds() map[string]rule.KindInfo {
	mergeable := map[string]bool{"srcs": true, "embed": true}
	for _, a := range generatedVMAttrs {
		mergeable[a] = true
	}
	return map[string]rule.KindInfo{
		vmTestKind: {
			NonEmptyAttrs:   map[string]bool{"srcs": true},
			SubstituteAttrs: map[string]bool{"embed": true},
			MergeableAttrs:  mergeable,
			ResolveAttrs:    map[string]bool{"deps": true},
		},
	}
}
