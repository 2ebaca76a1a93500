package cascade

import "errors"

// Sentinel errors. Functions wrap them with %w and extra context; test with
// errors.Is.
var (
	// ErrInvalidOptions reports an Options or SubscribeOptions value that
	// fails Validate.
	ErrInvalidOptions = errors.New("cascade: invalid options")
	// ErrZeroGeneration reports a zero Generation where a real one is
	// required.
	ErrZeroGeneration = errors.New("cascade: zero generation")
	// ErrStaleGeneration reports a Rotate to a generation that is not
	// newer than the current head.
	ErrStaleGeneration = errors.New("cascade: stale generation")
	// ErrBeyondFrozen reports a CompactThrough or FuseThrough watermark
	// newer than the newest frozen layer (the head cannot be compacted;
	// Rotate first).
	ErrBeyondFrozen = errors.New("cascade: watermark beyond newest frozen layer")
	// ErrCompacted reports an as-of lookup older than the tail or strictly
	// inside a fused layer: that history has been folded away.
	ErrCompacted = errors.New("cascade: generation already compacted")
	// ErrFutureGeneration reports an as-of lookup newer than the snapshot.
	ErrFutureGeneration = errors.New("cascade: generation newer than snapshot")
)
