package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpns/xdpns/userspace/zone"
)

// At start, a secondary serves every zone from its state directory before
// compiling any: the engine answers them all (XDP passes them to Go), and
// the answers are compiled afterwards, zone by zone, taking XDP over as
// each is done. Compiling is about half of the CPU of a restart (10,000
// zones of 100 names: 3 of 7 s), and a provider's box should answer for
// every customer as soon as it can, not for the first ones fast and the
// last ones seconds later. Knot and NSD have no compile step; this puts
// xdpns's time to "every zone answers" next to theirs, and reports the
// time to "every zone compiled" beside it.

// compileDeferred compiles the zones onZone served by the engine alone
// while the Manager started, on every CPU. A zone replaced meanwhile (a
// transfer right after start) is skipped: its new version was compiled
// when it was served.
func (d *daemon) compileDeferred(list []*zone.Zone) {
	if len(list) == 0 {
		return
	}
	start := time.Now()
	if d.xdp != nil {
		d.xdp.ease()
		defer func() {
			d.zmu.Lock()
			defer d.zmu.Unlock()
			d.xdp.unease(d.xdpWant)
		}()
	}
	var next, done, names atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(list)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(list) {
					return
				}
				z := list[i]
				if z.Len() >= publishFirst {
					d.compileServed(z) // a large zone: logged on its own, as always
					continue
				}
				if d.compileAndServe(z) {
					done.Add(1)
					names.Add(int64(z.Len()))
				}
			}
		}()
	}
	wg.Wait()
	if done.Load() > 0 {
		d.zlog.Info("answers compiled for the zones served at start", "zones", done.Load(), "names", names.Load(),
			"took", time.Since(start).Round(time.Millisecond))
	}
	if d.xdp == nil {
		d.trim.soon() // with XDP, after the image is loaded (fastPath.trim)
	}
}
