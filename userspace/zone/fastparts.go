package zone

import (
	"bytes"
	"sync"

	"github.com/miekg/dns"
)

// A large zone file is read by fastParse on every CPU, in parts. What a
// line means depends on the state of the file before it ($ORIGIN, the
// default TTL and whether $TTL set it, the previous owner) and on whether
// it continues a record of several lines. A part therefore starts on a
// line with an owner of its own (no previous owner needed) and is read
// speculatively, in the state the file is in after its first few
// kilobytes: in the zones that are large, $ORIGIN and $TTL sit at the top
// and nothing changes after. The parts are then checked in file order:
// one is kept when the part before it ended exactly where it starts
// (no record ran over into it) and in the state it assumed; otherwise it
// is read again from where and in the state the part before it ended, as
// the sequential scan would have. The result is the sequential scan's,
// record for record and line for line (FuzzFastParse compares them); only
// tooSlow counts per part.

// fastPartBytes is the least text a part holds; a file of less than two
// parts is read on one goroutine. A variable for tests.
var fastPartBytes = 1 << 20

// fastPrefixBytes is how much of the file is read first, alone: the state
// after it is what the other parts assume.
const fastPrefixBytes = 4096

// parallel is fastParse in up to parts parts after a prefix of about
// prefix bytes.
func (p *fastParser) parallel(data []byte, parts, prefix int) (parsed, bool) {
	bounds := partBounds(data, parts, prefix)
	n := len(bounds) - 1
	// nl[k]: the lines before part k. A part's address records go into
	// its own region of one slice, a slot per line it starts (bounds are
	// line starts), and are moved together at the end.
	nl := make([]int, n+1)
	for k := range n {
		nl[k+1] = nl[k] + bytes.Count(data[bounds[k]:bounds[k+1]], []byte{'\n'})
	}
	all := make([]addrRR, nl[n]+1)
	region := func(k int) []addrRR {
		end := nl[k+1]
		if k == n-1 {
			end++ // the last line may have no newline
		}
		return all[nl[k]:nl[k]:end]
	}

	out := make([]fastPart, n)
	cur := *p
	out[0].addrs = region(0)
	if !cur.scan(data, bounds[0], bounds[1], 0, &out[0]) {
		return parsed{}, false
	}
	spec := cur
	spec.owner = "" // a part's first line has an owner of its own
	ok := make([]bool, n)
	ends := make([]fastParser, n)
	var wg sync.WaitGroup
	for k := 1; k < n; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := spec
			out[k].addrs = region(k)
			ok[k] = st.scan(data, bounds[k], bounds[k+1], nl[k], &out[k])
			ends[k] = st
		}()
	}
	wg.Wait()

	off, line := out[0].end, out[0].line
	for k := 1; k < n; k++ {
		if ok[k] && off == bounds[k] && cur.sameState(&spec) {
			cur = ends[k]
			off, line = out[k].end, out[k].line
			continue
		}
		out[k] = fastPart{addrs: region(k)}
		if off >= bounds[k+1] {
			continue // a record of the parts before took all of it
		}
		if !cur.scan(data, off, bounds[k+1], line, &out[k]) {
			return parsed{}, false
		}
		off, line = out[k].end, out[k].line
	}

	var pr parsed
	records, addrs := 0, 0
	for k := range out {
		records += len(out[k].rrs)
	}
	pr.rrs = make([]dns.RR, 0, records)
	pr.lines = make([]int32, 0, records)
	for k := range out {
		pr.rrs = append(pr.rrs, out[k].rrs...)
		pr.lines = append(pr.lines, out[k].lines...)
		// Regions are in file order, so this moves records down only.
		addrs += copy(all[addrs:], out[k].addrs)
	}
	pr.addrs = all[:addrs]
	return pr, true
}

// sameState: a line read in state p means what it means in state q,
// unless it has no owner (the previous owner is not compared).
func (p *fastParser) sameState(q *fastParser) bool {
	return p.origin == q.origin && p.ttl == q.ttl && p.ttlSet == q.ttlSet && p.byDirective == q.byDirective
}

// partBounds splits data into the prefix and up to parts parts of about
// the same size after prefix bytes, each starting on a line that begins with an owner name;
// it returns their starts and len(data).
func partBounds(data []byte, parts, prefix int) []int {
	bounds := []int{0}
	first := ownerLine(data, min(prefix, len(data)))
	rest := len(data) - first
	for k := range parts {
		b := ownerLine(data, first+k*rest/parts)
		if b > bounds[len(bounds)-1] && b < len(data) {
			bounds = append(bounds, b)
		}
	}
	return append(bounds, len(data))
}

// ownerLine is the start of the first line at or after off that begins
// with an owner name (not blank, a directive, a comment or a
// parenthesis), or len(data).
func ownerLine(data []byte, off int) int {
	if off > 0 && data[off-1] != '\n' {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ';', '$', '(', ')', '"':
		default:
			return off
		}
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	return len(data)
}
