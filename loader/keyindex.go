package loader

import (
	"math/bits"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// keyIndex maps index keys to their position in Image.keys. It took the
// place of a map[uint64]int: for a 1M-name zone's 3M keys, the Go map's
// lookups were a fifth of the XDP load (a control word and a slot, two
// cache misses), where a slot here holds key and position together. A
// multiply spreads keys of any form (keyHash's are mixed already; a test's
// may not be) and its top bits pick the slot.
type keyIndex struct {
	slots []keySlot
	n     int
	m     *mapping // where slots are when mapped (mapping.slots)
}

type keySlot struct {
	key uint64
	pos uint32 // position + 1; 0: empty
}

type mapping struct{ mem []byte }

// newKeyIndex returns an index with room for n keys before it grows.
func newKeyIndex(n int) *keyIndex {
	size := 16
	for size*3/4 < n {
		size *= 2
	}
	x := &keyIndex{m: &mapping{}}
	x.slots = x.m.slots(size)
	runtime.AddCleanup(x, (*mapping).unmap, x.m)
	return x
}

// slots returns size zeroed slots, m holding their mapping if any (it
// must hold none). A large index is mapped in huge pages of its own: its
// lookups go anywhere in tens of megabytes, and in 4 KiB pages each missed
// the TLB as well as the cache (on this VM, a nested page walk), and each
// page's first touch was a fault.
func (m *mapping) slots(size int) []keySlot {
	const huge = 2 << 20
	bytes := size * int(unsafe.Sizeof(keySlot{}))
	if bytes < 4*huge {
		return make([]keySlot, size)
	}
	mem, err := unix.Mmap(-1, 0, bytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]keySlot, size)
	}
	unix.Madvise(mem, unix.MADV_HUGEPAGE) // advice: without it, small pages
	m.mem = mem
	return unsafe.Slice((*keySlot)(unsafe.Pointer(&mem[0])), size)
}

func (m *mapping) unmap() {
	if m.mem != nil {
		unix.Munmap(m.mem)
		m.mem = nil
	}
}

// first is key's first slot.
func (x *keyIndex) first(key uint64) uint64 {
	return (key * 0x9E3779B97F4A7C15) >> (64 - bits.TrailingZeros(uint(len(x.slots))))
}

// get returns the position of key.
func (x *keyIndex) get(key uint64) (int, bool) {
	mask := uint64(len(x.slots) - 1)
	for i := x.first(key); ; i = (i + 1) & mask {
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
	for i := x.first(key); ; i = (i + 1) & mask {
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
	keep := x.m.mem
	x.m.mem = nil // unmapped once copied
	x.slots, x.n = x.m.slots(2*len(old)), 0
	for _, s := range old {
		if s.pos != 0 {
			x.put(s.key, int(s.pos-1))
		}
	}
	if keep != nil {
		unix.Munmap(keep)
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
