package c

// Size is the c size.
const Size = 8
