package key

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package and the backends wrap one
// of these; test with errors.Is.
var (
	// ErrBadSchema reports an invalid key schema.
	ErrBadSchema = errors.New("invalid key schema")
	// ErrFieldSize reports a field width outside 1, 2, 4, 8, 16.
	ErrFieldSize = errors.New("unsupported field size")
	// ErrTooManyFields reports a schema with more fields than a backend allows.
	ErrTooManyFields = errors.New("too many fields")
	// ErrKeyTooLarge reports a key wider than [MaxKeySize] (or a backend limit).
	ErrKeyTooLarge = errors.New("key over size limit")
	// ErrKindMismatch reports a predicate whose kind differs from its field's.
	ErrKindMismatch = errors.New("predicate kind does not match field kind")
	// ErrValueSize reports a predicate value whose width differs from its field's.
	ErrValueSize = errors.New("predicate value size does not match field size")
	// ErrPrefixTooLong reports a prefix length longer than the field.
	ErrPrefixTooLong = errors.New("prefix longer than field")
	// ErrRangeInverted reports a range whose min is greater than its max.
	ErrRangeInverted = errors.New("range min > max")
	// ErrRangeTooWide reports a range on a field wider than a backend allows.
	ErrRangeTooWide = errors.New("range on a field wider than the backend allows")
	// ErrTooManyPredicates reports a rule with more predicates than fields.
	ErrTooManyPredicates = errors.New("more predicates than key fields")
	// ErrDuplicatePriority reports two rules with the same priority where
	// unique priorities are required.
	ErrDuplicatePriority = errors.New("duplicate priority")
	// ErrCategory reports a category mask outside the table's categories.
	ErrCategory = errors.New("category mask outside the table's categories")
	// ErrKeyLength reports a packed key whose length differs from the schema.
	ErrKeyLength = errors.New("packed key length does not match schema")
)

// RuleError is a rule that failed validation: which rule (by insertion
// index), which field (by name, empty for rule-wide problems) and why.
type RuleError struct {
	// Rule is the rule's index in insertion order.
	Rule int
	// Field is the offending field's name, or "" for rule-wide errors.
	Field string
	// Err is the cause; it wraps one of the package's sentinel errors.
	Err error
}

// Error implements error.
func (e *RuleError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("acl: rule %d: %v", e.Rule, e.Err)
	}
	return fmt.Sprintf("acl: rule %d field %q: %v", e.Rule, e.Field, e.Err)
}

// Unwrap returns the cause.
func (e *RuleError) Unwrap() error { return e.Err }

// FieldError is a schema field that a schema or a backend cannot accept.
type FieldError struct {
	// Field is the field's name.
	Field string
	// Err is the cause; it wraps one of the package's sentinel errors.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string { return fmt.Sprintf("acl: field %q: %v", e.Field, e.Err) }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }
