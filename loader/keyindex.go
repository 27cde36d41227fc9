package loader

// keyIndex maps index keys to their position in Image.keys. It took the
// place of a map[uint64]int: for a 1M-name zone's 3M keys, the Go map's
// lookups were a fifth of the XDP load (a control word and a slot, two
// cache misses), where a slot here holds key and position together. Keys
// are keyHash's, mixed already: their low bits pick the slot.
type keyIndex struct {
	slots []keySlot
	n     int
}

type keySlot struct {
	key uint64
	pos uint32 // position + 1; 0: empty
}

// newKeyIndex returns an index with room for n keys before it grows.
func newKeyIndex(n int) *keyIndex {
	size := 16
	for size*3/4 < n {
		size *= 2
	}
	return &keyIndex{slots: make([]keySlot, size)}
}

// get returns the position of key.
func (x *keyIndex) get(key uint64) (int, bool) {
	mask := uint64(len(x.slots) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.pos == 0 {
			return 0, false
		}
		if s.key == key {
			return int(s.pos - 1), true
		}
	}
}

// put sets the position of key.
func (x *keyIndex) put(key uint64, pos int) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	mask := uint64(len(x.slots) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.pos == 0 {
			*s = keySlot{key, uint32(pos + 1)}
			x.n++
			return
		}
		if s.key == key {
			s.pos = uint32(pos + 1)
			return
		}
	}
}

func (x *keyIndex) grow() {
	old := x.slots
	x.slots, x.n = make([]keySlot, 2*len(old)), 0
	for _, s := range old {
		if s.pos != 0 {
			x.put(s.key, int(s.pos-1))
		}
	}
}

// keys lists them, in no order.
func (x *keyIndex) keys() []uint64 {
	out := make([]uint64, 0, x.n)
	for _, s := range x.slots {
		if s.pos != 0 {
			out = append(out, s.key)
		}
	}
	return out
}
