package compile

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/xdpns/xdpns/userspace/zone"
)

// TestMain compiles in chunks of three names, so every Build of this
// package's tests (zones of six names or more) runs on several goroutines
// and is checked against the engine and Update by the other tests; other
// packages build their small zones on one.
func TestMain(m *testing.M) {
	buildChunk = 3
	os.Exit(m.Run())
}

// TestParallelBuild: a Build spread over workers makes the same table as one
// on a single goroutine: entries, dependencies, shared negative bodies.
func TestParallelBuild(t *testing.T) {
	defer func(c int) { buildChunk = c }(buildChunk)
	for _, sz := range nxdZones {
		z, _, err := zone.Load(sz.path, sz.origin, zone.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		buildChunk = z.Len() // one worker
		if buildWorkers(z) != 1 {
			t.Fatalf("%s: %d workers for one chunk", sz.origin, buildWorkers(z))
		}
		one, err := Build(z)
		if err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{1, 2, 5} {
			buildChunk = chunk
			if buildWorkers(z) < 2 {
				t.Fatalf("%s: chunk %d: one worker", sz.origin, chunk)
			}
			par, err := Build(z)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := tableString(one), tableString(par); a != b {
				t.Errorf("%s, chunks of %d: tables differ\none:\n%s\nparallel:\n%s", sz.origin, chunk, a, b)
			}
		}
	}
}

// tableString renders every entry, dependency and shared body of t in a
// fixed order.
func tableString(t *Table) string {
	var lines []string
	t.entries.Range(func(k string, v val) bool {
		lines = append(lines, fmt.Sprintf("entry %x %d %d/%d/%d %d %v %d %v %v %x", k, v.kind, v.an, v.ns, v.ar, v.rcode, v.aa, v.answer, v.marks, v.kind, v.bytes()))
		return true
	})
	t.deps.Range(func(k string, v []string) bool {
		v = slices.Clone(v)
		slices.Sort(v)
		lines = append(lines, fmt.Sprintf("dep %s %v", k, v))
		return true
	})
	for l, b := range t.neg {
		lines = append(lines, fmt.Sprintf("neg %d %s %s", l, t.negRep[l], bodyString(b)))
	}
	slices.Sort(lines)
	return fmt.Sprint(len(lines), " lines\n", lines)
}
