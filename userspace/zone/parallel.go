package zone

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/xdpns/xdpns/userspace/shardmap"
)

// parallelFrom is the zone size (names) from which building a zone spreads
// its per-name work over every CPU; smaller zones stay on one goroutine.
// A variable for tests.
var parallelFrom = 4096

// workersFor is how many goroutines work on n items.
func workersFor(n int) int {
	if n < parallelFrom {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// indexLocal is what one worker of index collects.
type indexLocal struct {
	below   []*Node
	nsec    []string
	types   []uint16
	records int
}

// eachParallelBatch calls fn for every entry of m, on several goroutines
// for a large map (each shard on one of them), each with a value of its
// own, handed to done when that goroutine has finished; it returns when
// all are done.
func eachParallelBatch(m *shardmap.Map[*Node], fn func(string, *Node, *indexLocal), done func(*indexLocal)) {
	workers := workersFor(m.Len())
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local indexLocal
			for {
				i := int(next.Add(1) - 1)
				if i >= m.Shards() {
					break
				}
				m.RangeShard(i, func(k string, n *Node) bool {
					fn(k, n, &local)
					return true
				})
			}
			done(&local)
		}()
	}
	wg.Wait()
}

// encodeAll encodes every node's RRsets into its data (encodeSets), on
// several goroutines for many nodes, and drops the RRsets.
func encodeAll(list []*building) error {
	workers := workersFor(len(list))
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	const chunk = 1024
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []byte
			for {
				i := int(next.Add(1)-1) * chunk
				if i >= len(list) {
					return
				}
				for _, b := range list[i:min(i+chunk, len(list))] {
					var err error
					if b.node.data, scratch, err = encodeWith(b.sets, &b.addr, scratch); err != nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
						return
					}
					b.sets = nil // the records may go now
				}
			}
		}()
	}
	wg.Wait()
	return first
}
