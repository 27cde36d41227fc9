package xfr

import (
	"fmt"

	"github.com/miekg/dns"
)

// applyDiffs returns the records of cur (SOA first, as zone.Records gives
// them) after the differences, SOA first. Each difference must start at the
// serial the previous one reached, every deleted record must be present and
// every added record absent (RFC 1995 §5: anything else means the histories
// have diverged): otherwise the error wraps ErrInconsistent.
//
// cur is not modified and no record of it is shared with the result, so the
// result can be handed to zone.New (which rewrites owner names and TTLs in
// place) while cur is still being served.
func applyDiffs(cur []dns.RR, diffs []Diff) ([]dns.RR, error) {
	soa, ok := cur[0].(*dns.SOA)
	if !ok {
		return nil, fmt.Errorf("current zone does not start with its SOA")
	}
	// Only owners the differences touch need a lookup structure; the rest
	// of the zone is copied through.
	touched := map[string][]dns.RR{}
	for _, d := range diffs {
		for _, rr := range d.Deleted[1:] {
			touched[dns.CanonicalName(rr.Header().Name)] = nil
		}
		for _, rr := range d.Added[1:] {
			touched[dns.CanonicalName(rr.Header().Name)] = nil
		}
	}
	out := make([]dns.RR, 1, len(cur)+8)
	for _, rr := range cur[1:] {
		c := dns.Copy(rr)
		name := dns.CanonicalName(c.Header().Name)
		if set, ok := touched[name]; ok {
			touched[name] = append(set, c)
			continue
		}
		out = append(out, c)
	}
	serial := soa.Serial
	for _, d := range diffs {
		if d.From != serial {
			return nil, fmt.Errorf("%w: difference from serial %d, zone is at %d", ErrInconsistent, d.From, serial)
		}
		for _, rr := range d.Deleted[1:] {
			name := dns.CanonicalName(rr.Header().Name)
			set := touched[name]
			i := find(set, rr)
			if i < 0 {
				return nil, fmt.Errorf("%w: serial %d→%d deletes a record we do not have: %.80s", ErrInconsistent, d.From, d.To, short(rr))
			}
			touched[name] = append(set[:i], set[i+1:]...)
		}
		for _, rr := range d.Added[1:] {
			name := dns.CanonicalName(rr.Header().Name)
			set := touched[name]
			if find(set, rr) >= 0 {
				return nil, fmt.Errorf("%w: serial %d→%d adds a record we already have: %.80s", ErrInconsistent, d.From, d.To, short(rr))
			}
			touched[name] = append(set, dns.Copy(rr))
		}
		serial = d.To
		soa = d.Added[0].(*dns.SOA)
	}
	out[0] = dns.Copy(soa)
	for _, set := range touched {
		out = append(out, set...)
	}
	return out, nil
}

// find returns the index of the record in set equal to rr (TTL aside, names
// compared without case: RFC 2181 §5.2 and RFC 4343), or -1.
func find(set []dns.RR, rr dns.RR) int {
	for i, r := range set {
		if dns.IsDuplicate(r, rr) {
			return i
		}
	}
	return -1
}

// trimJournal drops the oldest differences until at most max records remain.
func trimJournal(diffs []Diff, max int) []Diff {
	total := 0
	for _, d := range diffs {
		total += d.Len()
	}
	i := 0
	for i < len(diffs) && total > max {
		total -= diffs[i].Len()
		i++
	}
	if i == 0 {
		return diffs
	}
	return append([]Diff(nil), diffs[i:]...)
}
