package compile

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Signed wildcard answers (DO=1; RFC 4035 §3.1.3.3, RFC 5155 §7.2.6). A
// QNAME synthesised from "*.CE" gets the wildcard's RRset and RRSIGs,
// owner the QNAME (the RRSIGs' labels field says it was a wildcard), and
// the proof that the QNAME itself does not exist: the NSEC covering it, or
// the NSEC3 covering the next closer name. wire.Encode writes the answer
// section compressed and the proof not, so the answer is the wildcard's
// own DO=1 body (its owner a pointer to the question, whatever the QNAME)
// followed by one piece, chosen per QNAME: in NSEC zones by the search
// among CE's children that signed NXDOMAINs use (nsecnxd.go), in NSEC3
// zones by the next closer name's hash (nsec3nxd.go). WildSafe on such a
// DO=1 entry says so; XDP composes the same (bpf/nsec3.h wild_proof).

// wildSafeSigned reports whether body, the DO=1 answer for the wildcard
// wname's own name to qt, followed by the proof piece, is the engine's
// answer for the names it synthesises, whatever their length: the
// probes' bytes.
func (c *compiler) wildSafeSigned(wname string, qt uint16, body wire.Body) bool {
	if !c.n3 && !c.nsec || body.Tail != nil || body.Ns != 0 || body.Ar != 0 || body.An == 0 {
		return false
	}
	probes, ok := c.wildProbeNames(wname)
	if !ok {
		return false
	}
	parent := wname[2:]
	for _, probe := range probes {
		w := mustWire(probe)
		res := answer.Lookup(c.z, answer.Query{Name: probe, Type: qt, DO: true})
		b, err := wire.Encode(probe, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
		if err != nil || res.Kind != answer.Success {
			return false
		}
		ce := len(w) - len(mustWire(parent))
		got, ok := withWildProof(c.z, nil, body, w, ce)
		if !ok || !sameBody(flatten(got), b) {
			return false
		}
	}
	return true
}

// withWildProof is body, a wildcard's DO=1 answer part, with the proof for
// the QNAME name (lowercased wire form) as Tail: name's closest encloser
// (the wildcard's parent) starts at offset ce.
func withWildProof(z *zone.Zone, pc *pieceCache, body wire.Body, name []byte, ce int) (wire.Body, bool) {
	var n *zone.Node
	switch {
	case nsecComposable(z):
		qname, ok := presentation(name)
		if !ok {
			return wire.Body{}, false
		}
		n = z.NSECCovering(qname)
	case nsec3Composable(z):
		ncName, ok := presentation(name[nextCloser(name, ce):])
		if !ok {
			return wire.Body{}, false
		}
		var match bool
		if n, match = z.NSEC3For(ncName); match {
			return wire.Body{}, false
		}
	}
	if n == nil {
		return wire.Body{}, false
	}
	t := uint16(dns.TypeNSEC)
	if z.NSEC3 != nil {
		t = dns.TypeNSEC3
	}
	return appendPieces(pc, body, []*zone.Node{n}, t)
}

// flatten is a body's two parts as one.
func flatten(b wire.Body) wire.Body {
	b.Bytes = append(slices.Clip(b.Moved()), b.Tail...)
	b.Tail, b.TailNs, b.Shift, b.Ptrs = nil, 0, 0, nil
	return b
}

// wildNoDataSigned reports whether the QNAMEs wildcard wname synthesises get,
// for the types it lacks (DO=1), the signed NXDOMAIN's composition below
// its parent under RCODE 0 (Entry.WildNoDataSigned): the engine's answer for
// both probe names.
func (c *compiler) wildNoDataSigned(wname string) bool {
	if !c.nsec && !c.n3 {
		return false
	}
	head, err := c.shared(NXD3Key)
	if err != nil {
		return false
	}
	probes, ok := c.wildProbeNames(wname)
	if !ok {
		return false
	}
	nsec, nsec3 := c.z, (*zone.Zone)(nil)
	if c.n3 {
		nsec, nsec3 = nil, c.z
	}
	for _, probe := range probes {
		w := mustWire(probe)
		got, ok := composeWildNoData(nsec, nsec3, nil, head, w, len(w)-len(mustWire(wname[2:])))
		if !ok {
			return false
		}
		res := answer.Lookup(c.z, answer.Query{Name: probe, Type: probeType, DO: true})
		want, err := wire.Encode(probe, probeType, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
		if err != nil || res.Kind != answer.NoData || !sameBody(flatten(got), want) {
			return false
		}
	}
	return true
}

// composeWildNoData is the signed NODATA for a type the wildcard below the
// closest encloser at offset ce of name (lowercased wire form) lacks: the
// NXDOMAIN's head and pieces there under RCODE 0, from an NSEC zone or an
// NSEC3 one (the other nil). RFC 4035 §3.1.3.4 and RFC 5155 §7.2.5 ask for
// the NXDOMAIN's records, the wildcard's own NSEC3 matched, not covered.
func composeWildNoData(nsec, nsec3 *zone.Zone, pc *pieceCache, head wire.Body, name []byte, ce int) (wire.Body, bool) {
	var b wire.Body
	ok := false
	switch {
	case nsec != nil:
		b, ok = composeNSECNXD(nsec, pc, head, name, ce)
	case nsec3 != nil:
		b, ok = composeNSEC3(nsec3, pc, head, name, ce, nextCloser(name, ce), true)
	}
	b.Rcode = dns.RcodeSuccess
	return b, ok
}
