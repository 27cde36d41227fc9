// Package shardmap is a string-keyed map split into shards that are copied on
// write, so a new version of a large map shares every shard an update did not
// touch. Zones and compiled answer tables use it: an IXFR that changes ten
// names copies ten small shards, not a million entries, and readers of the
// old version are never disturbed.
package shardmap

import (
	"maps"
	"sync"
)

// entriesPerShard is the target shard size: copying one costs microseconds.
// It is also sized to Go's maps: a map of up to 224 entries is a table of
// 256 slots (filled to at most 7/8), one of 225 a table of 512. Shards built
// to a mean of 192 stay within 256 slots even as a zone grows by a fifth;
// a mean of 256, as this was first, put every shard in 512 slots, half
// empty: 20 bytes more per entry, a tenth of a zone's heap.
const entriesPerShard = 192

// maxShards bounds the shard directory (copied per edit: 8 bytes a shard).
const maxShards = 1 << 14

// Map is immutable once built; Edit derives a new version.
type Map[V any] struct {
	shards []map[string]V
	n      int
}

// New returns an empty map sized for about hint entries.
func New[V any](hint int) *Map[V] {
	k := min(max(1, (hint+entriesPerShard-1)/entriesPerShard), maxShards)
	m := &Map[V]{shards: make([]map[string]V, k)}
	for i := range m.shards {
		m.shards[i] = make(map[string]V, hint/k+1)
	}
	return m
}

// hash is FNV-1a: cheap on short keys, and only picks the shard.
func hash(k string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return h
}

func hashBytes(k []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range k {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// index maps a hash to a shard by multiply-shift, so the shard count need
// not be a power of two (it follows the hint closely).
func (m *Map[V]) index(h uint32) uint32 {
	return uint32(uint64(h) * uint64(len(m.shards)) >> 32)
}

func (m *Map[V]) shard(k string) map[string]V {
	if len(m.shards) == 1 {
		return m.shards[0]
	}
	return m.shards[m.index(hash(k))]
}

// Get returns the value for k.
func (m *Map[V]) Get(k string) (V, bool) {
	v, ok := m.shard(k)[k]
	return v, ok
}

// GetBytes is Get for a key held in bytes, without allocating.
func (m *Map[V]) GetBytes(k []byte) (V, bool) {
	s := m.shards[0]
	if len(m.shards) > 1 {
		s = m.shards[m.index(hashBytes(k))]
	}
	v, ok := s[string(k)]
	return v, ok
}

// Len is the number of entries.
func (m *Map[V]) Len() int { return m.n }

// Range calls fn for every entry until it returns false.
func (m *Map[V]) Range(fn func(k string, v V) bool) {
	for _, s := range m.shards {
		for k, v := range s {
			if !fn(k, v) {
				return
			}
		}
	}
}

// Shards is how many shards m has. RangeShard(i) for every i below it
// visits each entry once: shards are disjoint, so goroutines may range over
// different ones at the same time.
func (m *Map[V]) Shards() int { return len(m.shards) }

// RangeShard calls fn for every entry of shard i until it returns false.
func (m *Map[V]) RangeShard(i int, fn func(k string, v V) bool) {
	for k, v := range m.shards[i] {
		if !fn(k, v) {
			return
		}
	}
}

// Editor builds a new version of a map. It is not safe for concurrent use;
// the map it came from stays unchanged and usable.
type Editor[V any] struct {
	m     *Map[V]
	owned []bool // shards already copied for this version
}

// Edit starts a new version that shares every shard with m until written.
func (m *Map[V]) Edit() *Editor[V] {
	c := &Map[V]{shards: append([]map[string]V(nil), m.shards...), n: m.n}
	return &Editor[V]{m: c, owned: make([]bool, len(c.shards))}
}

// Builder edits a fresh map in place (every shard is owned).
func Builder[V any](hint int) *Editor[V] {
	m := New[V](hint)
	e := &Editor[V]{m: m, owned: make([]bool, len(m.shards))}
	for i := range e.owned {
		e.owned[i] = true
	}
	return e
}

func (e *Editor[V]) own(k string) map[string]V {
	i := uint32(0)
	if len(e.m.shards) > 1 {
		i = e.m.index(hash(k))
	}
	if !e.owned[i] {
		// maps.Clone copies the table as it is (groups and control
		// words), several times faster than inserting every entry anew:
		// this copy is the cost of every edit of a large map.
		e.m.shards[i] = maps.Clone(e.m.shards[i])
		e.owned[i] = true
	}
	return e.m.shards[i]
}

// Get reads the version being built.
func (e *Editor[V]) Get(k string) (V, bool) { return e.m.Get(k) }

// Set writes k.
func (e *Editor[V]) Set(k string, v V) {
	// One map operation, not a lookup then an insert: building a large
	// table is cache misses, and the second probe doubled them.
	s := e.own(k)
	l := len(s)
	s[k] = v
	e.m.n += len(s) - l
}

// Delete removes k.
func (e *Editor[V]) Delete(k string) {
	if _, ok := e.m.Get(k); !ok {
		return
	}
	delete(e.own(k), k)
	e.m.n--
}

// Map returns the version built; the editor must not be used afterwards.
func (e *Editor[V]) Map() *Map[V] { return e.m }

// Range calls fn for every entry of the version being built.
func (e *Editor[V]) Range(fn func(k string, v V) bool) { e.m.Range(fn) }

// Crowded reports whether m's shards hold on average more than twice the
// target: a map grown one entry at a time from a small hint (a server's set
// of zones, as zones are added at run time) would otherwise copy ever
// larger shards on every edit.
func (m *Map[V]) Crowded() bool { return m.n > 2*entriesPerShard*len(m.shards) }

// Rebuilt returns a copy of m sized for its entries. Calling it when
// Crowded keeps edits cheap at an amortized O(1) per entry added: each
// rebuild at least doubles the shard count.
func (m *Map[V]) Rebuilt() *Map[V] { return m.RebuiltFor(m.n) }

// RebuiltFor is Rebuilt with shards sized for hint entries: a map edited
// one entry at a time, and copied a shard per edit, keeps its shards
// smaller with a hint above its size.
func (m *Map[V]) RebuiltFor(hint int) *Map[V] {
	e := Builder[V](max(hint, m.n))
	m.Range(func(k string, v V) bool {
		e.Set(k, v)
		return true
	})
	return e.Map()
}

// Shared lets goroutines Set into a Builder's editor at the same time: each
// shard behind a lock of its own, so writers of different shards never
// wait (a big table has thousands). Done ends the sharing.
type Shared[V any] struct {
	e     *Editor[V]
	locks []sharedShard
}

type sharedShard struct {
	sync.Mutex
	added int
}

// Share starts sharing e, which must come from Builder (every shard
// owned: Set then writes no state but the shard's).
func (e *Editor[V]) Share() *Shared[V] {
	for _, o := range e.owned {
		if !o {
			panic("shardmap: Share of an editor that does not own every shard")
		}
	}
	return &Shared[V]{e: e, locks: make([]sharedShard, len(e.m.shards))}
}

// Set writes k; safe for concurrent use.
func (s *Shared[V]) Set(k string, v V) {
	i := uint32(0)
	if len(s.e.m.shards) > 1 {
		i = s.e.m.index(hash(k))
	}
	l := &s.locks[i]
	l.Lock()
	m := s.e.m.shards[i]
	n := len(m)
	m[k] = v
	l.added += len(m) - n
	l.Unlock()
}

// Batch is a writer's buffer in front of a Shared map: Set keeps entries,
// Flush puts them shard by shard, each shard locked once for all of its
// entries. A large map's shards are anywhere in memory, so entries put one
// by one each missed the cache at the shard's lock, its table and its
// slot (a 1M-name zone's table: 3M entries, 4.7 s of its compile); put a
// shard at a time, those lines are fetched once for the shard's share of
// the batch. Not safe for concurrent use: one Batch per goroutine.
type Batch[V any] struct {
	s     *Shared[V]
	max   int
	items []batchItem[V]
	count []uint32 // per shard, for the sort
	order []uint32
}

type batchItem[V any] struct {
	k     string
	v     V
	shard uint32
}

// Batch returns a buffer of about max entries (a few per shard at least,
// or Flush has nothing to share) for one goroutine's Sets.
func (s *Shared[V]) Batch(max int) *Batch[V] {
	return &Batch[V]{s: s, max: max}
}

// Set keeps k and v for Flush; it flushes when the buffer is full. The
// last Set of a key before a Flush wins, as with Shared.Set.
func (b *Batch[V]) Set(k string, v V) {
	i := uint32(0)
	if len(b.s.e.m.shards) > 1 {
		i = b.s.e.m.index(hash(k))
	}
	b.items = append(b.items, batchItem[V]{k: k, v: v, shard: i})
	if len(b.items) >= b.max {
		b.Flush()
	}
}

// Flush puts every entry kept, in shard order (stable: for one key, the
// order of its Sets), each shard under its lock once.
func (b *Batch[V]) Flush() {
	if len(b.items) == 0 {
		return
	}
	n := len(b.s.e.m.shards)
	if len(b.count) != n+1 {
		b.count = make([]uint32, n+1)
	} else {
		clear(b.count)
	}
	for i := range b.items {
		b.count[b.items[i].shard+1]++
	}
	for i := 1; i <= n; i++ {
		b.count[i] += b.count[i-1]
	}
	b.order = append(b.order[:0], make([]uint32, len(b.items))...)
	for i := range b.items {
		sh := b.items[i].shard
		b.order[b.count[sh]] = uint32(i)
		b.count[sh]++
	}
	for at := 0; at < len(b.order); {
		sh := b.items[b.order[at]].shard
		l := &b.s.locks[sh]
		m := b.s.e.m.shards[sh]
		l.Lock()
		before := len(m)
		for ; at < len(b.order) && b.items[b.order[at]].shard == sh; at++ {
			it := &b.items[b.order[at]]
			m[it.k] = it.v
		}
		l.added += len(m) - before
		l.Unlock()
	}
	clear(b.items) // the keys and values are the map's now: not held here too
	b.items = b.items[:0]
}

// Done counts what the sharers added; s must not be used after, and e can
// be again.
func (s *Shared[V]) Done() {
	for i := range s.locks {
		s.e.m.n += s.locks[i].added
	}
	s.locks = nil
}
