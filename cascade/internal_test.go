package cascade

import (
	"testing"
	"unsafe"
)

// TestShardIsOneCacheLine keeps head shards from sharing cache lines
// (false sharing between writers of neighbouring shards).
func TestShardIsOneCacheLine(t *testing.T) {
	if got := unsafe.Sizeof(shard[string, [4]uint64]{}); got != 64 {
		t.Fatalf("sizeof(shard) = %d, want 64", got)
	}
}

// TestBloomSlotIndependentOfShard checks that the filter bits come from hash
// bits the shard index does not use, so keys of one shard spread over the
// whole filter.
func TestBloomSlotIndependentOfShard(t *testing.T) {
	seen := map[[2]uint64]bool{}
	for top := range uint64(256) {
		w, bit := bloomSlot(top<<56 | 0xFFFF) // same low (shard) bits
		seen[[2]uint64{uint64(w), bit}] = true
	}
	if len(seen) != bloomWords*64 {
		t.Fatalf("%d distinct filter slots, want %d", len(seen), bloomWords*64)
	}
}
