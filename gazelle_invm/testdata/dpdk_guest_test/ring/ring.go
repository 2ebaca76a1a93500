package ring

// Size is the ring size.
const Size = 8
