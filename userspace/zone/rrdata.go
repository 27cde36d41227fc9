package zone

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// A node's RRsets, in Node.data, one after another in type order:
//
//	type  uint16   the RRset's type
//	ttl   uint32   its TTL
//	nrr   uint16   records
//	nsig  uint16   RRSIGs covering the type
//	nrr  × { rdlength uint16, rdata }            uncompressed, case as loaded
//	nsig × { ttl uint32, rdlength uint16, rdata } an RRSIG's TTL is its own
//
// All integers big-endian. Owner names are the node's name, class is IN.
const setHeaderLen = 10

// encodeSets writes sets in the layout above into an exactly sized slice.
// scratch is reused between calls.
func encodeSets(sets []RRset, scratch []byte) ([]byte, []byte, error) {
	return encodeWith(sets, nil, scratch)
}

// encodeWith is encodeSets with the address sets a building holds in
// stored form merged in, in type order.
func encodeWith(sets []RRset, addr *[2]rawSet, scratch []byte) ([]byte, []byte, error) {
	b := scratch[:0]
	raw := func(r *rawSet, sigs []dns.RR) {
		b = binary.BigEndian.AppendUint16(b, r.typ)
		b = binary.BigEndian.AppendUint32(b, r.ttl)
		b = binary.BigEndian.AppendUint16(b, uint16(r.n))
		b = binary.BigEndian.AppendUint16(b, uint16(len(sigs)))
		b = append(b, r.rd...)
		r.n = 0 // written
	}
	for _, s := range sets {
		var sigsOnly bool
		if addr != nil {
			for i := range addr {
				r := &addr[i]
				if r.n == 0 || r.typ > s.Type {
					continue
				}
				if r.typ < s.Type {
					raw(r, nil)
					continue
				}
				if len(s.RRs) > 0 {
					return nil, scratch, errSlowPath // the same type both ways
				}
				raw(r, s.Sigs) // RRSIGs over addresses read fast
				sigsOnly = true
			}
		}
		if !sigsOnly {
			var ttl uint32
			if len(s.RRs) > 0 {
				ttl = s.RRs[0].Header().Ttl
			}
			b = binary.BigEndian.AppendUint16(b, s.Type)
			b = binary.BigEndian.AppendUint32(b, ttl)
			b = binary.BigEndian.AppendUint16(b, uint16(len(s.RRs)))
			b = binary.BigEndian.AppendUint16(b, uint16(len(s.Sigs)))
		}
		var err error
		for _, rr := range s.RRs {
			if b, err = appendRdata(b, rr); err != nil {
				return nil, scratch, err
			}
		}
		for _, rr := range s.Sigs {
			b = binary.BigEndian.AppendUint32(b, rr.Header().Ttl)
			if b, err = appendRdata(b, rr); err != nil {
				return nil, scratch, err
			}
		}
	}
	if addr != nil {
		for i := range addr {
			if addr[i].n > 0 {
				raw(&addr[i], nil)
			}
		}
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out, b, nil
}

// errSlowPath: records the fast path holds in stored form need the
// ordinary path (newFast then gives way to New).
var errSlowPath = errors.New("zone: records need the ordinary path")

// rawSet is an A or AAAA RRset as fastParse read it, already in the
// stored layout: n records of {rdlength, rdata}, and their lowest TTL
// (RFC 2181 §5.2).
type rawSet struct {
	typ uint16
	ttl uint32
	n   int
	rd  []byte
}

// add appends one record's rdata unless the set holds it already (RFC
// 2181 §5: the later one is dropped, TTL and all, as New does); false when
// the set is full. A first record goes into room, which must have
// capacity for it.
func (r *rawSet) add(t uint16, ttl uint32, rdata, room []byte) bool {
	if r.n == 0 {
		r.typ, r.ttl, r.rd = t, ttl, room[:0]
	} else {
		for p := 0; p < len(r.rd); {
			l := int(binary.BigEndian.Uint16(r.rd[p:]))
			if string(r.rd[p+2:p+2+l]) == string(rdata) {
				return true
			}
			p += 2 + l
		}
		if r.n == 0xffff {
			return false
		}
		r.ttl = min(r.ttl, ttl)
	}
	r.rd = append(binary.BigEndian.AppendUint16(r.rd, uint16(len(rdata))), rdata...)
	r.n++
	return true
}

// appendRdata appends rdlength and the uncompressed rdata of rr.
func appendRdata(b []byte, rr dns.RR) ([]byte, error) {
	// Addresses, most records of a large zone, written as they are: what
	// PackRR would write, without the pack and the readback check below
	// (half the time of loading a zone of hosts).
	switch rr := rr.(type) {
	case *dns.A:
		if ip := rr.A.To4(); ip != nil && (len(rr.A) == 4 || len(rr.A) == 16) {
			return append(append(b, 0, 4), ip...), nil
		}
	case *dns.AAAA:
		if len(rr.AAAA) == 16 {
			return append(append(b, 0, 16), rr.AAAA...), nil
		}
	}
	h := rr.Header()
	nameLen := dns.Len(&dns.RFC3597{Hdr: dns.RR_Header{Name: h.Name}}) - 10
	start := len(b)
	need := dns.Len(rr) + 16 // Len is exact for uncompressed records; spare room anyway
	b = slices.Grow(b, need)[:start+need]
	end, err := dns.PackRR(rr, b[start:], 0, nil, false)
	if err != nil {
		return b[:start], fmt.Errorf("encode %s: %w", rr, err)
	}
	// PackRR wrote name, type, class, TTL, rdlength, rdata; keep the last two.
	rd := b[start+nameLen+8 : start+end]
	// What is stored must read back (Node.record): miekg/dns packs some
	// records it cannot unpack, e.g. an SOA with no rdata ("@ SOA" in a
	// zone file, as dynamic updates write it; or the same in a transfer).
	// Such a record is refused here, at load, not met at serving time.
	if len(rd) == 2 && !mayBeEmpty(rr) {
		return b[:start], &RRError{RR: rr, Err: errors.New("record without data")}
	}
	hdr := dns.RR_Header{Name: h.Name, Rrtype: h.Rrtype, Class: h.Class, Ttl: h.Ttl, Rdlength: uint16(len(rd) - 2)}
	if _, _, err := dns.UnpackRRWithHeader(hdr, rd[2:], 0); err != nil {
		return b[:start], &RRError{RR: rr, Err: fmt.Errorf("incomplete record data (%v)", err)}
	}
	copy(b[start:], rd)
	return b[:start+len(rd)], nil
}

// mayBeEmpty reports whether rr may have no rdata at all: an unknown type
// written as "\# 0" (RFC 3597), NULL, or an APL with no items (RFC 3123).
func mayBeEmpty(rr dns.RR) bool {
	if _, ok := rr.(*dns.RFC3597); ok {
		return true
	}
	t := rr.Header().Rrtype
	return t == dns.TypeNULL || t == dns.TypeAPL
}

// setAt describes the RRset whose header starts at off.
type setAt struct {
	typ       uint16
	ttl       uint32
	nrr, nsig int
	body, end int // first record, and the next set
}

func (n *Node) setAt(off int) setAt {
	d := n.data
	s := setAt{
		typ:  binary.BigEndian.Uint16(d[off:]),
		ttl:  binary.BigEndian.Uint32(d[off+2:]),
		nrr:  int(binary.BigEndian.Uint16(d[off+6:])),
		nsig: int(binary.BigEndian.Uint16(d[off+8:])),
		body: off + setHeaderLen,
	}
	p := s.body
	for i := 0; i < s.nrr; i++ {
		p += 2 + int(binary.BigEndian.Uint16(d[p:]))
	}
	for i := 0; i < s.nsig; i++ {
		p += 6 + int(binary.BigEndian.Uint16(d[p+4:]))
	}
	s.end = p
	return s
}

// each calls fn for every set header; fn returns false to stop.
func (n *Node) each(fn func(setAt) bool) {
	if n == nil {
		return
	}
	for off := 0; off < len(n.data); {
		s := n.setAt(off)
		if !fn(s) {
			return
		}
		off = s.end
	}
}

// HasType reports whether the node has records of type t, without building
// them.
func (n *Node) HasType(t uint16) bool {
	found := false
	n.each(func(s setAt) bool {
		found = s.typ == t && s.nrr > 0
		return !found && s.typ < t
	})
	return found
}

// records counts the node's records, signatures included.
func (n *Node) records() int {
	c := 0
	n.each(func(s setAt) bool {
		c += s.nrr + s.nsig
		return true
	})
	return c
}

// HasSigs reports whether any RRset at the node is signed.
func (n *Node) HasSigs() bool {
	found := false
	n.each(func(s setAt) bool {
		found = s.nsig > 0
		return !found
	})
	return found
}

// Types appends to dst the types that have records at the node, in order.
func (n *Node) Types(dst []uint16) []uint16 {
	n.each(func(s setAt) bool {
		if s.nrr > 0 {
			dst = append(dst, s.typ)
		}
		return true
	})
	return dst
}

// Get returns the RRset of type t, built afresh, or nil. Signatures left
// without their RRset (an IXFR may delete an RRset and not its RRSIGs) are
// no RRset: nil, as Types and HasType say.
func (n *Node) Get(t uint16) *RRset {
	var out *RRset
	n.each(func(s setAt) bool {
		if s.typ == t && s.nrr > 0 {
			out = n.decode(s)
		}
		return out == nil && s.typ < t
	})
	return out
}

// Sets returns every RRset at the node, built afresh, in type order.
func (n *Node) Sets() []RRset {
	var out []RRset
	n.each(func(s setAt) bool {
		out = append(out, *n.decode(s))
		return true
	})
	return out
}

func (n *Node) decode(s setAt) *RRset {
	d := n.data
	set := &RRset{Type: s.typ, RRs: make([]dns.RR, 0, s.nrr)}
	p := s.body
	for i := 0; i < s.nrr; i++ {
		l := int(binary.BigEndian.Uint16(d[p:]))
		set.RRs = append(set.RRs, n.record(s.typ, s.ttl, d[p+2:p+2+l]))
		p += 2 + l
	}
	for i := 0; i < s.nsig; i++ {
		ttl := binary.BigEndian.Uint32(d[p:])
		l := int(binary.BigEndian.Uint16(d[p+4:]))
		set.Sigs = append(set.Sigs, n.record(dns.TypeRRSIG, ttl, d[p+6:p+6+l]))
		p += 6 + l
	}
	return set
}

func (n *Node) record(t uint16, ttl uint32, rdata []byte) dns.RR {
	h := dns.RR_Header{Name: n.Name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl, Rdlength: uint16(len(rdata))}
	rr, _, err := dns.UnpackRRWithHeader(h, rdata, 0)
	if err != nil {
		// The bytes were packed from a valid record at load time.
		panic(fmt.Sprintf("zone: stored rdata of %s %s does not unpack: %v", n.Name, dns.TypeToString[t], err))
	}
	return rr
}

// WireSet returns the records of type t as stored, for a caller that copies
// them into a message without building records: their TTL, their count,
// and their rdata, each as rdlength then the uncompressed rdata. ok is false
// when the node has no records of type t.
func (n *Node) WireSet(t uint16) (ttl uint32, count int, rdata []byte, ok bool) {
	n.each(func(s setAt) bool {
		if s.typ == t && s.nrr > 0 {
			p := s.body
			for i := 0; i < s.nrr; i++ {
				p += 2 + int(binary.BigEndian.Uint16(n.data[p:]))
			}
			ttl, count, rdata, ok = s.ttl, s.nrr, n.data[s.body:p:p], true
		}
		return !ok && s.typ < t
	})
	return ttl, count, rdata, ok
}

// AppendRecords appends the records of type t and the RRSIGs covering
// them to dst as a message carries them uncompressed (owner, type, class,
// TTL, rdlength, rdata), the owner being wname, the node's name in wire
// form; n is how many. Without building records: the stored rdata is
// already the uncompressed form miekg/dns packs. ok is false when the
// node has no records of type t.
func (n *Node) AppendRecords(dst, wname []byte, t uint16) (out []byte, count int, ok bool) {
	out = dst
	n.each(func(s setAt) bool {
		if s.typ != t || s.nrr == 0 {
			return !ok && s.typ < t
		}
		ok = true
		d := n.data
		p := s.body
		rec := func(typ uint16, ttl uint32, rdata []byte) {
			out = append(out, wname...)
			out = binary.BigEndian.AppendUint16(out, typ)
			out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
			out = binary.BigEndian.AppendUint32(out, ttl)
			out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
			out = append(out, rdata...)
		}
		for i := 0; i < s.nrr; i++ {
			l := int(binary.BigEndian.Uint16(d[p:]))
			rec(s.typ, s.ttl, d[p+2:p+2+l])
			p += 2 + l
		}
		for i := 0; i < s.nsig; i++ {
			ttl := binary.BigEndian.Uint32(d[p:])
			l := int(binary.BigEndian.Uint16(d[p+4:]))
			rec(dns.TypeRRSIG, ttl, d[p+6:p+6+l])
			p += 6 + l
		}
		count = s.nrr + s.nsig
		return false
	})
	return out, count, ok
}
