package xfr

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// Diff is one step of a zone's history (RFC 1995 §2): the records deleted
// and added to go from serial From to serial To. Deleted starts with the old
// SOA and Added with the new one, the order IXFR sends them in, so a Diff is
// ready to be served to downstream secondaries.
type Diff struct {
	From, To       uint32
	Deleted, Added []dns.RR
}

// Len is the number of records in the diff.
func (d Diff) Len() int { return len(d.Deleted) + len(d.Added) }

// ErrInconsistent marks an incremental transfer that does not fit the zone
// we hold (a deleted record we do not have, a gap in the serials). The
// remedy is a full transfer.
var ErrInconsistent = errors.New("incremental transfer does not apply")

// stream assembles the records of an AXFR or IXFR answer, message by
// message, and checks its shape: SOA first and last (RFC 5936 §2.2), the
// sequence of differences of an incremental answer (RFC 1995 §4), nothing
// after the end.
type stream struct {
	origin string
	ixfr   bool   // we asked IXFR
	ours   uint32 // our serial, for IXFR
	limits Limits

	first *dns.SOA // the primary's current SOA, from the first record
	n     int      // records seen
	state streamState

	full  []dns.RR // AXFR (or AXFR-style IXFR): SOA first, no closing SOA
	diffs []Diff
	cur   *Diff // the difference being read
	// upToDate: an IXFR answered with the single SOA of a serial that is
	// not newer than ours.
	upToDate bool
}

type streamState uint8

const (
	stFirst    streamState = iota // expecting the first SOA
	stSecond                      // IXFR: the second record says which form this is
	stFull                        // AXFR-style: records until the closing SOA
	stDeleting                    // IXFR: deleted records until the new SOA
	stAdding                      // IXFR: added records until the next SOA
	stDone
)

func (s *stream) done() bool { return s.state == stDone }

// message feeds the answer section of one message.
func (s *stream) message(rrs []dns.RR) error {
	if len(rrs) == 0 {
		return errors.New("empty message in transfer")
	}
	for i, rr := range rrs {
		if s.state == stDone {
			return fmt.Errorf("%d records after the closing SOA", len(rrs)-i)
		}
		if err := s.record(rr); err != nil {
			return err
		}
	}
	// RFC 1995 §4: an IXFR answer that is the single SOA means we are
	// current (or ahead: the caller compares serials).
	if s.ixfr && s.n == 1 && !newer(s.first.Serial, s.ours) {
		s.upToDate = true
		s.state = stDone
	}
	return nil
}

func (s *stream) record(rr dns.RR) error {
	s.n++
	if s.n > s.limits.MaxRecords {
		return fmt.Errorf("transfer exceeds %d records", s.limits.MaxRecords)
	}
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return fmt.Errorf("record of class %s: %s", dns.ClassToString[h.Class], short(rr))
	}
	if l := dns.Len(rr); l > s.limits.MaxRRSize {
		return fmt.Errorf("record of %d bytes exceeds the limit of %d: %.80s", l, s.limits.MaxRRSize, short(rr))
	}
	if soa, ok := rr.(*dns.SOA); ok && s.state == stFirst && !equalName(h.Name, s.origin) {
		return fmt.Errorf("wrong zone: transfer starts with the SOA of %s, not %s", soa.Hdr.Name, s.origin)
	}
	if !dns.IsSubDomain(s.origin, h.Name) {
		return fmt.Errorf("record outside the zone: %.80s", short(rr))
	}
	soa, isSOA := rr.(*dns.SOA)
	if isSOA && !equalName(h.Name, s.origin) {
		return fmt.Errorf("SOA not at the apex: %s", short(rr))
	}
	switch s.state {
	case stFirst:
		if !isSOA {
			return fmt.Errorf("transfer does not start with the SOA of %s: %.80s", s.origin, short(rr))
		}
		s.first = soa
		s.full = append(s.full, rr)
		s.state = stFull
		if s.ixfr {
			s.state = stSecond
		}
	case stSecond:
		switch {
		case isSOA && soa.Serial == s.first.Serial:
			// AXFR-style with nothing but the SOA: the closing SOA.
			return s.closing(soa)
		case isSOA && soa.Serial == s.ours:
			s.full = nil
			s.state = stDeleting
			s.cur = &Diff{From: soa.Serial, Deleted: []dns.RR{rr}}
		case isSOA:
			return fmt.Errorf("%w: IXFR starts from serial %d, we have %d", ErrInconsistent, soa.Serial, s.ours)
		default:
			s.state = stFull
			s.full = append(s.full, rr)
		}
	case stFull:
		if isSOA {
			return s.closing(soa)
		}
		s.full = append(s.full, rr)
	case stDeleting:
		if isSOA {
			if CompareSerial(soa.Serial, s.cur.From) != Greater {
				return fmt.Errorf("%w: difference goes from serial %d to %d", ErrInconsistent, s.cur.From, soa.Serial)
			}
			s.cur.To = soa.Serial
			s.cur.Added = []dns.RR{rr}
			s.state = stAdding
			return nil
		}
		s.cur.Deleted = append(s.cur.Deleted, rr)
	case stAdding:
		if !isSOA {
			s.cur.Added = append(s.cur.Added, rr)
			return nil
		}
		s.diffs = append(s.diffs, *s.cur)
		if s.cur.To == s.first.Serial {
			s.cur = nil
			return s.closing(soa)
		}
		if soa.Serial != s.cur.To {
			return fmt.Errorf("%w: difference starts from serial %d after one ending at %d", ErrInconsistent, soa.Serial, s.cur.To)
		}
		s.cur = &Diff{From: soa.Serial, Deleted: []dns.RR{rr}}
		s.state = stDeleting
	}
	return nil
}

// closing checks the SOA that ends the transfer: it must repeat the first.
func (s *stream) closing(soa *dns.SOA) error {
	if soa.Serial != s.first.Serial {
		return fmt.Errorf("closing SOA has serial %d, the first had %d (SOA inside the zone?)", soa.Serial, s.first.Serial)
	}
	s.state = stDone
	return nil
}

// short is a record on one line for error messages.
func short(rr dns.RR) string {
	b := []byte(rr.String())
	for i, c := range b {
		if c == '\t' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}
