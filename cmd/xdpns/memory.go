package main

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// bulkNames is the zone size (names) after whose full load or transfer the
// daemon hands freed memory back to the kernel.
const bulkNames = 100_000

// memTrim returns to the kernel the heap a bulk load leaves free: the
// parsed records, the version served before compiling, the XDP image.
// Go's scavenger would keep much of it for minutes, and a container's
// memory limit, or a neighbour on the machine, counts it all. A 1M-record
// zone: RSS after loading 1.7 GB before this, see docs/operations.md.
type memTrim struct {
	pending atomic.Bool
}

// soon schedules one trim shortly after the current burst of work (calls
// within the delay share it).
func (m *memTrim) soon() {
	if !m.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(500*time.Millisecond, func() {
		m.pending.Store(false)
		debug.FreeOSMemory()
	})
}
