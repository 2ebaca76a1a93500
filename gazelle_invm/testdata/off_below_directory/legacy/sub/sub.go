package sub

// Size is the sub size.
const Size = 8
