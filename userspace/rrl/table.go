package rrl

import "sync"

// shards of the in-process table: UDP sockets (one per CPU) contend on
// one lock per shard, not one for the table.
const shards = 16

// memTable is the in-process Table: buckets in maps under a lock per shard,
// bounded like the BPF map (an LRU hash): a full shard forgets some of its
// buckets (Go's map iteration order is random, so it forgets at random;
// a forgotten bucket starts again with a full burst, as an evicted LRU
// entry does).
type memTable struct {
	max    int // per shard
	shards [shards]struct {
		sync.Mutex
		m map[Key]Entry
	}
}

// NewTable returns an in-process table of about size buckets (0: the
// default).
func NewTable(size int) Table {
	if size <= 0 {
		size = DefaultTableSize
	}
	t := &memTable{max: max(1, size/shards)}
	for i := range t.shards {
		t.shards[i].m = make(map[Key]Entry)
	}
	return t
}

func (t *memTable) shard(k *Key) int {
	h := uint32(k.Kind)
	for _, b := range k.Net {
		h = h*31 + uint32(b)
	}
	return int(h % shards)
}

func (t *memTable) Lookup(k *Key, e *Entry) bool {
	s := &t.shards[t.shard(k)]
	s.Lock()
	v, ok := s.m[*k]
	s.Unlock()
	*e = v
	return ok
}

func (t *memTable) Store(k *Key, e *Entry) {
	s := &t.shards[t.shard(k)]
	s.Lock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= t.max {
		n := t.max/8 + 1
		for old := range s.m {
			delete(s.m, old)
			if n--; n == 0 {
				break
			}
		}
	}
	s.m[*k] = *e
	s.Unlock()
}
