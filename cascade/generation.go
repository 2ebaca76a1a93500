package cascade

// Generation orders the layers of a Cascade. Every head is stamped with the
// generation it was created at; Rotate freezes the head under that generation
// and installs a new head with a strictly greater one. Generations are
// therefore monotonic and non-zero: the zero value means "nothing yet" (for
// example the generation of a Snapshot taken before the first Rotate).
type Generation uint64
