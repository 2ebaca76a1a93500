package guest

import "testing"

// Seven top-level tests for three shards: each must run in exactly one.
func TestShard0(t *testing.T) { t.Log("contract shard test 0") }
func TestShard1(t *testing.T) { t.Log("contract shard test 1") }
func TestShard2(t *testing.T) { t.Log("contract shard test 2") }
func TestShard3(t *testing.T) { t.Log("contract shard test 3") }
func TestShard4(t *testing.T) { t.Log("contract shard test 4") }
func TestShard5(t *testing.T) { t.Log("contract shard test 5") }
func TestShard6(t *testing.T) { t.Log("contract shard test 6") }
