package zone

import (
	"fmt"
	"slices"
	"testing"
)

// TestParallelBuild: a zone built with its per-name work spread over
// goroutines (encoding, flags, child counts, cuts, the NSEC list) equals the
// one built on a single goroutine.
func TestParallelBuild(t *testing.T) {
	defer func(n int) { parallelFrom = n }(parallelFrom)
	for _, f := range []struct{ path, origin string }{
		{"../responder/testdata/example.com.zone", "example.com."},
		{"../answer/testdata/rfc1034-edu.zone", "edu."},
		{"../answer/testdata/rfc4592.zone", "example."},
		{"../answer/testdata/rfc4035.zone", "example."},
		{"../answer/testdata/rfc5155.zone", "example."},
		{"../nsddiff/testdata/nsec.test.zone.signed", "nsec.test."},
		{"../nsddiff/testdata/optout.test.zone.signed", "optout.test."},
	} {
		parallelFrom = 1 << 30
		one, _, err := Load(f.path, f.origin, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		parallelFrom = 1 // several goroutines when GOMAXPROCS > 1 (CI has 2 CPUs)
		par, _, err := Load(f.path, f.origin, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a, b := zoneString(one), zoneString(par); a != b {
			t.Errorf("%s: parallel build differs\none:\n%s\nparallel:\n%s", f.origin, a, b)
		}
	}
}

func zoneString(z *Zone) string {
	var lines []string
	z.Each(func(n *Node) bool {
		lines = append(lines, fmt.Sprintf("%s flags=%d kids=%d data=%x", n.Name, n.Flags, n.kids, n.data))
		return true
	})
	slices.Sort(lines)
	lines = append(lines, fmt.Sprint("nsec ", z.nsec))
	for _, e := range z.n3 {
		lines = append(lines, fmt.Sprintf("n3 %s %x", e.hash, e.node.data))
	}
	return fmt.Sprint(lines)
}
