// Package wire reads DNS queries and writes responses in wire format. It is
// the contract between the Go responder and the XDP program: a response is a
// header, the question exactly as the client sent it, a precompiled body (the
// answer, authority and additional records) and an OPT record. The XDP
// program does the same composition in C (docs/wire.md); both must agree
// byte for byte.
package wire

import (
	"encoding/binary"
	"errors"
)

// Sizes and limits of the format.
const (
	HeaderLen    = 12
	MaxNameLen   = 255 // wire length of a name, root label included
	MaxLabelLen  = 63
	MinUDPLimit  = 512 // the limit without EDNS, and the floor with it
	optFixedLen  = 11  // root name, type, class, TTL, RDLENGTH
	optionHdrLen = 4
)

// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
const (
	flagQR = 0x8000
	flagAA = 0x0400
	flagTC = 0x0200
	flagRD = 0x0100
	flagCD = 0x0010
)

// EDNS option codes the responder acts on.
const (
	OptionNSID   = 3  // RFC 5001
	OptionExpire = 9  // RFC 7314
	OptionCookie = 10 // RFC 7873
	OptionEDE    = 15 // RFC 8914
)

// Errors from ParseQuery. ErrDrop means no answer at all (not a query, or too
// short to echo an ID); the others map to response codes.
var (
	ErrDrop    = errors.New("not a query")
	ErrFormat  = errors.New("malformed query")
	ErrNotImpl = errors.New("opcode not implemented")
	ErrBadVers = errors.New("unsupported EDNS version")
)

// Query is a parsed query. Slices alias the packet.
type Query struct {
	ID       uint16
	Flags    uint16 // as received
	Opcode   uint8
	Question []byte // QNAME, QTYPE, QCLASS exactly as sent; nil if unparsed
	Key      []byte // lowercased QNAME in wire form, then QTYPE: the lookup key
	Type     uint16
	Class    uint16

	EDNS    bool   // an OPT record was present
	UDPSize uint16 // the client's payload size (raw)
	DO      bool
	Version uint8
	NSID    bool // the client asked for NSID
	Expire  bool // the client asked for EDNS EXPIRE (a secondary)
	// Cookie is the COOKIE option's data (RFC 7873), when there was one;
	// HasCookie tells an empty one from none.
	Cookie    []byte
	HasCookie bool

	// Extra counts additional records other than the OPT (TSIG, ...); such
	// queries are not answered from compiled tables by XDP.
	Extra int
	// Trailing is true when bytes follow the last record.
	Trailing bool
}

// Name returns the lowercased QNAME in wire form.
func (q *Query) Name() []byte { return q.Key[:len(q.Key)-2] }

// ParseQuery parses pkt into q, reusing q.Key's storage. On ErrFormat,
// ErrNotImpl or ErrBadVers, q holds enough (ID, flags, opcode and, when it
// parsed, the question and EDNS state) to write the error response.
func ParseQuery(pkt []byte, q *Query) error {
	key := q.Key[:0]
	*q = Query{Key: key}
	if len(pkt) < HeaderLen {
		return ErrDrop
	}
	q.ID = binary.BigEndian.Uint16(pkt)
	q.Flags = binary.BigEndian.Uint16(pkt[2:])
	q.Opcode = uint8(q.Flags>>11) & 0xf
	if q.Flags&flagQR != 0 {
		return ErrDrop // never answer a response: reflection loops
	}
	qd := binary.BigEndian.Uint16(pkt[4:])
	an := binary.BigEndian.Uint16(pkt[6:])
	ns := binary.BigEndian.Uint16(pkt[8:])
	ar := binary.BigEndian.Uint16(pkt[10:])
	if q.Opcode != 0 {
		return ErrNotImpl
	}
	if qd != 1 || an != 0 || ns != 0 {
		return ErrFormat
	}
	off := HeaderLen
	nameEnd, err := parseName(pkt, off, &key)
	if err != nil {
		return ErrFormat
	}
	if nameEnd+4 > len(pkt) {
		return ErrFormat
	}
	q.Question = pkt[off : nameEnd+4]
	q.Type = binary.BigEndian.Uint16(pkt[nameEnd:])
	q.Class = binary.BigEndian.Uint16(pkt[nameEnd+2:])
	q.Key = append(key, pkt[nameEnd], pkt[nameEnd+1])
	off = nameEnd + 4
	for i := 0; i < int(ar); i++ {
		off, err = q.parseAdditional(pkt, off)
		if err != nil {
			return err
		}
	}
	q.Trailing = off != len(pkt)
	if q.EDNS && q.Version != 0 {
		return ErrBadVers
	}
	return nil
}

// parseName reads an uncompressed name at off, appending its lowercased wire
// form to key. Compression in the question is refused: nothing legitimate
// sends it, and the echoed question must stand on its own.
func parseName(pkt []byte, off int, key *[]byte) (int, error) {
	start := off
	for {
		if off >= len(pkt) {
			return 0, ErrFormat
		}
		l := int(pkt[off])
		if l == 0 {
			*key = append(*key, 0)
			off++
			break
		}
		if l > MaxLabelLen || off+1+l > len(pkt) {
			return 0, ErrFormat
		}
		*key = append(*key, byte(l))
		for _, c := range pkt[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			*key = append(*key, c)
		}
		off += 1 + l
		if off-start > MaxNameLen-1 {
			return 0, ErrFormat
		}
	}
	return off, nil
}

// skipName steps over a possibly compressed name in a record.
func skipName(pkt []byte, off int) (int, error) {
	for n := 0; n < MaxNameLen; n++ {
		if off >= len(pkt) {
			return 0, ErrFormat
		}
		l := int(pkt[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xc0 == 0xc0:
			if off+2 > len(pkt) {
				return 0, ErrFormat
			}
			return off + 2, nil
		case l > MaxLabelLen:
			return 0, ErrFormat
		}
		off += 1 + l
	}
	return 0, ErrFormat
}

func (q *Query) parseAdditional(pkt []byte, off int) (int, error) {
	nameStart := off
	off, err := skipName(pkt, off)
	if err != nil || off+10 > len(pkt) {
		return 0, ErrFormat
	}
	typ := binary.BigEndian.Uint16(pkt[off:])
	class := binary.BigEndian.Uint16(pkt[off+2:])
	ttl := binary.BigEndian.Uint32(pkt[off+4:])
	rdlen := int(binary.BigEndian.Uint16(pkt[off+8:]))
	off += 10
	if off+rdlen > len(pkt) {
		return 0, ErrFormat
	}
	rdata := pkt[off : off+rdlen]
	off += rdlen
	if typ != 41 {
		q.Extra++
		return off, nil
	}
	// OPT (RFC 6891 §6.1.1): one only, owned by the root.
	if q.EDNS || pkt[nameStart] != 0 || off-rdlen-10 != nameStart+1 {
		return 0, ErrFormat
	}
	q.EDNS = true
	q.UDPSize = class
	q.Version = uint8(ttl >> 16)
	q.DO = ttl&0x8000 != 0
	for len(rdata) > 0 {
		if len(rdata) < optionHdrLen {
			return 0, ErrFormat
		}
		code := binary.BigEndian.Uint16(rdata)
		olen := int(binary.BigEndian.Uint16(rdata[2:]))
		if optionHdrLen+olen > len(rdata) {
			return 0, ErrFormat
		}
		switch code {
		case OptionNSID:
			q.NSID = true
		case OptionExpire:
			q.Expire = true
		case OptionCookie:
			if !q.HasCookie {
				q.Cookie, q.HasCookie = rdata[optionHdrLen:optionHdrLen+olen], true
			}
		}
		// Other options (COOKIE while cookies are off, padding, client
		// subnet, ...) are ignored as RFC 6891 §6.1.2 asks.
		rdata = rdata[optionHdrLen+olen:]
	}
	return off, nil
}

// UDPLimit is the largest UDP response the client takes: 512 without EDNS,
// else its advertised size, no less than 512 and no more than ours.
func (q *Query) UDPLimit(ours uint16) int {
	if !q.EDNS {
		return MinUDPLimit
	}
	return int(max(MinUDPLimit, min(q.UDPSize, ours)))
}

// HasTSIG reports whether the message's last additional record is a TSIG
// (RFC 8945 §5.1: it must be last). Queries without additional records, the
// common case, cost a header read.
func HasTSIG(pkt []byte) bool {
	if len(pkt) < HeaderLen {
		return false
	}
	ar := int(binary.BigEndian.Uint16(pkt[10:]))
	if ar == 0 {
		return false
	}
	n := int(binary.BigEndian.Uint16(pkt[4:])) // questions
	records := int(binary.BigEndian.Uint16(pkt[6:])) + int(binary.BigEndian.Uint16(pkt[8:])) + ar
	off := HeaderLen
	var err error
	for i := 0; i < n; i++ {
		if off, err = skipName(pkt, off); err != nil || off+4 > len(pkt) {
			return false
		}
		off += 4
	}
	var typ uint16
	for i := 0; i < records; i++ {
		if off, err = skipName(pkt, off); err != nil || off+10 > len(pkt) {
			return false
		}
		typ = binary.BigEndian.Uint16(pkt[off:])
		off += 10 + int(binary.BigEndian.Uint16(pkt[off+8:]))
		if off > len(pkt) {
			return false
		}
	}
	return typ == 250
}
