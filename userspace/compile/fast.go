package compile

import (
	"encoding/binary"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// The fast path writes the entries of a plain name without asking the
// engine: most names of a large zone, or of a fleet of small ones, hold
// a few address or text records and nothing else, and asking the engine
// (records built from the stored bytes, then packed again by miekg/dns)
// was most of the compile time (docs/performance.md). It covers only
// answers whose bytes follow from the stored records alone:
//
//   - a positive answer, DO=0, of a type whose rdata holds no name (so
//     nothing in it compresses): each record is a pointer to the QNAME,
//     type, class, TTL, and the rdata as stored;
//   - the NODATA default entry, DO=0, when the SOA's names cannot
//     compress against a label of the QNAME below the origin: then the
//     body is the zone's shared one for the QNAME's length;
//   - NXD (names below that do not exist get the zone's NXDOMAIN body)
//     when no wildcard, cut or DNAME can be in the way.
//
// Everything else takes the engine. TestFastPathMatchesEngine compiles
// generated zones both ways and compares every entry.

// fastPath switches the fast path; off in the test that checks it.
var fastPath = true

// nameFree reports whether the rdata of type t holds no domain name, so
// that a record of it packs the same compressed or not.
func nameFree(t uint16) bool {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeHINFO, dns.TypeSSHFP, dns.TypeTLSA,
		dns.TypeCAA, dns.TypeSPF, dns.TypeOPENPGPKEY, dns.TypeSMIMEA:
		return true
	}
	return false
}

// plain reports whether the engine answers at node n straight from n's
// own records: not the apex, no cut at or above it, no DNAME, no CNAME, not
// a wildcard, and a name written without escapes.
func plain(n *zone.Node) bool {
	return !n.Has(zone.Apex|zone.Delegation|zone.BelowCut|zone.Wildcard|zone.HasDNAME) &&
		!n.HasType(dns.TypeCNAME) && !strings.ContainsRune(n.Name, '\\')
}

// fastPositive is the positive answer of type t at plain node n, DO=0,
// in memory from alloc.
func fastPositive(n *zone.Node, t uint16, alloc func(int) []byte) (wire.Body, bool) {
	if !nameFree(t) {
		return wire.Body{}, false
	}
	ttl, count, rdata, ok := n.WireSet(t)
	if !ok || count > 0xffff {
		return wire.Body{}, false
	}
	const fixed = 2 + 2 + 2 + 4 // pointer, type, class, TTL; rdlength is in rdata
	b := alloc(count*fixed + len(rdata))
	for p := 0; p < len(rdata); {
		l := 2 + int(binary.BigEndian.Uint16(rdata[p:]))
		b = append(b, 0xc0, wire.HeaderLen) // the QNAME, at offset 12
		b = binary.BigEndian.AppendUint16(b, t)
		b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
		b = binary.BigEndian.AppendUint32(b, ttl)
		b = append(b, rdata[p:p+l]...)
		p += l
	}
	return wire.Body{AA: true, An: uint16(count), Bytes: b}, true
}

// soaLabels are the labels just below the origin of the SOA's MNAME and
// RNAME, for names under the origin: a QNAME whose label below the origin
// is one of these may share more than the origin with them, and then the
// SOA compresses differently than in the shared body.
func soaLabels(z *zone.Zone) map[string]bool {
	out := map[string]bool{}
	for _, name := range []string{z.SOA.Ns, z.SOA.Mbox} {
		if l, ok := labelBelow(strings.ToLower(name), z.Origin); ok {
			out[l] = true
		} else if strings.ContainsRune(name, '\\') {
			out["\\"] = true // escapes: the fast path is off (see fastNoData)
		}
	}
	return out
}

// labelBelow returns the label of name just below origin, lowercased, when
// name is strictly below origin.
// Both are fully qualified and origin canonical; a name with an escape
// gives "\\" (compared as a suffix of text, an escaped dot would pass for
// a label boundary).
func labelBelow(name, origin string) (string, bool) {
	if strings.ContainsRune(name, '\\') {
		return "\\", dns.IsSubDomain(origin, name)
	}
	var rest string
	switch {
	case origin == ".":
		rest = name
	case len(name) > len(origin) && name[len(name)-len(origin)-1] == '.' && strings.EqualFold(name[len(name)-len(origin):], origin):
		rest = name[:len(name)-len(origin)]
	default:
		return "", false
	}
	rest = strings.TrimSuffix(rest, ".")
	if rest == "" {
		return "", false
	}
	return strings.ToLower(rest[strings.LastIndexByte(rest, '.')+1:]), true
}

// fastNoData is the default entry (DO=0) of plain node n: the zone's
// shared NODATA body for the QNAME's length, when the SOA cannot compress
// against the QNAME beyond the origin.
func (c *compiler) fastNoData(n *zone.Node, wname []byte) (wire.Body, bool) {
	if c.soaLabels == nil {
		c.soaLabels = soaLabels(c.z)
	}
	if c.soaLabels["\\"] {
		return wire.Body{}, false
	}
	l, ok := labelBelow(n.Name, c.z.Origin)
	if !ok || c.soaLabels[l] {
		return wire.Body{}, false
	}
	b, err := c.shared(len(wname))
	return b, err == nil
}

// fastNXD answers nxdBelow for a node with no cut or DNAME at or above it
// and no wildcard or probe name below it: a name that does not exist below
// n then gets NXDOMAIN with the SOA, the shared body whatever the QNAME.
// ok is false when the engine must tell.
func (c *compiler) fastNXD(n *zone.Node) (nxd, ok bool) {
	if n.Has(zone.Delegation|zone.BelowCut|zone.HasDNAME) || strings.ContainsRune(n.Name, '\\') ||
		!n.Leaf() && (c.z.Node("*."+n.Name) != nil || c.z.Node(nxdProbe+"."+n.Name) != nil) {
		return false, false
	}
	if len(nxdProbe)+1+len(n.Name)+1 > wire.MaxNameLen { // the probe's wire length (no escapes)
		return false, true
	}
	_, err := c.shared(NXDKey)
	return err == nil, true
}

// fastEntry fills e (name, type and DO set) on the fast path; false: ask
// the engine.
func (c *compiler) fastEntry(n *zone.Node, e *Entry) bool {
	if !fastPath || e.DO || !plain(n) {
		return false
	}
	if e.Type != TypeDefault {
		b, ok := fastPositive(n, e.Type, c.alloc)
		if ok {
			e.Kind, e.Body = answer.Success, b
		}
		return ok
	}
	b, ok := c.fastNoData(n, e.Name)
	if !ok {
		return false
	}
	e.Kind, e.Body, e.Negative = answer.NoData, b, true
	e.NXD = c.nxdAt(n)
	e.Wild = c.wildBelow(n) // as name sets it on every default entry
	return true
}
