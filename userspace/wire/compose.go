package wire

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Body is an answer without its header and question: flags, section counts
// and the records as they follow the question. Compression pointers in Bytes
// may point into the question (at offset 12) and into Bytes itself at the
// offsets they have in a message whose question is exactly the QNAME the body
// was encoded for. Any QNAME of the same length works, so a body compiled for
// the lowercase name serves every 0x20 spelling of it.
//
// A body may come in two parts: Bytes, shared with the bodies of other names
// of the same QNAME length, and Tail, this name's own records after them
// (a signed negative answer: the SOA and its RRSIGs, then this name's
// NSEC or NSEC3 proof; see compile). Ns counts both parts, TailNs the
// Tail's. Pointers in a Tail point into the question only, so it stays
// valid whatever the shared part holds.
type Body struct {
	Rcode  uint8 // low 4 bits of the RCODE
	AA     bool
	An     uint16
	Ns     uint16
	Ar     uint16 // additional records, the OPT not counted
	TailNs uint16 // authority records in Tail
	Bytes  []byte
	Tail   []byte // not nil: the body is Bytes then Tail
	// ExtraOff, when not 0, is where the additional records start in
	// Bytes (no Tail), and they are optional: a response over the limit
	// is sent without them (ARCOUNT 0, no TC) when the rest fits. The
	// records before never point into them, so cutting there is safe.
	ExtraOff uint16
	// Ptrs lists, as big-endian 16-bit offsets into Bytes, the
	// compression pointers that move with the QNAME when this body (a
	// referral compiled for the name at or below a cut) answers a longer
	// QNAME below that name: each points into the question's suffix or
	// into the body, both Shift bytes further on (compile.Entry.Referral).
	Ptrs []byte
	// Shift, when not 0, is added to every pointer Ptrs lists as the
	// body is written: the QNAME is Shift bytes longer than the name the
	// body was compiled for.
	Shift uint16
}

// Moved returns Bytes as Compose writes them: with Shift added to the
// pointers Ptrs lists (a copy then), else Bytes itself.
func (b *Body) Moved() []byte {
	if b.Shift == 0 {
		return b.Bytes
	}
	m := append([]byte(nil), b.Bytes...)
	ShiftPointers(m, b.Ptrs, b.Shift)
	return m
}

// Len is the body's length in bytes.
func (b *Body) Len() int { return len(b.Bytes) + len(b.Tail) }

// Encode writes answer sections for question (qname, qtype) as a Body.
// qname is the lowercased presentation name the body is keyed on.
//
// A plain NXDOMAIN (only the SOA, in the authority section) is written
// without compression: then its bytes do not depend on the QNAME, and one
// body per zone answers every name that does not exist (compile's NXDKey,
// which XDP serves). It costs the 20-odd bytes compression would save.
// So is a signed NXDOMAIN (the SOA, NSEC or NSEC3 records and their
// RRSIGs): it is the zone's signed head and up to three pieces (an NSEC or
// NSEC3 record and its RRSIGs), each stored once and put together per
// QNAME (compile's nsec3nxd.go and nsecnxd.go), which only works when no
// piece points into another or into the question. About 13 bytes more per
// owner.
//
// A signed wildcard answer (records in the answer section, only NSEC or
// NSEC3 records and RRSIGs in the authority section, no additional ones)
// has its answer section compressed and its authority section, the proof
// that the QNAME does not exist, not: the answer part is the same for
// every QNAME the wildcard synthesises, the proof one piece put together
// per QNAME (compile's wildcard, XDP's wild_proof).
//
// A signed wildcard NODATA (RFC 4035 §3.1.3.4: the SOA, the NSEC covering
// the QNAME and the wildcard's own NSEC; RFC 5155 §7.2.5: the closest
// encloser's NSEC3, the next closer's cover, the wildcard's NSEC3; with
// RRSIGs) is written uncompressed too: it is put together from the
// NXDOMAIN's head and pieces. It is told by an NSEC owned by a wildcard
// "*.S" with the QNAME below S, or by two NSEC3 records or more. Two other
// NODATA answers look alike and are written so as well, which is harmless:
// an empty non-terminal's whose covering NSEC is such a wildcard's, and a
// DS NODATA under NSEC3 opt-out (RFC 5155 §7.2.4).
func Encode(qname string, qtype uint16, rcode int, aa bool, answer, ns, extra []dns.RR) (Body, error) {
	return EncodeOpt(qname, qtype, rcode, aa, answer, ns, extra, false)
}

// EncodeOpt is Encode with the additional records marked optional when
// optExtra is set (Body.ExtraOff): the answer to an NS query, whose
// targets' addresses are dropped rather than the answer truncated.
func EncodeOpt(qname string, qtype uint16, rcode int, aa bool, answer, ns, extra []dns.RR, optExtra bool) (Body, error) {
	proofApart := rcode == dns.RcodeSuccess && len(answer) > 0 && len(extra) == 0 && len(ns) > 0 && onlyDenial(ns)
	m := dns.Msg{
		Compress: !uncompressedNX(rcode, answer, ns, extra) && !signedWildNoData(qname, rcode, answer, ns, extra),
		Question: []dns.Question{{Name: qname, Qtype: qtype, Qclass: dns.ClassINET}},
		Answer:   answer,
		Ns:       ns,
		Extra:    extra,
	}
	if proofApart {
		m.Ns = nil
	}
	m.Rcode = rcode & 0xf
	buf, err := m.Pack()
	if err != nil {
		return Body{}, fmt.Errorf("encode %s/%s: %w", qname, dns.TypeToString[qtype], err)
	}
	if proofApart {
		proof, err := EncodeRecords(ns)
		if err != nil {
			return Body{}, fmt.Errorf("encode %s/%s: %w", qname, dns.TypeToString[qtype], err)
		}
		buf = append(buf, proof...)
	}
	qlen, err := questionLen(buf)
	if err != nil {
		return Body{}, err
	}
	b := Body{
		Rcode: uint8(rcode & 0xf),
		AA:    aa,
		An:    uint16(len(answer)),
		Ns:    uint16(len(ns)),
		Ar:    uint16(len(extra)),
		Bytes: buf[HeaderLen+qlen:],
	}
	if optExtra && len(extra) > 0 {
		// Compression only points backwards, so the message without
		// the additional records is a prefix of the one with them.
		m.Extra = nil
		short, err := m.Pack()
		if err != nil {
			return Body{}, fmt.Errorf("encode %s/%s: %w", qname, dns.TypeToString[qtype], err)
		}
		b.ExtraOff = uint16(len(short) - HeaderLen - qlen)
	}
	return b, nil
}

// EncodeRecords packs records one after the other without compression, as
// they follow the question in a message whose answer holds only them
// uncompressed (Encode's NXDOMAIN): the pieces compile puts together.
func EncodeRecords(rrs []dns.RR) ([]byte, error) {
	m := dns.Msg{Ns: rrs}
	buf, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("encode records: %w", err)
	}
	return buf[HeaderLen:], nil
}

// uncompressedNX reports whether an answer is an NXDOMAIN written without
// compression (Encode): nothing but the SOA in the authority section, or
// the SOA, NSEC or NSEC3 records and RRSIGs.
func uncompressedNX(rcode int, answer, ns, extra []dns.RR) bool {
	if rcode != dns.RcodeNameError || len(answer) != 0 || len(extra) != 0 || len(ns) == 0 ||
		ns[0].Header().Rrtype != dns.TypeSOA {
		return false
	}
	if len(ns) == 1 {
		return true
	}
	return onlyDenial(ns[1:])
}

// signedWildNoData reports whether an answer may be a signed wildcard
// NODATA, written without compression (Encode).
func signedWildNoData(qname string, rcode int, answer, ns, extra []dns.RR) bool {
	if rcode != dns.RcodeSuccess || len(answer) != 0 || len(extra) != 0 || len(ns) < 2 ||
		ns[0].Header().Rrtype != dns.TypeSOA || !onlyDenial(ns[1:]) {
		return false
	}
	nsec3 := 0
	for _, rr := range ns[1:] {
		h := rr.Header()
		if h.Rrtype == dns.TypeNSEC3 {
			if nsec3++; nsec3 > 1 {
				return true
			}
		}
		if h.Rrtype != dns.TypeNSEC || !strings.HasPrefix(h.Name, "*.") {
			continue
		}
		if parent := h.Name[2:]; !strings.EqualFold(h.Name, qname) && dns.IsSubDomain(parent, qname) && !strings.EqualFold(parent, qname) {
			return true
		}
	}
	return false
}

// onlyDenial reports whether rrs are NSEC or NSEC3 records and RRSIGs, at
// least one of the first.
func onlyDenial(rrs []dns.RR) bool {
	denial := false
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeNSEC3, dns.TypeNSEC:
			denial = true
		case dns.TypeRRSIG:
		default:
			return false
		}
	}
	return denial
}

func questionLen(msg []byte) (int, error) {
	end, err := skipName(msg, HeaderLen)
	if err != nil {
		return 0, err
	}
	return end + 4 - HeaderLen, nil
}

// Response says how to finish a response around a body.
type Response struct {
	// Payload is our EDNS UDP payload size, written in the OPT.
	Payload uint16
	// Limit is the largest message the transport takes (UDP: q.UDPLimit,
	// TCP: 65535). A larger response is truncated to header, question and
	// OPT with TC=1.
	Limit int
	// ExtRcode is the upper 8 bits of a 12-bit RCODE (BADVERS is 1).
	ExtRcode uint8
	// Options are EDNS options for the OPT record (NSID, EDE), already
	// encoded as code, length, data.
	Options []byte
}

// Compose appends the response to q with body b to dst. The OPT is written
// when the query had one. This is the function docs/wire.md specifies and
// bpf/ reimplements.
func Compose(dst []byte, q *Query, b *Body, r *Response) []byte {
	start := len(dst)
	dst = appendHeader(dst, q, b, false)
	dst = append(dst, q.Question...)
	at := len(dst)
	dst = append(dst, b.Bytes...)
	if b.Shift != 0 {
		ShiftPointers(dst[at:], b.Ptrs, b.Shift)
	}
	dst = append(dst, b.Tail...)
	if q.EDNS {
		dst = appendOPT(dst, q, r)
	}
	if len(dst)-start <= r.Limit {
		return dst
	}
	if b.ExtraOff > 0 && b.Tail == nil && int(b.ExtraOff) < len(b.Bytes) {
		// Optional additional records (NS target addresses): leave them
		// out rather than truncate, as NSD and Knot do.
		short := *b
		short.Bytes, short.Ar, short.ExtraOff = b.Bytes[:b.ExtraOff], 0, 0
		return Compose(dst[:start], q, &short, r)
	}
	if UncompressedProof(b) {
		// Written uncompressed so that its pieces are shared (Encode);
		// compressed, it may fit, as NSD's and Knot's do. XDP passes
		// these to us rather than truncate.
		if m, ok := compressed(dst[start:]); ok && len(m) <= r.Limit {
			return append(dst[:start], m...)
		}
	}
	// Truncate: what remains must be retried over TCP (RFC 1035 §4.2.1,
	// RFC 2181 §9). No partial RRsets: header, question, OPT.
	dst = appendHeader(dst[:start], q, b, true)
	dst = append(dst, q.Question...)
	if q.EDNS {
		dst = appendOPT(dst, q, r)
	}
	return dst
}

// UncompressedProof reports whether b may be a signed NXDOMAIN, a signed
// wildcard answer or a signed wildcard NODATA, whose proofs Encode writes
// uncompressed: an NXDOMAIN or a NOERROR with no answer or additional
// records and more than the SOA in the authority section, or an answer
// with authority records and no additional ones. (Another answer like that is only compressed again
// when over the limit, which is harmless; XDP passes the same ones.)
func UncompressedProof(b *Body) bool {
	switch b.Rcode {
	case dns.RcodeNameError:
		return b.An == 0 && b.Ar == 0 && b.Ns > 1
	case dns.RcodeSuccess:
		return b.Ar == 0 && (b.An > 0 && b.Ns > 0 || b.An == 0 && b.Ns > 1)
	}
	return false
}

// compressed is msg packed again with name compression.
func compressed(msg []byte) ([]byte, bool) {
	var m dns.Msg
	if err := m.Unpack(msg); err != nil {
		return nil, false
	}
	m.Compress = true
	out, err := m.Pack()
	return out, err == nil
}

// ShiftPointers adds shift to the compression pointers at the offsets
// ptrs lists (big-endian 16-bit each) in body. Offsets past the body (cut
// off with optional records) are left alone; a pointer stays a pointer, as
// a message is shorter than 16 KiB.
func ShiftPointers(body, ptrs []byte, shift uint16) {
	for i := 0; i+1 < len(ptrs); i += 2 {
		o := int(binary.BigEndian.Uint16(ptrs[i:]))
		if o+1 < len(body) {
			binary.BigEndian.PutUint16(body[o:], binary.BigEndian.Uint16(body[o:])+shift)
		}
	}
}

func appendHeader(dst []byte, q *Query, b *Body, tc bool) []byte {
	flags := uint16(flagQR) | q.Flags&(flagRD|flagCD) | uint16(b.Rcode&0xf)
	if b.AA {
		flags |= flagAA
	}
	an, ns, ar := b.An, b.Ns, b.Ar
	if tc {
		flags |= flagTC
		an, ns, ar = 0, 0, 0
	}
	if q.EDNS {
		ar++
	}
	qd := uint16(1)
	if q.Question == nil {
		qd = 0
	}
	dst = binary.BigEndian.AppendUint16(dst, q.ID)
	dst = binary.BigEndian.AppendUint16(dst, flags|uint16(q.Opcode)<<11)
	dst = binary.BigEndian.AppendUint16(dst, qd)
	dst = binary.BigEndian.AppendUint16(dst, an)
	dst = binary.BigEndian.AppendUint16(dst, ns)
	return binary.BigEndian.AppendUint16(dst, ar)
}

// appendOPT writes our OPT (RFC 6891 §6.1.2): root owner, our payload size,
// extended RCODE, version 0, the DO bit echoed (RFC 3225 §3), options.
func appendOPT(dst []byte, q *Query, r *Response) []byte {
	dst = append(dst, 0) // root
	dst = binary.BigEndian.AppendUint16(dst, dns.TypeOPT)
	dst = binary.BigEndian.AppendUint16(dst, r.Payload)
	dst = append(dst, r.ExtRcode, 0) // extended RCODE, version 0
	var f uint16
	if q.DO {
		f = 0x8000
	}
	dst = binary.BigEndian.AppendUint16(dst, f)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Options)))
	return append(dst, r.Options...)
}

// AppendOption encodes one EDNS option.
func AppendOption(dst []byte, code uint16, data []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, code)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(data)))
	return append(dst, data...)
}
