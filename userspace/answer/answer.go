// Package answer is the authoritative answer engine: a pure function of a zone
// snapshot and a question. It follows RFC 1034 §4.3.2 (with CNAME chasing
// inside the zone), RFC 6672 (DNAME), RFC 4592 (wildcards), RFC 2308
// (negative answers) and, for signed zones queried with DO=1, RFC 4035 §3.1 and
// RFC 5155 §7.2 (RRSIGs and NSEC/NSEC3 denial proofs).
//
// The engine builds sections; it does not write wire format, choose EDNS or
// truncate. Those belong to the responder, which is shared with the compiler
// that fills the XDP maps, so both produce the same bytes.
package answer

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// Kind says what sort of answer a Result is; servers count by it.
type Kind uint8

const (
	Success    Kind = iota // the answer section answers the question
	NoData                 // the name exists, the type does not (RFC 2308 §2.2)
	NameError              // NXDOMAIN
	Referral               // delegation to a child zone
	ServerFail             // the zone cannot answer (Lookup itself never gives it)
)

var kindNames = [...]string{"success", "nodata", "nxdomain", "referral", "servfail"}

func (k Kind) String() string { return kindNames[k] }

// Query is the question and the flags that change an answer.
type Query struct {
	Name string // canonical: lowercase, fully qualified
	Type uint16
	DO   bool // DNSSEC OK (RFC 3225)
	TCP  bool // ANY gets every RRset over TCP, one over UDP (RFC 8482)
}

// Result is an answer before it is written to the wire.
type Result struct {
	Kind          Kind
	Rcode         int
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR
	// ExtraOptional: the additional records may be left out when the
	// whole answer does not fit (the addresses of an NS answer's targets,
	// which NSD and Knot drop rather than truncate), unlike a referral's
	// glue.
	ExtraOptional bool
}

// MaxChain bounds the CNAMEs (given or synthesised from a DNAME) one answer
// follows inside the zone. A longer chain is answered up to its MaxChain-th
// CNAME, NOERROR; a loop stops before the first name that would repeat.
// NSD follows chains of any length; 32 keeps the longest answer (DNAMEs,
// RRSIGs and 255-octet names included) far below 64 KiB, and the compiled
// table linear in the zone.
const MaxChain = 32

// Lookup answers q from z. q.Name must be at or below z.Origin.
func Lookup(z *zone.Zone, q Query) Result {
	e := engine{z: z, q: q, dnssec: q.DO && z.Signed}
	e.res.Authoritative = true
	e.run(q.Name)
	return e.res
}

type engine struct {
	z      *zone.Zone
	q      Query
	dnssec bool
	res    Result
	seenNs map[string]bool // owner/type of sets in the authority section
	dnames []string        // owners of the DNAMEs in the answer
}

func (e *engine) run(sname string) {
	var chased []string // the names answered so far, in chain order
	for {
		next, ok := e.step(sname)
		if !ok {
			return
		}
		if !dns.IsSubDomain(e.z.Origin, next) {
			return // the chain leaves the zone: the resolver follows it
		}
		chased = append(chased, sname)
		if len(chased) >= MaxChain || slices.Contains(chased, next) {
			// A loop (chasing next would repeat RRsets already in the
			// answer) or a chain too long to follow here: the answer ends
			// in a CNAME, NOERROR, and the resolver chases its target as
			// it would a target outside the zone. NSD and Knot answer a
			// loop this way; see docs/answers.md.
			return
		}
		sname = next
	}
}

// step answers one name of a chain. It returns the next name to chase and
// true when the answer so far ends in a CNAME (given or synthesised).
func (e *engine) step(sname string) (string, bool) {
	z := e.z
	// Walk down from the apex towards sname; a zone cut or a DNAME above
	// sname decides the answer before sname itself is looked at.
	labels := dns.CountLabel(sname) - dns.CountLabel(z.Origin)
	var ce *zone.Node // closest encloser found so far
	for i := labels; i >= 0; i-- {
		name := ancestor(sname, i)
		n := z.Node(name)
		if n == nil {
			return e.missing(sname, ce)
		}
		ce = n
		if i == 0 {
			break
		}
		if n.Has(zone.Delegation) {
			e.referral(n)
			return "", false
		}
		if n.Has(zone.HasDNAME) {
			return e.dname(sname, n)
		}
	}
	n := ce
	if n.Has(zone.Delegation) && e.q.Type != dns.TypeDS {
		// DS is the parent's data: answered here, not referred (RFC 4035 §3.1.4.1).
		e.referral(n)
		return "", false
	}
	return e.exact(sname, n, n, false)
}

// ancestor returns sname with its i leftmost labels removed.
func ancestor(sname string, i int) string {
	for ; i > 0; i-- {
		sname = zone.Parent(sname)
	}
	return sname
}

// exact answers from node n, whose data is served under owner sname. src is
// the wildcard node when the answer is synthesised (then wild is true).
func (e *engine) exact(sname string, n, src *zone.Node, wild bool) (string, bool) {
	qt := e.q.Type
	if c := n.Get(dns.TypeCNAME); c != nil && followCNAME(n, qt) {
		e.res.Kind = Success // unless the chase finds otherwise
		e.addAnswer(c, sname, wild)
		if wild {
			e.proveWildcardAnswer(sname, src)
		}
		return dns.CanonicalName(c.RRs[0].(*dns.CNAME).Target), true
	}
	switch qt {
	case dns.TypeANY:
		if sets := anySets(n, e.q.TCP); len(sets) > 0 {
			for _, s := range sets {
				e.addAnswer(s, sname, wild)
			}
			if wild {
				e.proveWildcardAnswer(sname, src)
			}
			e.res.Kind = Success
			return "", false
		}
	case dns.TypeRRSIG:
		// Asked for by type: every signature at the name, DO or not.
		var sigs []dns.RR
		if n.HasSigs() {
			for _, s := range n.Sets() {
				sigs = append(sigs, s.Sigs...)
			}
		}
		if len(sigs) > 0 {
			for _, s := range sigs {
				e.res.Answer = append(e.res.Answer, rename(s, sname, wild))
			}
			if wild {
				e.proveWildcardAnswer(sname, src)
			}
			e.res.Kind = Success
			return "", false
		}
	default:
		if !n.HasType(qt) {
			break
		}
		if s := n.Get(qt); s != nil && len(s.RRs) > 0 {
			e.addAnswer(s, sname, wild)
			if wild {
				e.proveWildcardAnswer(sname, src)
			}
			if qt == dns.TypeNS {
				// The addresses of the name servers inside the zone,
				// as NSD and Knot send them even with minimal
				// responses: a resolver asking for the apex NS
				// (priming a zone's servers) gets their addresses in
				// one answer. The one exception to minimal answers
				// (docs/answers.md).
				e.glue(s)
				e.res.ExtraOptional = len(e.res.Extra) > 0
			}
			e.res.Kind = Success
			return "", false
		}
	}
	e.noData(sname, n, src, wild)
	return "", false
}

// followCNAME reports whether a query of type qt at a node holding a CNAME
// follows it (RFC 1034 §4.3.2 step 3a): unless CNAME itself or ANY is asked,
// or the type is one the CNAME may share its name with (RRSIG, NSEC) and the
// node has it.
func followCNAME(n *zone.Node, qt uint16) bool {
	switch qt {
	case dns.TypeCNAME, dns.TypeANY:
		return false
	case dns.TypeNSEC:
		return n.Get(dns.TypeNSEC) == nil
	case dns.TypeRRSIG:
		return !n.HasSigs()
	}
	return true
}

// anySets picks the RRsets an ANY query gets. Over TCP: all of them. Over UDP
// one (RFC 8482 §4.2): the lowest-numbered data type at the name, so the choice
// is stable and needs no synthesis (see docs/answers.md).
func anySets(n *zone.Node, tcp bool) []*zone.RRset {
	var out []*zone.RRset
	sets := n.Sets()
	for i := range sets {
		s := &sets[i]
		if len(s.RRs) == 0 || s.Type == dns.TypeRRSIG || s.Type == dns.TypeNSEC || s.Type == dns.TypeNSEC3 {
			continue
		}
		out = append(out, s)
		if !tcp {
			break
		}
	}
	return out
}

func (e *engine) addAnswer(s *zone.RRset, owner string, wild bool) {
	for _, rr := range s.RRs {
		e.res.Answer = append(e.res.Answer, rename(rr, owner, wild))
	}
	if e.dnssec {
		for _, rr := range s.Sigs {
			e.res.Answer = append(e.res.Answer, rename(rr, owner, wild))
		}
	}
}

// rename gives a wildcard's record the query name as owner (RFC 4592 §4.3).
func rename(rr dns.RR, owner string, wild bool) dns.RR {
	if !wild {
		return rr
	}
	c := dns.Copy(rr)
	c.Header().Name = owner
	return c
}

// missing answers a name that does not exist: wildcard synthesis from the
// closest encloser ce, else NXDOMAIN (RFC 4592 §3.3.1, RFC 1034 §4.3.2 3.c).
func (e *engine) missing(sname string, ce *zone.Node) (string, bool) {
	wname := "*." + ce.Name
	if w := e.z.Node(wname); w != nil {
		return e.exact(sname, w, w, true)
	}
	e.res.Kind, e.res.Rcode = NameError, dns.RcodeNameError
	e.addSOA()
	if e.dnssec {
		if e.z.NSEC3 != nil {
			e.closestEncloserProof(sname, ce.Name)
			e.nsec3Cover(wname)
		} else {
			e.nsecCover(sname)
			e.nsecCover(wname)
		}
	}
	return "", false
}

// noData answers an existing name without the type (RFC 2308 §2.2).
func (e *engine) noData(sname string, n, src *zone.Node, wild bool) {
	e.res.Kind = NoData
	e.addSOA()
	if !e.dnssec {
		return
	}
	if e.z.NSEC3 != nil {
		if wild {
			// RFC 5155 §7.2.5: closest encloser, next closer, and the
			// NSEC3 matching the wildcard.
			e.closestEncloserProof(sname, zone.Parent(src.Name))
			e.nsec3Match(src.Name)
			return
		}
		if !e.nsec3Match(n.Name) && e.q.Type == dns.TypeDS {
			// RFC 5155 §7.2.4: no NSEC3 for the name under opt-out.
			e.closestEncloserProof(n.Name, "")
		}
		return
	}
	if wild {
		// RFC 4035 §3.1.3.4: no exact match, and the wildcard lacks the type.
		e.nsecCover(sname)
		e.nsecCover(src.Name)
		return
	}
	// The NSEC at the name, or for an empty non-terminal the one covering it.
	e.nsecCover(n.Name)
}

// proveWildcardAnswer adds the proof that the query name itself does not
// exist, for a wildcard-synthesised answer (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6).
func (e *engine) proveWildcardAnswer(sname string, w *zone.Node) {
	if !e.dnssec {
		return
	}
	if e.z.NSEC3 != nil {
		e.nsec3Cover(nextCloser(sname, zone.Parent(w.Name)))
		return
	}
	e.nsecCover(sname)
}

func (e *engine) addSOA() {
	soa, sigs := e.z.NegativeSOA()
	e.addNs(soa)
	if e.dnssec {
		for _, s := range sigs {
			e.addNs(s)
		}
	}
}

// addNs appends to the authority section.
func (e *engine) addNs(rr dns.RR) { e.res.Ns = append(e.res.Ns, rr) }

// addNsSet appends an RRset and its signatures to the authority section once:
// two proofs may need the same NSEC (the name's and the wildcard's). Records
// are built afresh per Get, so sets are told apart by owner and type.
func (e *engine) addNsSet(s *zone.RRset) {
	if s == nil || len(s.RRs) == 0 {
		return
	}
	k := s.RRs[0].Header().Name + "/" + dns.TypeToString[s.Type]
	if e.seenNs[k] {
		return
	}
	if e.seenNs == nil {
		e.seenNs = map[string]bool{}
	}
	e.seenNs[k] = true
	e.res.Ns = append(e.res.Ns, s.RRs...)
	e.res.Ns = append(e.res.Ns, s.Sigs...)
}

// nsecCover adds the NSEC that matches or covers name.
func (e *engine) nsecCover(name string) {
	if n := e.z.NSECCovering(name); n != nil {
		e.addNsSet(n.Get(dns.TypeNSEC))
	}
}

// nsec3Match adds the NSEC3 whose hash matches name; false if none does.
func (e *engine) nsec3Match(name string) bool {
	n, ok := e.z.NSEC3For(name)
	if !ok {
		return false
	}
	e.addNsSet(n.Get(dns.TypeNSEC3))
	return true
}

// nsec3Cover adds the NSEC3 that covers (or, with opt-out, matches) name.
func (e *engine) nsec3Cover(name string) {
	if n, _ := e.z.NSEC3For(name); n != nil {
		e.addNsSet(n.Get(dns.TypeNSEC3))
	}
}

// closestEncloserProof adds the NSEC3 matching the closest provable encloser
// and the one covering the next closer name (RFC 5155 §7.2.1). ce is the
// closest encloser when known; "" means search upwards from name for the
// closest ancestor that has a matching NSEC3 (opt-out spans).
func (e *engine) closestEncloserProof(name, ce string) {
	if ce == "" {
		for ce = zone.Parent(name); dns.IsSubDomain(e.z.Origin, ce); ce = zone.Parent(ce) {
			if _, ok := e.z.NSEC3For(ce); ok {
				break
			}
		}
	}
	e.nsec3Match(ce)
	e.nsec3Cover(nextCloser(name, ce))
}

// nextCloser is the name one label longer than ce on the way to name.
func nextCloser(name, ce string) string {
	n := dns.CountLabel(name) - dns.CountLabel(ce) - 1
	return ancestor(name, n)
}

// referral answers with the delegation at cut (RFC 1034 §4.3.2 3.b): NS in
// authority, glue in additional, AA off unless the answer section already
// holds authoritative data from this zone (a CNAME into the delegation).
func (e *engine) referral(cut *zone.Node) {
	e.res.Kind = Referral
	if len(e.res.Answer) == 0 {
		e.res.Authoritative = false
	}
	ns := cut.Get(dns.TypeNS)
	for _, rr := range ns.RRs {
		e.addNs(rr)
	}
	if e.dnssec {
		if ds := cut.Get(dns.TypeDS); ds != nil {
			e.addNsSet(ds)
		} else if e.z.NSEC3 != nil {
			if !e.nsec3Match(cut.Name) {
				e.closestEncloserProof(cut.Name, "") // opt-out (RFC 5155 §7.2.7)
			}
		} else {
			e.nsecCover(cut.Name) // proves no DS (RFC 4035 §3.1.4)
		}
	}
	e.glue(ns)
}

// glue adds address records for NS targets inside this zone, including
// targets below other cuts (sibling glue), A before AAAA per target.
func (e *engine) glue(ns *zone.RRset) {
	for _, rr := range ns.RRs {
		target := dns.CanonicalName(rr.(*dns.NS).Ns)
		if !dns.IsSubDomain(e.z.Origin, target) {
			continue
		}
		n := e.z.Node(target)
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if s := n.Get(t); s != nil {
				e.res.Extra = append(e.res.Extra, s.RRs...)
				if e.dnssec && !n.Has(zone.BelowCut) {
					e.res.Extra = append(e.res.Extra, s.Sigs...)
				}
			}
		}
	}
}

// dname synthesises a CNAME from the DNAME at owner n (RFC 6672 §3.3).
func (e *engine) dname(sname string, n *zone.Node) (string, bool) {
	if slices.Contains(e.dnames, n.Name) {
		// The chain came back below a DNAME it already passed (a DNAME
		// whose target is below itself): the answer ends in the CNAME
		// synthesised last, as NSD answers.
		return "", false
	}
	e.dnames = append(e.dnames, n.Name)
	s := n.Get(dns.TypeDNAME)
	d := s.RRs[0].(*dns.DNAME)
	// The DNAME with its RRSIGs; the CNAME is synthesised unsigned (RFC 6672
	// §5.3.1: the validator checks it against the DNAME).
	e.addAnswer(s, n.Name, false)
	prefix := sname[:len(sname)-len(n.Name)]
	target := prefix + dns.CanonicalName(d.Target)
	if d.Target == "." {
		target = prefix
	}
	if wireLen(target) > 255 {
		// The substitution overflows the name limit: YXDOMAIN with the
		// DNAME and no CNAME (RFC 6672 §2.2), as NSD and BIND answer.
		e.res.Kind, e.res.Rcode = NameError, dns.RcodeYXDomain
		return "", false
	}
	e.res.Kind = Success
	e.res.Answer = append(e.res.Answer, &dns.CNAME{
		Hdr:    dns.RR_Header{Name: sname, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl},
		Target: target,
	})
	// A CNAME query is answered by the CNAME synthesised for it: not
	// chased further (RFC 1034 §4.3.2 step 3a, as for a CNAME in the zone).
	return target, e.q.Type != dns.TypeCNAME
}

// wireLen is the wire length of a fully qualified name in presentation
// form, escapes (\. and \DDD) counted as the octet they stand for.
// (dns.IsDomainName lets 256 and 257 octets through.)
func wireLen(name string) int {
	if name == "." {
		return 1
	}
	n := 1 // the root label
	for i := 0; i < len(name); i++ {
		if name[i] == '\\' {
			if i+3 < len(name) && isDigit(name[i+1]) && isDigit(name[i+2]) && isDigit(name[i+3]) {
				i += 3
			} else {
				i++
			}
		}
		n++ // an octet of a label, or a dot: the next label's length
	}
	return n
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
