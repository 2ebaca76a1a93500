package legacy

// Size is the legacy size.
const Size = 8
