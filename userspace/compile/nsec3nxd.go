package compile

import (
	"encoding/base32"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Signed NXDOMAIN in NSEC3 zones (RFC 5155 §7.2.2). A QNAME that does not
// exist, whose closest encloser is CE and next closer name NC (CE with
// the QNAME's label just below it), gets the SOA and its RRSIGs, then the
// NSEC3 matching CE, the one covering NC and the one covering *.CE, each
// with its RRSIGs, each once. All of it is written uncompressed
// (wire.Encode), so the answer is the zone's signed head (NXD3Key) and up
// to three pieces, one per NSEC3 record, put together per QNAME: the
// pieces depend on NC's hash, which no table can list ahead for every
// QNAME, but which is one SHA-1 with iterations 0 (RFC 9276 §3.1). The
// table answers this way (Table.nsec3NXD) below a name whose DO=1 default
// entry says NXD; XDP does the same from the same pieces (docs/xdp.md,
// "Signed negatives").

// NXD3Key keys a zone's signed NXDOMAIN head (SOA and RRSIGs, uncompressed)
// in Changes.Negatives and beyond.
const NXD3Key = NXDKey + 1

// NSEC3MaxSalt is the longest salt NSEC3 NXDOMAIN is composed for (XDP's
// limit, bpf/abi.h NSEC3_MAX_SALT); RFC 9276 §3.1 asks for none.
const NSEC3MaxSalt = 32

// NSEC3MaxIterations is the most iterations NSEC3 NXDOMAIN is composed for
// (bpf/abi.h NSEC3_MAX_ITERATIONS): RFC 9276 §3.1 asks for 0, but zones
// signed before it often have 1 to 20. Each is one more SHA-1 block per
// name hashed, three names per answer.
const NSEC3MaxIterations = 50

// nsec3Composable reports whether z's negative answers with DO=1 can be
// composed: NSEC3 with SHA-1, at most NSEC3MaxIterations and a short salt.
func nsec3Composable(z *zone.Zone) bool {
	p := z.NSEC3
	return z.Signed && p != nil && p.Hash == dns.SHA1 && p.Iterations <= NSEC3MaxIterations && len(p.Salt)/2 <= NSEC3MaxSalt
}

// SignedNXDomainHead is z's signed NXDOMAIN head (NXD3Key): the SOA and its
// RRSIGs as the first records of a DO=1 NXDOMAIN, uncompressed.
func SignedNXDomainHead(z *zone.Zone) (wire.Body, error) {
	soa, sigs := z.NegativeSOA()
	b, err := wire.EncodeRecords(append([]dns.RR{soa}, sigs...))
	if err != nil {
		return wire.Body{}, err
	}
	return wire.Body{Rcode: dns.RcodeNameError, AA: true, Ns: uint16(1 + len(sigs)), Bytes: b}, nil
}

// NSEC3Piece is what a DO=1 NXDOMAIN carries for NSEC3 node n: its NSEC3
// record and RRSIGs, uncompressed; Ns counts them.
func NSEC3Piece(n *zone.Node) (wire.Body, bool) { return denialPiece(n, dns.TypeNSEC3) }

// denialPiece is node n's RRset of type t (NSEC or NSEC3) and its RRSIGs,
// uncompressed, as a signed NXDOMAIN carries them; Ns counts them.
func denialPiece(n *zone.Node, t uint16) (wire.Body, bool) {
	w, err := wireName(n.Name)
	if err != nil {
		return wire.Body{}, false
	}
	// The stored records as they are, not built and packed again
	// (TestDenialPieceIsPacked).
	b, count, ok := n.AppendRecords(nil, w, t)
	if !ok || count > 0xffff {
		return wire.Body{}, false
	}
	return wire.Body{Ns: uint16(count), Bytes: b}, true
}

// nsec3NXDAt reports whether a name below n that does not exist, and whose
// closest encloser is n, gets the composed signed NXDOMAIN: the zone is
// composable, the plain NXDOMAIN holds there (no wildcard, cut or DNAME in
// the way: nxdAt), and n has its NSEC3 (the closest encloser proof needs
// it; names of an opt-out span may have none).
func (c *compiler) nsec3NXDAt(n *zone.Node) bool {
	if !c.n3 || !c.nxdAt(n) {
		return false
	}
	if _, err := c.shared(NXD3Key); err != nil {
		return false
	}
	_, match := c.z.NSEC3For(n.Name)
	return match
}

// nsec3Proof returns the NSEC3 nodes of the proof for a QNAME below ce
// whose next closer name is nc, in the order the engine adds them
// (closest encloser match, next closer cover, wildcard cover), each
// once; false when the zone does not give that proof there (no NSEC3
// matching ce, or one matching nc or *.ce).
func nsec3Proof(z *zone.Zone, ce, nc string, wildMatch bool) ([]*zone.Node, bool) {
	m, ok := z.NSEC3For(ce)
	if !ok || m == nil {
		return nil, false
	}
	c, match := z.NSEC3For(nc)
	if match || c == nil {
		return nil, false
	}
	w, match := z.NSEC3For("*." + ce)
	if match != wildMatch || w == nil {
		return nil, false
	}
	out := []*zone.Node{m}
	for _, n := range []*zone.Node{c, w} {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, true
}

// nsec3NXD answers a name below a closest encloser whose DO=1 default
// entry says NXD: name is the QNAME's lowercased wire form, ce and nc
// the offsets of the closest encloser and of the next closer name in it.
func (t *Table) nsec3NXD(name []byte, ce, nc int) (wire.Body, bool) {
	head, ok := t.neg[NXD3Key]
	if t.nsec3 == nil || !ok {
		return wire.Body{}, false
	}
	return composeNSEC3NXD(t.nsec3, t.pieces, head, name, ce, nc)
}

// composeNSEC3NXD is the signed NXDOMAIN of z for the QNAME name (lowercased
// wire form) below the closest encloser at offset ce, whose next closer
// name starts at nc: head, then the proof's pieces as Tail.
func composeNSEC3NXD(z *zone.Zone, pc *pieceCache, head wire.Body, name []byte, ce, nc int) (wire.Body, bool) {
	return composeNSEC3(z, pc, head, name, ce, nc, false)
}

// composeNSEC3 is composeNSEC3NXD, or with wildMatch the pieces of a
// wildcard NODATA (RFC 5155 §7.2.5): the closest encloser's NSEC3, the
// next closer name's cover and the wildcard's own NSEC3, in that order.
func composeNSEC3(z *zone.Zone, pc *pieceCache, head wire.Body, name []byte, ce, nc int, wildMatch bool) (wire.Body, bool) {
	ceName, ok1 := presentation(name[ce:])
	ncName, ok2 := presentation(name[nc:])
	if !ok1 || !ok2 {
		return wire.Body{}, false
	}
	nodes, ok := nsec3Proof(z, ceName, ncName, wildMatch)
	if !ok {
		return wire.Body{}, false
	}
	return appendPieces(pc, head, nodes, dns.TypeNSEC3)
}

// appendPieces is head with the pieces of nodes' RRsets of type t (NSEC or
// NSEC3) as its Tail, from pc when given.
func appendPieces(pc *pieceCache, head wire.Body, nodes []*zone.Node, t uint16) (wire.Body, bool) {
	b := head
	for _, n := range nodes {
		p, ok := pc.piece(n, t)
		if !ok {
			return wire.Body{}, false
		}
		b.Tail = append(b.Tail, p.Bytes...)
		b.TailNs += p.Ns
		b.Ns += p.Ns
	}
	return b, true
}

// presentation is a lowercased wire name as text.
func presentation(wname []byte) (string, bool) {
	s, _, err := dns.UnpackDomainName(wname, 0)
	return s, err == nil
}

// NSEC3Entry is one NSEC3 record of a composable zone, for the XDP maps:
// the raw hash of its owner and its piece (NSEC3Piece).
type NSEC3Entry struct {
	Hash  [20]byte
	Piece wire.Body
	// Node is the zone's NSEC3 node: a later version of the zone that
	// shares it (zone.ApplyDiffs shares what a change did not touch)
	// has the same piece.
	Node *zone.Node
}

// NSEC3Chain lists z's NSEC3 records in hash order with their pieces, and
// the salt, for a zone whose signed NXDOMAIN answers are composed
// (NSEC3Composes).
func NSEC3Chain(z *zone.Zone) (salt []byte, chain []NSEC3Entry) {
	salt, _ = hexSalt(z.NSEC3.Salt)
	z.EachNSEC3(func(owner string, n *zone.Node) {
		var e NSEC3Entry
		first, _, _ := strings.Cut(owner, ".")
		h, err := base32.HexEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(first))
		if err != nil || len(h) != len(e.Hash) {
			return
		}
		copy(e.Hash[:], h)
		if p, ok := NSEC3Piece(n); ok {
			e.Piece, e.Node = p, n
			chain = append(chain, e)
		}
	})
	return salt, chain
}

// NSEC3Salt is z's NSEC3 salt as bytes.
func NSEC3Salt(z *zone.Zone) ([]byte, bool) {
	if z.NSEC3 == nil {
		return nil, false
	}
	return hexSalt(z.NSEC3.Salt)
}

// hexSalt is an NSEC3PARAM's salt as bytes ("-" or "" is none).
func hexSalt(s string) ([]byte, bool) {
	if s == "" || s == "-" {
		return nil, true
	}
	b := make([]byte, len(s)/2)
	for i := range b {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		b[i] = hi<<4 | lo
	}
	return b, len(s)%2 == 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// NSEC3Composes reports whether z's DO=1 NXDOMAIN answers are composed
// (nsec3nxd.go): NSEC3 with SHA-1, iterations 0 and a short salt, and the
// composition gives the engine's answer for a probe name below the apex. A
// zone whose engine answers another way (a case this code does not know)
// loses the composition, not its correctness. Names below other closest
// enclosers are compared by TestNSEC3NXDMatchesEngine.
func NSEC3Composes(z *zone.Zone) bool {
	if !nsec3Composable(z) {
		return false
	}
	return composesAtApex(z, func(head wire.Body, probe []byte) (wire.Body, bool) {
		return composeNSEC3NXD(z, nil, head, probe, int(probe[0])+1, 0)
	})
}

// NSEC3Encloser is a name whose DO=1 default entry says NXD in an NSEC3
// zone, with the two pieces of its proof that do not depend on the QNAME:
// the NSEC3 matching it and the one covering "*." + it, as indexes into
// NSEC3Chain's entries. XDP then hashes only the next closer name.
type NSEC3Encloser struct {
	Name        []byte // lowercased wire form
	Match, Wild int
}

// NSEC3Enclosers lists z's closest enclosers for XDP (the names compile
// marks, nsec3NXDAt) with their fixed pieces; chain is NSEC3Chain(z)'s.
// An encloser left out costs XDP two more hashes, nothing else.
func NSEC3Enclosers(z *zone.Zone, chain []NSEC3Entry) []NSEC3Encloser {
	c, err := newCompiler(z, nil)
	if err != nil || !c.n3 {
		return nil
	}
	idx := make(map[*zone.Node]int, len(chain))
	for i := range chain {
		idx[chain[i].Node] = i
	}
	var out []NSEC3Encloser
	z.Each(func(n *zone.Node) bool {
		// NXDOMAIN below n, or a wildcard's signed NODATA: then Wild
		// is the wildcard's own NSEC3 (Entry.WildNoDataSigned).
		wild := z.Node("*."+n.Name) != nil
		if !wild && !c.nsec3NXDAt(n) {
			return true
		}
		m, match := z.NSEC3For(n.Name)
		w, wmatch := z.NSEC3For("*." + n.Name)
		mi, ok1 := idx[m]
		wi, ok2 := idx[w]
		wname, err := wireName(n.Name)
		if match && wmatch == wild && ok1 && ok2 && err == nil {
			out = append(out, NSEC3Encloser{Name: wname, Match: mi, Wild: wi})
		}
		return true
	})
	return out
}

// pieceCache holds the pieces of one zone version's NSEC or NSEC3 nodes as
// signed answers first need them: encoding one (its records unpacked from
// the node, then packed) is most of a composed answer's cost in Go.
// Nodes do not change, so a piece is made once and shared by every query
// and goroutine; the cache grows to the records the zone's answers used.
type pieceCache struct{ m sync.Map } // *zone.Node → wire.Body

// piece is denialPiece(n, t), from the cache when c is not nil.
func (c *pieceCache) piece(n *zone.Node, t uint16) (wire.Body, bool) {
	if c == nil {
		return denialPiece(n, t)
	}
	if p, ok := c.m.Load(n); ok {
		return p.(wire.Body), true
	}
	p, ok := denialPiece(n, t)
	if ok {
		c.m.Store(n, p)
	}
	return p, ok
}
