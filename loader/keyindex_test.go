package loader

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestKeyIndex: the index agrees with a Go map through growth, overwrites
// and colliding low bits.
func TestKeyIndex(t *testing.T) {
	t.Run("heap", func(t *testing.T) { testKeyIndex(t, 0, 50000) })
	// Presized past the mapping threshold: mapped, then grown into a
	// mapping twice as large.
	t.Run("mapped", func(t *testing.T) { testKeyIndex(t, 400000, 1000000) })
}

func testKeyIndex(t *testing.T, size, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, want := newKeyIndex(size), map[uint64]int{}
	if size > 0 && x.m.mem == nil {
		t.Fatalf("an index for %d keys is not mapped", size)
	}
	first := rng.Uint64()
	for i := range n {
		k := rng.Uint64()
		switch i % 4 {
		case 1:
			k = uint64(i) << 40 // same low bits: long probe runs
		case 2:
			k = first // an overwrite
		case 3:
			k = uint64(i % 7) // small keys, 0 among them
		}
		if i == 0 {
			k = first
		}
		x.put(k, i)
		want[k] = i
	}
	for k, v := range want {
		if got, ok := x.get(k); !ok || got != v {
			t.Fatalf("key %#x: %d %v, want %d", k, got, ok, v)
		}
	}
	for range 1000 {
		k := rng.Uint64()
		if _, ok := want[k]; ok {
			continue
		}
		if _, ok := x.get(k); ok {
			t.Fatalf("key %#x found, never put", k)
		}
	}
	if size > 0 && x.m.mem == nil {
		t.Error("the grown index is not mapped")
	}
	got := x.keys()
	slices.Sort(got)
	var keys []uint64
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("keys: %d listed, %d put", len(got), len(keys))
	}
}
