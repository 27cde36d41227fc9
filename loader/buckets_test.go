package loader

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func testBuckets(n int) *bucketIndex {
	return &bucketIndex{mem: make([]byte, (n+1)*bucketLen), n: uint64(n)}
}

// TestBuckets: puts, changes and deletes agree with a Go map, keys stay
// where they were put, and a full pair of buckets is reported.
func TestBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const keys = 20000
	ix := testBuckets(bucketsFor(keys))
	want := map[uint64]xdpnsIndexVal{}
	var live []uint64
	where := map[uint64][2]uint64{}
	for i := range 4 * keys {
		switch {
		case len(live) > 0 && i%5 == 0: // delete
			j := rng.IntN(len(live))
			k := live[j]
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			if !ix.del(k) {
				t.Fatalf("key %#x not deleted", k)
			}
			delete(want, k)
			delete(where, k)
		case len(live) > 0 && i%5 == 1: // change in place
			k := live[rng.IntN(len(live))]
			v := xdpnsIndexVal{Ref: [2]uint32{uint32(i), uint32(i + 1)}, Zone: 7}
			if err := ix.put(k, v); err != nil {
				t.Fatal(err)
			}
			want[k] = v
			if b, s, _ := ix.find(k); [2]uint64{b, uint64(s)} != where[k] {
				t.Fatalf("key %#x moved from %v to %d/%d", k, where[k], b, s)
			}
		case len(live) < keys:
			k := rng.Uint64() | 1
			if _, ok := want[k]; ok {
				continue
			}
			v := xdpnsIndexVal{Ref: [2]uint32{uint32(i), refNone}, Zone: 3}
			if err := ix.put(k, v); err != nil {
				t.Fatalf("put %d of %d: %v", len(live), keys, err)
			}
			want[k] = v
			live = append(live, k)
			b, s, _ := ix.find(k)
			where[k] = [2]uint64{b, uint64(s)}
		}
	}
	got := map[uint64]xdpnsIndexVal{}
	ix.each(func(k uint64, v xdpnsIndexVal) { got[k] = v })
	if len(got) != len(want) {
		t.Fatalf("%d keys listed, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %#x: %v, want %v", k, got[k], v)
		}
		if lv, ok := ix.lookup(k); !ok || lv != v {
			t.Fatalf("lookup %#x: %v %v, want %v", k, lv, ok, v)
		}
	}
	if _, ok := ix.lookup(2); ok {
		t.Fatal("absent key found")
	}

	// One bucket: sixteen keys, then no room.
	one := testBuckets(1)
	for k := range uint64(indexSlots) {
		if err := one.put(k+1, xdpnsIndexVal{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := one.put(99, xdpnsIndexVal{}); !errors.Is(err, errNoRoom) {
		t.Fatalf("17th key in one bucket: %v, want errNoRoom", err)
	}
}

// TestBucketsFill: an index sized for n keys takes n put one by one (an
// image's layout, and the sizing it relies on), and copyFrom carries them
// into an index of as many buckets (a copy) and of other counts (placed
// anew), renumbering zones.
func TestBucketsFill(t *testing.T) {
	for _, n := range []int{1, 12, 1000, 300000} {
		rng := rand.New(rand.NewPCG(uint64(n), 5))
		keys := make([]uint64, n)
		vals := make([]xdpnsIndexVal, n)
		seen := map[uint64]bool{}
		ix := newMemIndex(n)
		for i := range keys {
			for keys[i] == 0 || seen[keys[i]] {
				keys[i] = rng.Uint64()
			}
			seen[keys[i]] = true
			vals[i] = xdpnsIndexVal{Ref: [2]uint32{uint32(i), uint32(i)}, Zone: uint32(i % 3)}
			if err := ix.put(keys[i], vals[i]); err != nil {
				t.Fatalf("%d keys: key %d: %v", n, i, err)
			}
		}
		if ix.count != n {
			t.Fatalf("%d keys: count %d", n, ix.count)
		}
		zone := []uint32{0, 7, 9} // zone 1 → 7, 2 → 9
		for _, size := range []int{n, 2 * n, n + 1000} {
			dst := newMemIndex(size)
			if err := dst.copyFrom(ix, zone); err != nil {
				t.Fatalf("%d keys into %d buckets: %v", n, dst.n, err)
			}
			if dst.count != n || *dst.key(0, 0) != dst.n {
				t.Fatalf("%d keys into %d buckets: count %d, header %d", n, dst.n, dst.count, *dst.key(0, 0))
			}
			for i, k := range keys {
				want := vals[i]
				want.Zone = zone[want.Zone]
				if v, ok := dst.lookup(k); !ok || v != want {
					t.Fatalf("%d keys into %d buckets: key %d: %v %v, want %v", n, dst.n, i, v, ok, want)
				}
			}
			dst.close()
		}
		ix.close()
		ix.close() // twice: no double unmap
	}
}
