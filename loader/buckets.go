package loader

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The answer index of a generation is an mmapable array of buckets
// (bpf/abi.h struct index_bucket): 16 keys, then their 16 values. A key
// sits in one of its two home buckets, chosen by the high and the low half
// of the hash, the emptier one when it is added; bucket 0 is the header,
// holding the number of buckets after it.
//
// Why not a hash map, as before: a preallocated BPF hash map took about 90
// bytes of kernel memory an entry (330 MiB for a 1M-name zone's 3M keys),
// 1.1 s to create and 1.2-1.5 s of batch updates to fill. The array is
// written through a mapping, with no syscall; at most 80% full, it takes
// 25 bytes a key. Two buckets of 16 slots at 80% leave no key out: a
// simulation of 3M keys, five times, placed every one.
//
// Readers (bpf/dns.h index_find) run while we write, so the order matters:
// a new key's value is written before the key, the key with one aligned
// store; a changed value is changed word by word in its slot, each word a
// valid ref on its own; a deleted key is cleared, its value left. No key
// is ever moved, so a reader never misses one that is there throughout.
const (
	indexSlots   = 16
	bucketLen    = indexSlots*8 + indexSlots*12 // sizeof(struct index_bucket)
	indexPercent = 80                           // slots filled at most, by the sizing
)

// bucketsFor is the number of buckets (header not counted) for entries.
func bucketsFor(entries int) int {
	return max(1, (entries*100/indexPercent+indexSlots-1)/indexSlots)
}

// bucketIndex is a generation's index map and its mapping.
type bucketIndex struct {
	m   *ebpf.Map
	mem []byte // header and buckets, mapped read-write
	n   uint64 // buckets after the header
}

func (x *XDP) newIndex(entries int) (*bucketIndex, error) {
	n := bucketsFor(entries)
	is := x.indexSpec.Copy()
	is.MaxEntries = uint32(n + 1)
	m, err := ebpf.NewMap(is)
	if err != nil {
		return nil, fmt.Errorf("create answer index of %d entries: %w", entries, permission(err))
	}
	ix, err := mapIndex(m)
	if err != nil {
		return nil, err
	}
	atomic.StoreUint64(ix.key(0, 0), uint64(n))
	ix.n = uint64(n)
	return ix, nil
}

// mapIndex maps m's buckets, taking m (closed on error); n is read from
// the header (zero in a new map).
func mapIndex(m *ebpf.Map) (*bucketIndex, error) {
	if m.ValueSize() != bucketLen || m.MaxEntries() < 2 {
		m.Close()
		return nil, fmt.Errorf("answer index: %d buckets of %d bytes: %w", m.MaxEntries(), m.ValueSize(), ErrABI)
	}
	mem, err := unix.Mmap(m.FD(), 0, int(m.MaxEntries())*bucketLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("map answer index: %w", err)
	}
	ix := &bucketIndex{m: m, mem: mem}
	ix.n = atomic.LoadUint64(ix.key(0, 0))
	if ix.n >= uint64(m.MaxEntries()) {
		ix.close()
		return nil, fmt.Errorf("answer index: header says %d buckets in %d: %w", ix.n, m.MaxEntries(), ErrABI)
	}
	return ix, nil
}

// close unmaps the buckets and closes the map.
func (ix *bucketIndex) close() {
	if ix == nil {
		return
	}
	if ix.mem != nil {
		unix.Munmap(ix.mem)
		ix.mem = nil
	}
	ix.m.Close()
}

func (ix *bucketIndex) key(b uint64, i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&ix.mem[b*bucketLen+uint64(i)*8]))
}

func (ix *bucketIndex) val(b uint64, i int) *xdpnsIndexVal {
	return (*xdpnsIndexVal)(unsafe.Pointer(&ix.mem[b*bucketLen+indexSlots*8+uint64(i)*12]))
}

// homes are key's two buckets, as index_find computes them.
func (ix *bucketIndex) homes(key uint64) [2]uint64 {
	return [2]uint64{1 + (key>>32)*ix.n>>32, 1 + (key&0xffffffff)*ix.n>>32}
}

// find returns the bucket and slot holding key.
func (ix *bucketIndex) find(key uint64) (uint64, int, bool) {
	for _, b := range ix.homes(key) {
		for i := range indexSlots {
			if *ix.key(b, i) == key {
				return b, i, true
			}
		}
	}
	return 0, 0, false
}

func (ix *bucketIndex) lookup(key uint64) (xdpnsIndexVal, bool) {
	b, i, ok := ix.find(key)
	if !ok {
		return xdpnsIndexVal{}, false
	}
	return *ix.val(b, i), true
}

// put sets key's value, adding the key when it is not there; errNoRoom:
// both its buckets are full.
func (ix *bucketIndex) put(key uint64, v xdpnsIndexVal) error {
	if b, i, ok := ix.find(key); ok {
		p := ix.val(b, i)
		atomic.StoreUint32(&p.Ref[0], v.Ref[0])
		atomic.StoreUint32(&p.Ref[1], v.Ref[1])
		atomic.StoreUint32(&p.Zone, v.Zone)
		return nil
	}
	best, slot, free := uint64(0), 0, 0
	for _, b := range ix.homes(key) {
		n, first := 0, 0
		for i := indexSlots - 1; i >= 0; i-- {
			if *ix.key(b, i) == 0 {
				n, first = n+1, i
			}
		}
		if n > free {
			best, slot, free = b, first, n
		}
	}
	if free == 0 {
		return errNoRoom
	}
	ix.set(best, slot, key, v)
	return nil
}

// set fills a free slot: the value, then the key that makes it visible.
func (ix *bucketIndex) set(b uint64, i int, key uint64, v xdpnsIndexVal) {
	p := ix.val(b, i)
	atomic.StoreUint32(&p.Ref[0], v.Ref[0])
	atomic.StoreUint32(&p.Ref[1], v.Ref[1])
	atomic.StoreUint32(&p.Zone, v.Zone)
	atomic.StoreUint64(ix.key(b, i), key)
}

// del removes key, reporting whether it was there.
func (ix *bucketIndex) del(key uint64) bool {
	b, i, ok := ix.find(key)
	if ok {
		atomic.StoreUint64(ix.key(b, i), 0)
	}
	return ok
}

// each calls fn for every key and its value.
func (ix *bucketIndex) each(fn func(key uint64, v xdpnsIndexVal)) {
	for b := uint64(1); b <= ix.n; b++ {
		for i := range indexSlots {
			if k := *ix.key(b, i); k != 0 {
				fn(k, *ix.val(b, i))
			}
		}
	}
}

// fill writes keys and vals into an empty index, not yet read by XDP (the
// generation is published after): the bucket counts are kept aside rather
// than read back, so each key costs the two cache lines it writes.
// errNoRoom: both buckets of a key were full.
func (ix *bucketIndex) fill(keys []uint64, vals []xdpnsIndexVal) error {
	used := make([]uint8, ix.n+1)
	for k, key := range keys {
		h := ix.homes(key)
		b := h[0]
		if used[h[1]] < used[b] {
			b = h[1]
		}
		if used[b] == indexSlots {
			return fmt.Errorf("answer index: %d of %d keys placed: %w", k, len(keys), errNoRoom)
		}
		*ix.val(b, int(used[b])) = vals[k]
		*ix.key(b, int(used[b])) = key
		used[b]++
	}
	return nil
}
