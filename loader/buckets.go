package loader

import (
	"fmt"
	"runtime"
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

// bucketIndex is a generation's index map and its mapping, or an image's
// index in memory of its own, laid out the same way (m nil): an image is
// laid out into its own buckets, copied whole into the generation's when
// both have as many (copyFrom).
type bucketIndex struct {
	m     *ebpf.Map
	mem   []byte // header and buckets, mapped read-write
	n     uint64 // buckets after the header
	count int    // keys put by put, less those deleted by del (unknown for a pinned map)
	// release unmaps mem when it is anonymous memory (newMemIndex).
	release *memRelease
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

// newMemIndex returns an index for entries in anonymous memory, in huge
// pages where the kernel has them: layout looks keys up anywhere in tens
// of megabytes, and in 4 KiB pages each lookup missed the TLB as well as
// the cache (on this VM, a nested page walk). Pages never written are
// never resident. The caller closes it (or the GC, once unreachable).
func newMemIndex(entries int) *bucketIndex {
	n := bucketsFor(entries)
	bytes := (n + 1) * bucketLen
	mem, err := unix.Mmap(-1, 0, bytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		mem = make([]byte, bytes) // aligned as its size class: 8 at least
	} else {
		unix.Madvise(mem, unix.MADV_HUGEPAGE) // advice: without it, small pages
	}
	ix := &bucketIndex{mem: mem, n: uint64(n)}
	*ix.key(0, 0) = uint64(n)
	if err == nil {
		m := &memRelease{mem}
		ix.release = m
		runtime.AddCleanup(ix, (*memRelease).unmap, m)
	}
	return ix
}

// memRelease unmaps an index's anonymous memory once, by close or by the
// GC's cleanup.
type memRelease struct{ mem []byte }

func (r *memRelease) unmap() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// close unmaps the buckets and closes the map.
func (ix *bucketIndex) close() {
	if ix == nil {
		return
	}
	switch {
	case ix.release != nil:
		ix.release.unmap()
	case ix.m != nil && ix.mem != nil:
		unix.Munmap(ix.mem)
	}
	ix.mem = nil
	if ix.m != nil {
		ix.m.Close()
	}
}

// capacity is the number of keys ix is sized for.
func (ix *bucketIndex) capacity() int { return int(ix.n) * indexSlots * indexPercent / 100 }

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

// touch reads the cache lines of key's two buckets that find reads, and
// returns what it read for the caller to keep (see Image.addZone).
func (ix *bucketIndex) touch(key uint64) uint64 {
	var s uint64
	for _, b := range ix.homes(key) {
		s += *ix.key(b, 0) + *ix.key(b, indexSlots/2)
	}
	return s
}

// get returns key's value in place, nil when key is not there.
func (ix *bucketIndex) get(key uint64) *xdpnsIndexVal {
	if b, i, ok := ix.find(key); ok {
		return ix.val(b, i)
	}
	return nil
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
	_, err := ix.add(key, v)
	return err
}

// add adds key, which is not there, with v, returning its value in place;
// errNoRoom: both its buckets are full.
func (ix *bucketIndex) add(key uint64, v xdpnsIndexVal) (*xdpnsIndexVal, error) {
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
		return nil, errNoRoom
	}
	ix.set(best, slot, key, v)
	ix.count++
	return ix.val(best, slot), nil
}

// set fills a free slot: the value, then the key that makes it visible.
func (ix *bucketIndex) set(b uint64, i int, key uint64, v xdpnsIndexVal) {
	p := ix.val(b, i)
	if ix.m == nil {
		// An image's buckets: no reader until they are copied into a
		// map. Atomic stores are locked instructions on amd64, each
		// waiting for its line: four an entry, a 1M-name layout's
		// slowest step after the lookups.
		*p = v
		*ix.key(b, i) = key
		return
	}
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
		ix.count--
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

// copyFrom writes the keys of src into ix, empty and not yet read by XDP
// (the generation is published after), their values' zones renumbered by
// zone (a value's zone z becomes zone[z]; nil: kept). With as many buckets
// as src, the buckets are copied whole; else each key is placed anew, the
// bucket counts kept aside rather than read back, so each key costs the
// two cache lines it writes. errNoRoom: both buckets of a key were full.
func (ix *bucketIndex) copyFrom(src *bucketIndex, zone []uint32) error {
	if ix.n == src.n {
		copy(ix.mem[bucketLen:], src.mem[bucketLen:(src.n+1)*bucketLen])
		ix.count = src.count
		ix.renumber(zone)
		return nil
	}
	used := make([]uint8, ix.n+1)
	k := 0
	var err error
	src.spread(func(key uint64, v xdpnsIndexVal) {
		if err != nil {
			return
		}
		h := ix.homes(key)
		b := h[0]
		if used[h[1]] < used[b] {
			b = h[1]
		}
		if used[b] == indexSlots {
			err = fmt.Errorf("answer index: %d of %d keys placed: %w", k, src.count, errNoRoom)
			return
		}
		if zone != nil {
			v.Zone = zone[v.Zone]
		}
		*ix.val(b, int(used[b])) = v
		*ix.key(b, int(used[b])) = key
		used[b]++
		k++
	})
	ix.count = k
	return err
}

// spread is each in an order that scatters homes: slot by slot, the
// buckets in a stride permutation. Keys listed bucket by bucket share a
// home in an index of about as many buckets, and placed in that order,
// the emptier of two homes was no choice: 300k keys at 80% left 7% out.
func (ix *bucketIndex) spread(fn func(key uint64, v xdpnsIndexVal)) {
	stride := uint64(0x9E3779B1) % ix.n
	for stride == 0 || gcd(stride, ix.n) != 1 {
		stride++
	}
	for i := range indexSlots {
		b := uint64(0)
		for range ix.n {
			if k := *ix.key(b+1, i); k != 0 {
				fn(k, *ix.val(b+1, i))
			}
			b = (b + stride) % ix.n
		}
	}
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// renumber changes the zone of every value, z to zone[z], in an index not
// yet read by XDP; nothing to do when zone is nil or changes none.
func (ix *bucketIndex) renumber(zone []uint32) {
	same := true
	for z, to := range zone {
		same = same && uint32(z) == to
	}
	if same {
		return
	}
	for b := uint64(1); b <= ix.n; b++ {
		for i := range indexSlots {
			if *ix.key(b, i) != 0 {
				v := ix.val(b, i)
				v.Zone = zone[v.Zone]
			}
		}
	}
}
