package xfr

import (
	"fmt"
	"io"
	"os"
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

// writeAtomic makes the new file's data durable (syncData) before the
// rename puts it in place, so a crash leaves the old file or the new one
// whole; concurrent writers share the filesystem syncs.
func TestWriteAtomicSyncsBeforeRename(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/z.zone"
	if err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("old")); return err }); err != nil {
		t.Fatal(err)
	}
	var syncs atomic.Int64
	old := syncFS
	syncFS = func(d string) error {
		syncs.Add(1)
		if b, err := os.ReadFile(path); err != nil || string(b) != "old" {
			t.Errorf("at the data sync %s holds %q (%v), want the old file still", path, b, err)
		}
		time.Sleep(5 * time.Millisecond)
		return old(d)
	}
	t.Cleanup(func() { syncFS = old })
	if err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("after writeAtomic: %q", b)
	}
	if syncs.Load() != 1 {
		t.Fatalf("%d data syncs, want 1", syncs.Load())
	}
	syncFS = func(d string) error { syncs.Add(1); time.Sleep(5 * time.Millisecond); return old(d) }
	syncs.Store(0)
	const writers = 50
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("%s/m%d.zone", dir, i)
			if err := writeAtomic(p, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := syncs.Load(); n >= writers/2 {
		t.Errorf("%d data syncs for %d concurrent writers", n, writers)
	}
	t.Logf("%d data syncs for %d concurrent writers", syncs.Load(), writers)
}

// A new file is renamed into place first and then synced once: at that
// sync it is already there, whole, and the directory is not synced apart.
func TestWriteAtomicNewFileOneSync(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/n.zone"
	var data, dirs atomic.Int64
	oldFS, oldDir := syncFS, fsyncDir
	syncFS = func(d string) error {
		data.Add(1)
		if b, err := os.ReadFile(path); err != nil || string(b) != "new" {
			t.Errorf("at the sync %s holds %q (%v), want the new file in place", path, b, err)
		}
		return oldFS(d)
	}
	fsyncDir = func(d string) error { dirs.Add(1); return oldDir(d) }
	t.Cleanup(func() { syncFS, fsyncDir = oldFS, oldDir })
	if err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if data.Load() != 1 || dirs.Load() != 0 {
		t.Errorf("%d filesystem syncs and %d directory syncs for a new file, want 1 and 0", data.Load(), dirs.Load())
	}
}
