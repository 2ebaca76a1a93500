package a

// Size is the a size.
const Size = 8
