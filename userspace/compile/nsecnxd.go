package compile

import (
	"bytes"
	"slices"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Signed NXDOMAIN in NSEC zones (RFC 4035 §3.1.3.2). A QNAME that does not
// exist, whose closest encloser is CE, gets the SOA and its RRSIGs, then
// the NSEC covering the QNAME and the one covering *.CE (no wildcard could
// have matched), each with its RRSIGs, each once. As in NSEC3 zones
// (nsec3nxd.go) it is written uncompressed: the zone's signed head
// (NXD3Key) and one or two pieces, an NSEC record and its RRSIGs each.
//
// The NSEC covering the QNAME depends only on where the next closer label
// sorts among CE's children: nothing exists between the end of one
// child's subtree and the next child. So a closest encloser's children,
// in canonical order, each with the piece of the gap after it, answer
// every QNAME below it: XDP searches them (NSECEnclosers, bpf/nsec3.h
// nsec_nxd). The Go table reads the zone's NSEC chain per QNAME.

// nsecComposable reports whether z's negative answers with DO=1 may be
// composed from NSEC pieces: signed, denied with NSEC.
func nsecComposable(z *zone.Zone) bool {
	return z.Signed && z.NSEC3 == nil && z.NSECCovering(z.Origin) != nil
}

// NSECPiece is what a DO=1 NXDOMAIN carries for the NSEC at node n: the
// NSEC record and its RRSIGs, uncompressed; Ns counts them.
func NSECPiece(n *zone.Node) (wire.Body, bool) { return denialPiece(n, dns.TypeNSEC) }

// nsecNXDAt reports whether a name below n that does not exist, and whose
// closest encloser is n, gets the composed signed NXDOMAIN of an NSEC
// zone: the plain NXDOMAIN holds there (nxdAt: no wildcard, cut or DNAME
// in the way), and the zone has its signed head. An empty non-terminal
// may be one: the NSEC covering it covers the names below it too.
func (c *compiler) nsecNXDAt(n *zone.Node) bool {
	if !c.nsec || !c.nxdAt(n) {
		return false
	}
	_, err := c.shared(NXD3Key)
	return err == nil
}

// nsecProof returns the NSEC nodes of the proof for qname below ce, in
// the order the engine adds them (the QNAME's cover, the wildcard's
// cover), each once.
func nsecProof(z *zone.Zone, qname, ce string) ([]*zone.Node, bool) {
	c, w := z.NSECCovering(qname), z.NSECCovering("*."+ce)
	if c == nil || w == nil {
		return nil, false
	}
	if c == w {
		return []*zone.Node{c}, true
	}
	return []*zone.Node{c, w}, true
}

// nsecNXD answers a name below a closest encloser whose DO=1 default entry
// says NXD in an NSEC zone: name is the QNAME's lowercased wire form, ce
// the closest encloser's offset in it.
func (t *Table) nsecNXD(name []byte, ce int) (wire.Body, bool) {
	head, ok := t.neg[NXD3Key]
	if t.nsec == nil || !ok {
		return wire.Body{}, false
	}
	return composeNSECNXD(t.nsec, t.pieces, head, name, ce)
}

// composeNSECNXD is the signed NXDOMAIN of NSEC zone z for the QNAME name
// (lowercased wire form) below the closest encloser at offset ce.
func composeNSECNXD(z *zone.Zone, pc *pieceCache, head wire.Body, name []byte, ce int) (wire.Body, bool) {
	qname, ok1 := presentation(name)
	ceName, ok2 := presentation(name[ce:])
	if !ok1 || !ok2 {
		return wire.Body{}, false
	}
	nodes, ok := nsecProof(z, qname, ceName)
	if !ok {
		return wire.Body{}, false
	}
	return appendPieces(pc, head, nodes, dns.TypeNSEC)
}

// NSECComposes reports whether z's DO=1 NXDOMAIN answers are composed from
// NSEC pieces: an NSEC zone whose composed answer for a probe name below
// the apex is the engine's (as NSEC3Composes). TestNSECNXDMatchesEngine
// compares names below every other closest encloser.
func NSECComposes(z *zone.Zone) bool {
	if !nsecComposable(z) {
		return false
	}
	return composesAtApex(z, func(head wire.Body, probe []byte) (wire.Body, bool) {
		return composeNSECNXD(z, nil, head, probe, int(probe[0])+1)
	})
}

// NSECProofs is what XDP needs of an NSEC zone whose signed NXDOMAIN
// answers are composed (NSECComposes): the pieces, one per NSEC record of
// the zone in canonical order, and the closest enclosers whose children it
// searches.
type NSECProofs struct {
	Pieces    []NSECPieceEntry
	Enclosers []NSECEncloser
}

// NSECPieceEntry is one NSEC record's piece; Node is the zone's node it
// was made from (a later version that shares the node, or has the same
// NSEC RRset there, has the same piece).
type NSECPieceEntry struct {
	Node  *zone.Node
	Piece wire.Body
}

// NSECEncloser is a name whose DO=1 default entry says NXD in an NSEC
// zone (names below it without entries get the composed NXDOMAIN), or says
// Wild (they get the wildcard's answer and the NSEC covering them). Its
// children are in canonical order of their labels; Self is the piece
// (an index in NSECProofs.Pieces) covering the names before the first
// child, Kid.Gap the one covering those after that child's subtree and
// before the next child, Wild the one covering "*." + Name.
type NSECEncloser struct {
	Name       []byte // lowercased wire form
	Self, Wild int
	Kids       []NSECKid
}

// NSECKid is a child of a closest encloser: its first label, lowercased.
type NSECKid struct {
	Label []byte
	Gap   int
}

// NSECEnclosers lists z's closest enclosers for XDP, with their children
// and pieces, when z's signed NXDOMAIN answers are composed (nil
// otherwise). It marks the names compile marks (nsecNXDAt).
func NSECEnclosers(z *zone.Zone) *NSECProofs {
	if !NSECComposes(z) {
		return nil
	}
	c, err := newCompiler(z, nil)
	if err != nil {
		return nil
	}
	kids := map[string][]string{}
	z.Each(func(n *zone.Node) bool {
		if n.Name != z.Origin {
			p := zone.Parent(n.Name)
			kids[p] = append(kids[p], n.Name)
		}
		return true
	})
	out := &NSECProofs{}
	idx := map[*zone.Node]int{}
	z.EachNSEC(func(n *zone.Node) {
		if p, ok := NSECPiece(n); ok {
			idx[n] = len(out.Pieces)
			out.Pieces = append(out.Pieces, NSECPieceEntry{Node: n, Piece: p})
		}
	})
	piece := func(n *zone.Node) (int, bool) {
		i, ok := idx[n]
		return i, ok
	}
	var key []byte
	z.Each(func(n *zone.Node) bool {
		// Enclosers of signed NXDOMAINs, and the parents of wildcards:
		// a signed wildcard answer carries the NSEC covering the QNAME
		// (wildproof.go), found by the same search.
		if !c.nsecNXDAt(n) && !(c.nsec && c.wildBelow(n)) {
			return true
		}
		wname, err := wireName(n.Name)
		if err != nil {
			return true
		}
		e := NSECEncloser{Name: wname}
		names := kids[n.Name]
		if i, ok := idx[n]; ok && len(names) == 0 {
			// A leaf with its NSEC (most names): that NSEC covers what
			// follows it, "*." + the name included, up to the next name.
			e.Self, e.Wild = i, i
			out.Enclosers = append(out.Enclosers, e)
			return true
		}
		labels := make([][]byte, len(names))
		for i, k := range names {
			w := mustWire(k)
			labels[i] = w[1 : 1+int(w[0])]
		}
		order := make([]int, len(names))
		for i := range order {
			order[i] = i
		}
		// Canonical order of sibling labels: octets compared as unsigned,
		// a label before every longer one it starts (RFC 4034 §6.1; the
		// names are lowercase already).
		slices.SortFunc(order, func(a, b int) int { return bytes.Compare(labels[a], labels[b]) })
		// The gap before each child, then the one after the last: the
		// last NSEC before the child's key, then the last in n's subtree.
		gap := func(i int) (int, bool) {
			if i < len(order) {
				key = zone.SortKey(key[:0], names[order[i]])
				return piece(z.NSECBefore(key, false))
			}
			key = zone.SortKey(key[:0], n.Name)
			return piece(z.NSECBefore(key, true))
		}
		var ok bool
		if e.Self, ok = gap(0); !ok {
			return true
		}
		if e.Wild, ok = piece(z.NSECCovering("*." + n.Name)); !ok {
			return true
		}
		e.Kids = make([]NSECKid, len(order))
		for j, i := range order {
			e.Kids[j].Label = labels[i]
			if e.Kids[j].Gap, ok = gap(j + 1); !ok {
				return true
			}
		}
		out.Enclosers = append(out.Enclosers, e)
		return true
	})
	return out
}

// composesAtApex reports whether compose, given z's signed head and a
// probe name below the apex (wire form), gives the engine's answer for
// the probe: a zone whose engine answers another way (a case this code
// does not know) loses the composition, not its correctness.
func composesAtApex(z *zone.Zone, compose func(head wire.Body, probe []byte) (wire.Body, bool)) bool {
	head, err := SignedNXDomainHead(z)
	if err != nil {
		return false
	}
	probe := nxdProbe + "." + z.Origin
	wprobe, err := wireName(probe)
	if err != nil {
		return false
	}
	got, ok := compose(head, wprobe)
	if !ok {
		return false
	}
	res := answer.Lookup(z, answer.Query{Name: probe, Type: probeType, DO: true})
	want, err := wire.Encode(probe, probeType, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
	if err != nil {
		return false
	}
	flat := got
	flat.Bytes, flat.Tail, flat.TailNs = append(slices.Clip(got.Bytes), got.Tail...), nil, 0
	return sameBody(flat, want)
}
