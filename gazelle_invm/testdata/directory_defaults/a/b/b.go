package b

// Size is the b size.
const Size = 8
