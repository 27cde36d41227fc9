package xfr

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers that arrive while a directory sync runs share the next one, and
// none returns before a sync that began after its call.
func TestDirSyncGroupCommit(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Int64
	var running atomic.Bool
	var mu sync.Mutex
	var begun []time.Time // when each sync began
	old := fsyncDir
	fsyncDir = func(d string) error {
		if running.Swap(true) {
			t.Error("two syncs of one directory at once")
		}
		mu.Lock()
		begun = append(begun, time.Now())
		mu.Unlock()
		syncs.Add(1)
		time.Sleep(5 * time.Millisecond)
		running.Store(false)
		return old(d)
	}
	t.Cleanup(func() { fsyncDir = old })
	const callers = 100
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			called := time.Now()
			if err := syncDir(dir); err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, b := range begun {
				if !b.Before(called) {
					return // a sync began after the call, and has finished
				}
			}
			t.Error("returned without a sync begun after the call")
		}()
	}
	wg.Wait()
	if n := syncs.Load(); n >= callers/2 || n < 1 {
		t.Errorf("%d syncs for %d concurrent callers", n, callers)
	}
	t.Logf("%d directory syncs for %d concurrent callers", syncs.Load(), callers)
}
