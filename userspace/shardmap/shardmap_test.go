package shardmap

import (
	"fmt"
	"sync"
	"testing"
)

func TestEditSharesAndIsolates(t *testing.T) {
	b := Builder[int](10000)
	for i := 0; i < 10000; i++ {
		b.Set(fmt.Sprint(i), i)
	}
	m1 := b.Map()
	e := m1.Edit()
	e.Set("new", -1)
	e.Delete("5")
	e.Set("7", 70)
	m2 := e.Map()
	if m1.Len() != 10000 || m2.Len() != 10000 {
		t.Fatalf("lens %d %d", m1.Len(), m2.Len())
	}
	if v, _ := m1.Get("7"); v != 7 {
		t.Error("old version changed")
	}
	if _, ok := m1.Get("new"); ok {
		t.Error("old version sees the new key")
	}
	if v, _ := m2.GetBytes([]byte("7")); v != 70 {
		t.Error("new version lacks the write")
	}
	if _, ok := m2.Get("5"); ok {
		t.Error("delete lost")
	}
	shared := 0
	for i := range m1.shards {
		if fmt.Sprintf("%p", m1.shards[i]) == fmt.Sprintf("%p", m2.shards[i]) {
			shared++
		}
	}
	if shared < len(m1.shards)-3 {
		t.Errorf("only %d of %d shards shared", shared, len(m1.shards))
	}
	n := 0
	m2.Range(func(string, int) bool { n++; return true })
	if n != m2.Len() {
		t.Errorf("range saw %d", n)
	}
}

// A map grown one edit at a time from nothing is rebuilt as it crowds: the
// shard count keeps up with the entries, and every version keeps its own.
func TestGrowByEdits(t *testing.T) {
	m := New[int](0)
	versions := []*Map[int]{m}
	for i := 0; i < 20000; i++ {
		e := m.Edit()
		e.Set(fmt.Sprint(i), i)
		m = e.Map()
		if m.Crowded() {
			m = m.Rebuilt()
		}
		if i%5000 == 0 {
			versions = append(versions, m)
		}
	}
	if m.Len() != 20000 || m.Crowded() {
		t.Fatalf("len %d, crowded %v", m.Len(), m.Crowded())
	}
	if mean := m.Len() / m.Shards(); mean > 2*entriesPerShard {
		t.Errorf("mean shard size %d", mean)
	}
	for i := 0; i < 20000; i++ {
		if v, ok := m.GetBytes([]byte(fmt.Sprint(i))); !ok || v != i {
			t.Fatalf("%d: %d %v", i, v, ok)
		}
	}
	for j, v := range versions {
		if want := max(0, (j-1)*5000+1); v.Len() != want {
			t.Errorf("version %d: len %d, want %d", j, v.Len(), want)
		}
	}
}

// TestShared: goroutines setting into one Builder's editor, some keys
// twice, make the map one goroutine would (run it with -race).
func TestShared(t *testing.T) {
	e := Builder[int](10000)
	sh := e.Share()
	writers(func(w int) {
		for i := w * 2000; i < w*2000+3000; i++ { // overlaps the next goroutine's keys
			sh.Set(fmt.Sprint(i), i)
		}
	})
	sh.Done()
	m := e.Map()
	wantInts(t, "", m, 9000)
	defer func() {
		if recover() == nil {
			t.Error("Share of an Edit (shards not owned) did not panic")
		}
	}()
	m.Edit().Share()
}

// TestBatch: writers through Batches of several sizes (a flush per Set,
// several per writer, one at the end) give the map Shared.Set gives: every
// key, the count right, and for a key set twice by one writer the last
// value.
func TestBatch(t *testing.T) {
	for _, size := range []int{1, 7, 1000, 100000} {
		e := Builder[int](10000)
		sh := e.Share()
		writers(func(w int) {
			b := sh.Batch(size)
			defer b.Flush()
			for i := w * 2500; i < w*2500+2500; i++ {
				b.Set(fmt.Sprint(i), -i)
				b.Set(fmt.Sprint(i), i) // the same key again: this one stays
			}
		})
		sh.Done()
		wantInts(t, fmt.Sprintf("batch %d: ", size), e.Map(), 10000)
	}
}

// wantInts fails unless m maps the decimal string of every i below n, and
// nothing else, to i.
func wantInts(t *testing.T, what string, m *Map[int], n int) {
	t.Helper()
	if m.Len() != n {
		t.Fatalf("%slen %d, want %d", what, m.Len(), n)
	}
	for i := range n {
		if v, ok := m.Get(fmt.Sprint(i)); !ok || v != i {
			t.Fatalf("%s%d: %d %v", what, i, v, ok)
		}
	}
}

// writers runs fn for writers 0 to 3, each on a goroutine of its own, and
// waits for them.
func writers(fn func(w int)) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w)
		}()
	}
	wg.Wait()
}
