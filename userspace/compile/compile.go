// Package compile lists every answer the engine can foresee for a zone, as
// wire-format bodies keyed by (lowercased QNAME, QTYPE, DO). The Go responder
// serves from the table before it runs the engine; the XDP loader copies the
// same entries into BPF maps. Both get their bytes from answer.Lookup, so a
// compiled answer is the engine's answer by construction.
//
// Update redoes only what a zone change (zone.Delta) affects: the changed
// names, the names below a changed cut, and the names whose answers read a
// changed name (CNAME/DNAME chains, glue), found through reverse dependencies
// recorded at compile time.
package compile

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/shardmap"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TypeDefault keys the entry that answers every "ordinary" QTYPE not listed
// explicitly at a name (see Defaultable). It is 0, a type never asked for.
const TypeDefault = 0

// probeType is the QTYPE asked of the engine to compute a default entry: a
// private-use type (RFC 6895 §3.1) no zone data uses in practice. Compiling
// refuses a zone that has it.
const probeType = 65534

// depSOA is the dependency key of answers that carry the zone's SOA inside
// other records (a CNAME chain ending in NODATA): they change with every SOA.
// Pure negative answers do not need it: their bodies are shared (Negative).
const depSOA = "$SOA"

// depChains lists every name that answers through a chain: they have entries
// for every type of the zone, so a type new to the zone means new entries.
const depChains = "$CHAINS"

// Defaultable reports whether the answer for qtype at a name is the name's
// default entry when qtype has no entry of its own. It is false for the types
// whose answers differ from plain "no such type" handling: DS (parent side),
// RRSIG, NSEC and ANY (answered by type), and meta types.
func Defaultable(qtype uint16) bool {
	switch qtype {
	case TypeDefault, dns.TypeOPT, dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeANY:
		return false
	}
	return qtype < 128 || qtype > 255 // 128-255: QTYPEs and meta types
}

// Entry is one compiled answer.
type Entry struct {
	Name []byte // lowercased QNAME, wire form; read only (Table.Each lends the table's bytes)
	Type uint16 // QTYPE, or TypeDefault
	DO   bool
	Kind answer.Kind
	Body wire.Body
	// Negative marks a NODATA answer whose body, or with DO its first
	// part (Body.Bytes, before Body.Tail), is the zone's shared negative
	// body for the QNAME's length: the SOA alone (DO=0), or the SOA and
	// its RRSIGs (DO=1). That part depends on nothing but the QNAME's
	// length and the SOA, so Update does not list such entries again when
	// only the SOA changed (Changes.Negatives has the new parts).
	Negative bool
	// NXD (on Negative default entries for DO=0; on any DO=1 default
	// entry of a zone whose signed NXDOMAIN is composed, nsec3nxd.go): a
	// name below this
	// one that has no entry does not exist, and its closest encloser is
	// this name or a name below it; unless that one says otherwise, the
	// answer is the zone's NXDOMAIN body (NXDKey), whatever the QNAME and
	// QTYPE.
	NXD bool
	// Wild (on default entries): the names below this one that have no
	// entries and whose closest encloser is this name are answered from
	// the wildcard "*." + this name (no cut or DNAME at or above it).
	Wild bool
	// WildSafe (on the entries of a wildcard "*.X"): the body answers
	// every QNAME the wildcard synthesises, byte for byte as the engine:
	// the owner is a pointer to the QNAME and nothing else points into
	// the question or the body (checked by compiling probe names of
	// other lengths). XDP answers a miss below X from it (docs/xdp.md).
	WildSafe bool
	// Referral (on default entries of a cut and of the names below it):
	// the body is a referral, and a name below this one without entries
	// gets the same referral with every compression pointer Body.Ptrs
	// lists moved by the extra length of the QNAME (checked by compiling
	// probe names of other lengths). XDP answers such a miss from it
	// (docs/xdp.md, "Referrals").
	Referral bool
	// WildNoData (on the DO=0 default entry of a wildcard "*.X"): the body
	// is the NODATA the wildcard gives for types it has no entry of, and
	// a QNAME it synthesises gets the same body with every compression
	// pointer Body.Ptrs lists moved by the QNAME's extra length (checked
	// by compiling probe names of other lengths). XDP answers such a miss
	// from it (docs/xdp.md, "Wildcards"), unless the next closer label's
	// LabelWord is one of WildExcept (0: none).
	WildNoData bool
	// WildExcept (with WildNoData): the LabelWords of the labels, below
	// the wildcard's parent, of the SOA MNAME and RNAME where those lie
	// below it under a name that does not exist. A QNAME with that next
	// closer label shares more of their labels than other QNAMEs do, so
	// the engine answers it.
	WildExcept [2]uint64
	// WildNoDataSigned (on the DO=1 default entry of a wildcard "*.X" in
	// an NSEC zone whose NXDOMAINs are composed): a QNAME the wildcard
	// synthesises gets, for a type it has no entry of, the signed
	// NXDOMAIN's head and pieces below X under RCODE 0 (RFC 4035
	// §3.1.3.4 asks for the same two NSECs; wire.Encode writes both
	// uncompressed). Checked with the probe names.
	WildNoDataSigned bool
}

// LabelWord is how XDP compares a next closer label with a wildcard's
// WildExcept: its first 8 bytes in lowercased wire form (the length,
// then up to 7 octets), zero-padded, read little-endian. Labels of one
// word differ from every other label's word; longer ones may share it,
// and are then passed too.
func LabelWord(label []byte) uint64 {
	var b [8]byte
	n := min(len(label), 1+int(label[0]), 8)
	for i := 0; i < n; i++ {
		b[i] = label[i]
		if i > 0 && 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return binary.LittleEndian.Uint64(b[:])
}

// Key names an entry.
type Key struct {
	Name string // lowercased QNAME, wire form
	Type uint16
	DO   bool
}

// SignedKey is added to a QNAME length to key the shared part of signed
// negative answers (DO=1 in a signed zone: SOA and its RRSIGs) apart from
// the plain ones (DO=0: the SOA alone), in Changes.Negatives and beyond.
const SignedKey = 256

// NXDKey keys a zone's NXDOMAIN body in Changes.Negatives and beyond: the
// answer, with the SOA written uncompressed (wire.Encode), to every name
// that does not exist below a name whose entries say NXD. One body serves
// every QNAME of the zone.
const NXDKey = 2 * SignedKey

// nxdProbe is the label under a name whose answer tells what every name
// that does not exist below it gets: a wildcard, a cut or a DNAME there
// give something else than NXDOMAIN. A zone holding the label is merely
// answered by the engine below the names that have it.
const nxdProbe = "xdpns-nxd-probe"

// Each calls fn for every compiled answer of z. Entries with DO=true are
// listed only for signed zones: for an unsigned zone the answer does not
// depend on DO (Table.Lookup and the XDP key account for that). A negative
// answer to a DO=1 query in a signed zone comes in two parts (wire.Body's
// Tail): the SOA and its RRSIGs, which change with every update and are
// shared by every name of one QNAME length, then the name's own NSEC or
// NSEC3 records.
func Each(z *zone.Zone, fn func(*Entry) error) error {
	c, err := newCompiler(z, nil)
	if err != nil {
		return err
	}
	var ferr error
	z.Each(func(n *zone.Node) bool {
		ferr = c.name(n, fn)
		return ferr == nil
	})
	return ferr
}

// compiler holds what compiling one zone version needs.
type compiler struct {
	n3        bool // NSEC3Composes(z): DO=1 default entries may say NXD
	nsec      bool // NSECComposes(z): the same for an NSEC zone
	z         *zone.Zone
	zoneTypes []uint16
	deps      func(target, source string) // records that source's answers read target
	types     []uint16
	// neg holds the shared NODATA body per QNAME length (plus SignedKey
	// for the DO=1 part), and negRep a name it was compiled for (to
	// recompute it when the SOA changes).
	neg    map[int]wire.Body
	negRep map[int]string
	// signedHead is what a DO=1 negative answer's authority section
	// starts with: the SOA and its RRSIGs (nil until needed).
	signedHead []dns.RR
	// soaLabels: see fastNoData (nil until needed).
	soaLabels map[string]bool
	// ent is the entry name hands to its fn (which copies it).
	ent Entry
	// free is what is left of the chunk alloc cuts names and fast-path
	// bodies from.
	free []byte
}

// allocChunk is the size of the chunks alloc cuts from: a 1M-name zone
// allocated a name and a body per entry, 3M small objects for the GC.
const allocChunk = 16 << 10

// alloc returns an empty slice of capacity n for bytes an entry carries
// to fn (which copies what it keeps). The memory is never handed out
// twice, so an entry kept longer stays valid; a chunk lives as long as any
// of its slices.
func (c *compiler) alloc(n int) []byte {
	if n > len(c.free) {
		if n > allocChunk/8 {
			return make([]byte, 0, n)
		}
		c.free = make([]byte, allocChunk)
	}
	b := c.free[:0:n]
	c.free = c.free[n:]
	return b
}

func newCompiler(z *zone.Zone, zoneTypes []uint16) (*compiler, error) {
	return newCompilerWith(z, zoneTypes, NSEC3Composes(z), NSECComposes(z))
}

// newCompilerWith is newCompiler with NSEC3Composes(z) and NSECComposes(z)
// given.
func newCompilerWith(z *zone.Zone, zoneTypes []uint16, n3, nsec bool) (*compiler, error) {
	if zoneTypes == nil {
		zoneTypes = typesOf(z)
	}
	if slices.Contains(zoneTypes, probeType) {
		return nil, fmt.Errorf("zone %s uses type %d, reserved for compiling", z.Origin, probeType)
	}
	return &compiler{z: z, zoneTypes: zoneTypes, neg: map[int]wire.Body{}, negRep: map[int]string{}, n3: n3, nsec: nsec}, nil
}

// typesFor lists the QTYPEs compiled at a node (TypeDefault last).
func (c *compiler) typesFor(n *zone.Node) []uint16 {
	types := c.types[:0]
	// Only a name holding a CNAME, or below a DNAME (occluded, so BelowCut),
	// can answer through a chain; the probe tells for sure.
	chain := false
	if n.HasType(dns.TypeCNAME) || n.Has(zone.BelowCut) {
		probe := answer.Lookup(c.z, answer.Query{Name: n.Name, Type: probeType})
		chain = len(probe.Answer) > 0
	}
	if chain {
		// The name answers through a CNAME or DNAME chain, whose end may be
		// anywhere: list every type of the zone.
		types = append(types, c.zoneTypes...)
		if c.deps != nil {
			c.deps(depChains, n.Name)
		}
	} else {
		types = n.Types(types)
	}
	if n.Has(zone.Delegation) && !slices.Contains(types, dns.TypeDS) {
		types = append(types, dns.TypeDS)
	}
	types = append(types, TypeDefault)
	c.types = types
	return types
}

// name compiles every entry of one node.
func (c *compiler) name(n *zone.Node, fn func(*Entry) error) error {
	wname, err := packName(n.Name, c.alloc)
	if err != nil {
		return err
	}
	soa, _ := c.z.NegativeSOA()
	for _, do := range []bool{false, true} {
		if do && !c.z.Signed {
			break
		}
		for _, t := range c.typesFor(n) {
			if t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeANY {
				continue // answered by type: left to the engine
			}
			// One Entry per compiler, not one on the heap per answer:
			// fn copies what it keeps.
			e := &c.ent
			*e = Entry{Name: wname, Type: t, DO: do}
			if c.fastEntry(n, e) {
				if err := fn(e); err != nil {
					return err
				}
				continue
			}
			qt := t
			if t == TypeDefault {
				qt = probeType
			}
			res := answer.Lookup(c.z, answer.Query{Name: n.Name, Type: qt, DO: do})
			body, err := wire.EncodeOpt(n.Name, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra, res.ExtraOptional)
			if err != nil {
				return err
			}
			neg := false
			switch {
			case do && res.Kind == answer.NoData && len(res.Answer) == 0 && len(res.Extra) == 0:
				// Shared first part when the bytes start with those of
				// a neutral name of this length (the SOA's MNAME or
				// RNAME may compress against this very QNAME) and the
				// rest points into the question only.
				head, err := c.shared(len(wname) + SignedKey)
				if err == nil {
					body, neg = split(body, head, len(wname))
				}
			case res.Kind == answer.NoData && len(res.Answer) == 0 && len(res.Extra) == 0 &&
				len(res.Ns) == 1 && res.Ns[0] == soa:
				// Shared only when the bytes match the body of a neutral
				// name of this length, for the same reason.
				shared, err := c.shared(len(wname))
				neg = err == nil && sameBody(shared, body)
			}
			var wildPtrs []byte
			var wildExcept [2]uint64
			wildND := false
			if t == TypeDefault && !do && res.Kind == answer.NoData && strings.HasPrefix(n.Name, "*.") {
				// A whole record with its pointers, not a link to
				// the shared body of its length: the QNAMEs it
				// answers are of other lengths.
				if wildPtrs, wildExcept, wildND = c.wildNoData(n.Name, body); wildND {
					neg = false
				}
			}
			if c.deps != nil && (!neg || do) {
				// A shared first part needs no $SOA dependency; the
				// proofs after it depend on their owners all the same.
				c.record(n.Name, &res, !neg)
			}
			*e = Entry{Name: wname, Type: t, DO: do, Kind: res.Kind, Body: body, Negative: neg}
			if wildND {
				e.Body.Ptrs, e.WildNoData, e.WildExcept = wildPtrs, true, wildExcept
			}
			// Only on a shared NODATA default entry: that is what the
			// XDP maps can mark (a link record), and Go and XDP answer
			// the same names from their tables.
			if t == TypeDefault && !do && neg {
				e.NXD = c.nxdAt(n)
			}
			if t == TypeDefault && do {
				// The signed NXDOMAIN below, composed (nsec3nxd.go,
				// nsecnxd.go): on any DO=1 default entry, shared or not.
				e.NXD = c.nsec3NXDAt(n) || c.nsecNXDAt(n)
			}
			if t == TypeDefault && do && res.Kind == answer.NoData && strings.HasPrefix(n.Name, "*.") {
				e.WildNoDataSigned = c.wildNoDataSigned(n.Name)
			}
			if t == TypeDefault {
				e.Wild = c.wildBelow(n)
				if res.Kind == answer.Referral && n.Has(zone.Delegation|zone.BelowCut) {
					e.Body.Ptrs, e.Referral = c.referralBelow(n, do, body, &res)
				}
			} else if strings.HasPrefix(n.Name, "*.") && res.Kind == answer.Success && !do {
				e.WildSafe = c.wildSafe(n.Name, qt, do, body)
			} else if strings.HasPrefix(n.Name, "*.") && res.Kind == answer.Success {
				// DO=1 answers carry the proof that the QNAME does
				// not exist: this body and a piece (wildproof.go).
				e.WildSafe = c.wildSafeSigned(n.Name, qt, body)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// shared returns the shared NODATA body for QNAME wire length l: the body
// of a neutral name of that length, whose labels match no label of the SOA's
// names, so it compresses only against the origin. It does not depend on the
// order names are compiled in.
//
// l at or above SignedKey asks for the first part of a signed negative
// answer for length l-SignedKey: the SOA and its RRSIGs as the engine
// writes them at the head of a DO=1 NODATA answer.
func (c *compiler) shared(l int) (wire.Body, error) {
	if b, ok := c.neg[l]; ok {
		return b, nil
	}
	signed := l >= SignedKey
	rep, err := c.z.Origin, error(nil)
	if l != NXDKey && l != NXD3Key {
		rep, err = neutralName(c.z, l%SignedKey)
	}
	if err != nil {
		return wire.Body{}, err
	}
	var b wire.Body
	switch {
	case l == NXDKey:
		b, err = NXDomainBody(c.z)
	case l == NXD3Key:
		b, err = SignedNXDomainHead(c.z)
	case signed:
		b, err = wire.Encode(rep, probeType, dns.RcodeSuccess, true, nil, c.headRRs(), nil)
	default:
		b, err = negativeBody(c.z, rep)
	}
	if err != nil {
		return wire.Body{}, fmt.Errorf("negative body for length %d: %w", l, err)
	}
	c.neg[l], c.negRep[l] = b, rep
	return b, nil
}

// NXDomainBody is z's NXDOMAIN body (NXDKey): the SOA, uncompressed, for
// every name Entry.NXD says gets it.
func NXDomainBody(z *zone.Zone) (wire.Body, error) {
	soa, _ := z.NegativeSOA()
	return wire.Encode(z.Origin, probeType, dns.RcodeNameError, true, nil, []dns.RR{soa}, nil)
}

// nxdAt is nxdBelow(n.Name), through the fast path when it can tell.
func (c *compiler) nxdAt(n *zone.Node) bool {
	if fastPath {
		if nxd, ok := c.fastNXD(n); ok {
			return nxd
		}
	}
	return c.nxdBelow(n.Name)
}

// nxdBelow reports whether a name below name that does not exist, and
// whose closest encloser is name, gets the zone's NXDOMAIN body: the
// engine's answer for a probe name there is exactly that (no wildcard, cut
// or DNAME in the way), and the body is the shared one.
func (c *compiler) nxdBelow(name string) bool {
	probe := nxdProbe + "." + name
	if _, ok := dns.IsDomainName(probe); !ok || len(mustWire(probe)) == 0 {
		return false
	}
	res := answer.Lookup(c.z, answer.Query{Name: probe, Type: probeType})
	if res.Rcode != dns.RcodeNameError || len(res.Answer) != 0 || len(res.Extra) != 0 || len(res.Ns) != 1 ||
		res.Ns[0].Header().Rrtype != dns.TypeSOA {
		return false
	}
	b, err := wire.Encode(probe, probeType, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
	if err != nil {
		return false
	}
	shared, err := c.shared(NXDKey)
	return err == nil && sameBody(shared, b)
}

// wildProbes are first labels of names no zone is expected to hold, of
// other lengths than "*" (one and two labels), asked in place of the
// wildcard's own name to check that its bodies do not depend on the QNAME.
var wildProbes = []string{"xdpns-wild-probe", "q.xdpns-wild-2"}

// wildBelow reports whether the names below n that do not exist, and whose
// closest encloser is n, are answered from the wildcard at n: there is
// one, and no cut or DNAME at or above n decides first.
func (c *compiler) wildBelow(n *zone.Node) bool {
	if n.Has(zone.BelowCut) || n.Has(zone.Delegation) || n.Has(zone.HasDNAME) {
		return false
	}
	return !n.Leaf() && c.z.Node("*."+n.Name) != nil
}

// wildSafe reports whether body, the answer for the wildcard's own name
// (a "*." name) to (qt, do), is also the engine's answer for names it
// synthesises, whatever their length: equal bytes for the probes.
func (c *compiler) wildSafe(wname string, qt uint16, do bool, body wire.Body) bool {
	if body.Tail != nil {
		return false
	}
	probes, ok := c.wildProbeNames(wname)
	if !ok {
		return false
	}
	for _, probe := range probes {
		res := answer.Lookup(c.z, answer.Query{Name: probe, Type: qt, DO: do})
		b, err := wire.EncodeOpt(probe, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra, res.ExtraOptional)
		if err != nil || !sameBody(b, body) || b.Tail != nil {
			return false
		}
	}
	return true
}

// wildProbeNames are the names below wildcard wname's parent its answers
// are checked with (wildProbes), when it synthesises names there: no cut
// or DNAME at or above it, no probe name taken.
func (c *compiler) wildProbeNames(wname string) ([]string, bool) {
	parent := wname[2:]
	if c.z.Node(parent) == nil || !c.wildBelow(c.z.Node(parent)) {
		return nil, false
	}
	probes := make([]string, len(wildProbes))
	for i, p := range wildProbes {
		probes[i] = p + "." + parent
		if _, ok := dns.IsDomainName(probes[i]); !ok || len(mustWire(probes[i])) == 0 || c.z.Node(probes[i]) != nil {
			return nil, false
		}
	}
	return probes, true
}

// wildNoData reports whether body, the NODATA of wildcard wname (DO=0),
// answers every name the wildcard synthesises, for a type it lacks, once
// the compression pointers are moved by the QNAME's extra length, and
// returns their offsets (wire.Body.Ptrs) and the next closer labels to
// leave to the engine (Entry.WildExcept). The SOA's owner and the names in
// its RDATA compress against the QNAME's suffix, which moves with the
// QNAME: its suffix from the wildcard's parent, unless the next closer label
// is the one an SOA name has there (hostmaster.CE, asked as itself). When
// that name exists no synthesised QNAME has the label. The probes check the
// bytes.
func (c *compiler) wildNoData(wname string, body wire.Body) ([]byte, [2]uint64, bool) {
	var except [2]uint64
	if body.Tail != nil || body.An != 0 || body.Ar != 0 {
		return nil, except, false
	}
	probes, ok := c.wildProbeNames(wname)
	if !ok {
		return nil, except, false
	}
	ptrs, ok := pointerOffsets(body.Bytes)
	if !ok || len(ptrs)/2 > 255 {
		return nil, except, false
	}
	parent := wname[2:]
	for i, n := range []string{c.z.SOA.Ns, c.z.SOA.Mbox} {
		n = dns.CanonicalName(n)
		if n == parent || !dns.IsSubDomain(parent, n) {
			continue
		}
		for zone.Parent(n) != parent {
			n = zone.Parent(n)
		}
		if c.deps != nil {
			c.deps(n, wname) // its existence decides
		}
		if c.z.Node(n) == nil {
			except[i] = LabelWord(mustWire(n))
		}
	}
	for _, probe := range probes {
		if !c.answersMoved(body, ptrs, len(mustWire(wname)), probe, false, answer.NoData) {
			return nil, except, false
		}
	}
	return ptrs, except, true
}

// answersMoved reports whether body, compiled for a name of wire length
// base, is the engine's answer (of kind k) for probe once the pointers ptrs
// lists are moved by probe's extra length: a referral below a cut, a
// wildcard's NODATA.
func (c *compiler) answersMoved(body wire.Body, ptrs []byte, base int, probe string, do bool, k answer.Kind) bool {
	r := answer.Lookup(c.z, answer.Query{Name: probe, Type: probeType, DO: do})
	b, err := wire.EncodeOpt(probe, probeType, r.Rcode, r.Authoritative, r.Answer, r.Ns, r.Extra, r.ExtraOptional)
	if err != nil || r.Kind != k || b.Tail != nil {
		return false
	}
	moved := body
	moved.Bytes = slices.Clone(body.Bytes)
	wire.ShiftPointers(moved.Bytes, ptrs, uint16(len(mustWire(probe))-base))
	return sameBody(moved, b)
}

// refProbes are first labels, of two lengths, of names asked below a cut
// to check that a referral compiled for one name answers every name below
// it once its pointers are moved.
var refProbes = []string{"xdpns-ref-probe", "q.xdpns-ref-2"}

// referralBelow reports whether body, the referral answering n (a cut or
// a name below one), answers every name below n that has no entries once
// the compression pointers are moved by the extra length, and returns
// their offsets (wire.Body.Ptrs). Below a cut the engine refers whatever
// the QNAME and QTYPE, and every pointer of the body points into the
// QNAME's suffix n or into the body, both of which move with the QNAME:
// unless a name in the records lies below n under a name that does not
// exist (an NS target without glue), which a longer QNAME could
// compress. The probes check the bytes.
func (c *compiler) referralBelow(n *zone.Node, do bool, body wire.Body, res *answer.Result) ([]byte, bool) {
	if body.Tail != nil || !c.namesExistBelow(n.Name, res) {
		return nil, false
	}
	ptrs, ok := pointerOffsets(body.Bytes)
	if !ok {
		return nil, false
	}
	base := len(mustWire(n.Name))
	for _, p := range refProbes {
		probe := p + "." + n.Name
		if _, ok := dns.IsDomainName(probe); !ok || len(mustWire(probe)) == 0 || c.z.Node(probe) != nil {
			return nil, false
		}
		if !c.answersMoved(body, ptrs, base, probe, do, answer.Referral) {
			return nil, false
		}
	}
	return ptrs, true
}

// namesExistBelow reports whether every owner and NS target in res that
// lies below name has every name from it up to name in the zone: then a
// QNAME below name that has no entries shares none of their labels but
// name's, and compresses them as name alone does.
func (c *compiler) namesExistBelow(name string, res *answer.Result) bool {
	check := func(n string) bool {
		n = dns.CanonicalName(n)
		if n == name || !dns.IsSubDomain(name, n) {
			return true
		}
		for ; n != name; n = zone.Parent(n) {
			if c.z.Node(n) == nil {
				return false
			}
		}
		return true
	}
	for _, sec := range [][]dns.RR{res.Answer, res.Ns, res.Extra} {
		for _, rr := range sec {
			if !check(rr.Header().Name) {
				return false
			}
			if ns, ok := rr.(*dns.NS); ok && !check(ns.Ns) {
				return false
			}
		}
	}
	return true
}

// pointerOffsets lists the compression pointers in rrs, records in wire
// form, as big-endian 16-bit offsets (wire.Body.Ptrs): those of owner
// names and NS targets. Records of other types with names in their RDATA
// fail (a referral holds NS, DS, RRSIG, NSEC, NSEC3, A and AAAA, whose
// other RDATA names are never compressed; a NODATA the SOA, whose MNAME
// and RNAME are).
func pointerOffsets(rrs []byte) ([]byte, bool) {
	var ptrs []byte
	name := func(i int) (int, bool) {
		for i < len(rrs) {
			l := int(rrs[i])
			switch {
			case l == 0:
				return i + 1, true
			case l&0xC0 == 0xC0:
				if i+1 >= len(rrs) {
					return 0, false
				}
				ptrs = binary.BigEndian.AppendUint16(ptrs, uint16(i))
				return i + 2, true
			case l > 63:
				return 0, false
			}
			i += 1 + l
		}
		return 0, false
	}
	for pos := 0; pos < len(rrs); {
		i, ok := name(pos)
		if !ok || i+10 > len(rrs) {
			return nil, false
		}
		end := i + 10 + int(binary.BigEndian.Uint16(rrs[i+8:]))
		if end > len(rrs) {
			return nil, false
		}
		switch binary.BigEndian.Uint16(rrs[i:]) {
		case dns.TypeNS:
			if j, ok := name(i + 10); !ok || j != end {
				return nil, false
			}
		case dns.TypeSOA:
			j, ok := name(i + 10)
			if ok {
				j, ok = name(j)
			}
			if !ok || j+20 != end {
				return nil, false
			}
		case dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeA, dns.TypeAAAA:
		default:
			return nil, false
		}
		pos = end
	}
	return ptrs, true
}

// headRRs returns the records a DO=1 NODATA answer's authority section
// starts with: those of the apex's own NODATA answer up to the first that
// is neither the SOA nor an RRSIG over it.
func (c *compiler) headRRs() []dns.RR {
	if c.signedHead == nil {
		res := answer.Lookup(c.z, answer.Query{Name: c.z.Origin, Type: probeType, DO: true})
		head := []dns.RR{}
		for i, rr := range res.Ns {
			h := rr.Header()
			if !(i == 0 && h.Rrtype == dns.TypeSOA) &&
				!(i > 0 && h.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == dns.TypeSOA) {
				break
			}
			head = append(head, rr)
		}
		c.signedHead = head
	}
	return c.signedHead
}

// split makes body, an answer for a QNAME of wire length qlen, a two-part
// body when it starts with head's bytes and what follows is only NSEC,
// NSEC3 and RRSIG records whose compression pointers all point into the
// question or into that rest itself: then the rest is the same after any
// head of the same length (Update rebuilds everything when a head's length
// changes, as on an algorithm rollover).
func split(body, head wire.Body, qlen int) (wire.Body, bool) {
	if len(head.Bytes) == 0 || body.An != 0 || body.Ar != 0 || body.Ns < head.Ns ||
		body.Rcode != head.Rcode || body.AA != head.AA ||
		len(body.Bytes) < len(head.Bytes) || string(body.Bytes[:len(head.Bytes)]) != string(head.Bytes) {
		return body, false
	}
	tail := body.Bytes[len(head.Bytes):]
	qend := wire.HeaderLen + qlen + 4
	if !pointsBack(tail, qend, qend+len(head.Bytes)) {
		return body, false
	}
	body.Bytes, body.Tail, body.TailNs = head.Bytes, tail, body.Ns-head.Ns
	return body, true
}

// pointsBack reports whether rrs, records in wire form starting at offset
// start of their message, are only NSEC, NSEC3 and RRSIG records (whose
// RDATA names are never compressed, RFC 4034 §4.1.1 and §3.1.7, RFC 5155
// §3.2) with owner names whose compression pointers point below qend (the
// question) or into rrs before them.
func pointsBack(rrs []byte, qend, start int) bool {
	for pos := 0; pos < len(rrs); {
		i := pos
		for {
			if i >= len(rrs) {
				return false
			}
			l := int(rrs[i])
			if l == 0 {
				i++
				break
			}
			if l&0xC0 == 0xC0 {
				if i+1 >= len(rrs) {
					return false
				}
				to := (l&0x3F)<<8 | int(rrs[i+1])
				if to >= qend && (to < start || to >= start+pos) {
					return false
				}
				i += 2
				break
			}
			if l > 63 {
				return false
			}
			i += 1 + l
		}
		if i+10 > len(rrs) {
			return false
		}
		switch binary.BigEndian.Uint16(rrs[i:]) {
		case dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
		default:
			return false
		}
		pos = i + 10 + int(binary.BigEndian.Uint16(rrs[i+8:]))
		if pos > len(rrs) {
			return false
		}
	}
	return true
}

// neutralName builds a name under the origin with wire length l from labels
// of one repeated letter that no label of the SOA's MNAME or RNAME equals.
func neutralName(z *zone.Zone, l int) (string, error) {
	origin := z.Origin
	ol := len(mustWire(origin))
	if l == ol {
		return origin, nil
	}
	rest := l - ol // bytes of labels to add, each label 1 + its length
	if rest < 2 || l > wire.MaxNameLen {
		return "", fmt.Errorf("no name of length %d under %s", l, origin)
	}
	used := map[string]bool{}
	for _, n := range []string{z.SOA.Ns, z.SOA.Mbox} {
		for _, lab := range dns.SplitDomainName(dns.CanonicalName(n)) {
			used[lab] = true
		}
	}
	for _, c := range "qzxjkvwy0123456789" {
		var labels []string
		ok := true
		for r := rest; r > 0; {
			n := min(r-1, 63)
			if r-1-n == 1 { // leave at least 2 bytes for the last label
				n--
			}
			lab := strings.Repeat(string(c), n)
			if used[lab] {
				ok = false
				break
			}
			labels = append(labels, lab)
			r -= n + 1
		}
		if ok {
			return strings.Join(labels, ".") + "." + origin, nil
		}
	}
	return "", fmt.Errorf("no neutral name of length %d under %s", l, origin)
}

func sameBody(a, b wire.Body) bool {
	return a.Rcode == b.Rcode && a.AA == b.AA && a.An == b.An && a.Ns == b.Ns && a.Ar == b.Ar && a.ExtraOff == b.ExtraOff && string(a.Bytes) == string(b.Bytes)
}

func hasSOA(rrs []dns.RR) bool {
	return slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeSOA })
}

// record notes every name the answer read besides the query name: owners of
// its records (chain links, glue, proofs), and for each CNAME target the
// target, its ancestors and the wildcards that could synthesise it. The SOA
// counts as $SOA when soa is set.
func (c *compiler) record(name string, res *answer.Result, soa bool) {
	origin := c.z.Origin
	for _, sec := range [][]dns.RR{res.Answer, res.Ns, res.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			switch {
			case h.Rrtype == dns.TypeSOA:
				if soa {
					c.deps(depSOA, name)
				}
				continue
			case h.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == dns.TypeSOA:
				continue
			}
			if owner := dns.CanonicalName(h.Name); owner != name {
				c.deps(owner, name)
			}
			var target string
			switch rr := rr.(type) {
			case *dns.CNAME:
				target = dns.CanonicalName(rr.Target)
			case *dns.NS:
				target = dns.CanonicalName(rr.Ns) // its glue was looked up
			}
			if target != "" {
				if !dns.IsSubDomain(origin, target) {
					continue
				}
				c.deps(target, name)
				for p := target; p != origin; {
					p = zone.Parent(p)
					if p != origin {
						c.deps(p, name)
					}
					c.deps("*."+p, name)
				}
			}
		}
	}
}

func typesOf(z *zone.Zone) []uint16 {
	if ts, ok := z.Types(); ok {
		return ts // gathered while the zone was indexed, nodes in cache
	}
	seen := map[uint16]bool{}
	var out []uint16
	z.Each(func(n *zone.Node) bool {
		for _, t := range n.Types(nil) {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
		return true
	})
	slices.Sort(out)
	return out
}

func wireName(name string) ([]byte, error) {
	return packName(name, func(n int) []byte { return make([]byte, 0, n) })
}

// packName is name in wire form, in memory from alloc. Packed on the
// stack, kept at its length: a 255-byte buffer per name was most of a
// big zone's compile garbage.
func packName(name string, alloc func(int) []byte) ([]byte, error) {
	var buf [wire.MaxNameLen]byte
	n, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	return append(alloc(n), buf[:n]...), nil
}

// val is a table value: a body; the shared negative body for the QNAME's
// length; or the tail of a signed negative one (bytes and ns are the
// Tail's), whose first part is the shared DO=1 body for the length. The
// fields are spelled out rather than a wire.Body so that a value stays 40
// bytes: a table holds several per name.
type val struct {
	// The body, as a pointer and a length rather than a slice: 24 bytes
	// a value instead of 40, so more of a large table's map slots share
	// a cache line. See bytes and setBytes.
	body       *byte
	n          uint16 // body length (a body is shorter than 64 KiB)
	extra      uint16 // wire.Body.ExtraOff
	an, ns, ar uint16
	rcode      uint8
	aa         bool
	kind       uint8
	answer     answer.Kind // for Each
	marks      uint8       // markNXD, markWild, markWildSafe, markReferral
}

// bytes is v's body.
func (v *val) bytes() []byte {
	if v.body == nil {
		return nil
	}
	return unsafe.Slice(v.body, v.n)
}

// ptrs is a markReferral or markWildNoData value's wire.Body.Ptrs:
// stored after the body, a count byte then the offsets (putter); a
// markWildNoData value's Entry.WildExcept follows them.
func (v *val) ptrs() []byte {
	if v.marks&(markReferral|markWildNoData) == 0 || v.body == nil {
		return nil
	}
	all := unsafe.Slice(v.body, int(v.n)+1)
	n := int(all[v.n])
	return unsafe.Slice(v.body, int(v.n)+1+2*n)[int(v.n)+1:]
}

// except is a markWildNoData value's Entry.WildExcept.
func (v *val) except() [2]uint64 {
	var w [2]uint64
	if p := v.ptrs(); p != nil && v.marks&markWildNoData != 0 {
		all := unsafe.Slice(v.body, int(v.n)+1+len(p)+16)[int(v.n)+1+len(p):]
		w[0], w[1] = binary.LittleEndian.Uint64(all), binary.LittleEndian.Uint64(all[8:])
	}
	return w
}

// body is v's body as a wire.Body (a valBody value).
func (v *val) wireBody() wire.Body {
	return wire.Body{Rcode: v.rcode, AA: v.aa, An: v.an, Ns: v.ns, Ar: v.ar, ExtraOff: v.extra, Bytes: v.bytes(), Ptrs: v.ptrs()}
}

// setBytes makes b v's body; b is never written afterwards.
func (v *val) setBytes(b []byte) {
	v.body, v.n = nil, uint16(len(b))
	if len(b) > 0 {
		v.body = &b[0]
	}
}

// val.marks
const (
	markNXD              = 1 << iota // Entry.NXD
	markWild                         // Entry.Wild
	markWildSafe                     // Entry.WildSafe
	markReferral                     // Entry.Referral: the body is followed by Ptrs
	markWildNoData                   // Entry.WildNoData: so is this one
	markWildNoDataSigned             // Entry.WildNoDataSigned
)

func entryMarks(e *Entry) uint8 {
	var m uint8
	if e.NXD {
		m |= markNXD
	}
	if e.Wild {
		m |= markWild
	}
	if e.WildSafe {
		m |= markWildSafe
	}
	if e.Referral {
		m |= markReferral
	}
	if e.WildNoData {
		m |= markWildNoData
	}
	if e.WildNoDataSigned {
		m |= markWildNoDataSigned
	}
	return m
}

const (
	valBody uint8 = iota
	valNeg
	valSignedNeg
)

// Table is a zone's compiled answers for the Go responder. It is immutable;
// Update derives the next version, sharing what did not change.
type Table struct {
	signed    bool
	entries   *shardmap.Map[val]
	neg       map[int]wire.Body // shared NODATA bodies by QNAME wire length (+SignedKey: DO=1 first parts)
	negRep    map[int]string    // a name each was compiled for
	soaNames  string            // MNAME and RNAME the negative bodies were made with
	deps      *shardmap.Map[[]string]
	zoneTypes []uint16 // every type the zone has had since Build (a superset is harmless)
	// nsec3 (nsec) is the zone when its signed NXDOMAIN answers are
	// composed from NSEC3 (NSEC) pieces, nsec3nxd.go (nsecnxd.go): the
	// records are read from it per QNAME.
	nsec3, nsec *zone.Zone
	pieces      *pieceCache // their pieces, encoded once (nil: not composed)
}

// Build compiles z into a Table. Identical bodies are stored once: many
// names share an answer's bytes (same address and TTL), since names compress
// to the question.
func Build(z *zone.Zone) (*Table, error) {
	c, err := newCompiler(z, nil)
	if err != nil {
		return nil, err
	}
	// About one entry per RRset and one default per name, twice in signed
	// zones, where RRSIGs double the records too: records + names is close
	// (shardmap sizes its shards from this; too low wastes half of each).
	ents := shardmap.Builder[val](z.RecordCount() + z.Len())
	deps := shardmap.Builder[[]string](0)
	t := &Table{signed: z.Signed, zoneTypes: c.zoneTypes, soaNames: soaNames(z)}
	// Sized up front: most positive answers are distinct bodies (each
	// name its own address), and a map grown from empty rehashes at every
	// doubling (10,000 small zones: 0.4 s of a 7 s restart).
	if workers := buildWorkers(z); workers > 1 {
		sh := ents.Share()
		intern := newInterner(z.RecordCount(), internParts)
		// Each worker's entries go into the table in batches, a shard at
		// a time (shardmap.Batch): 16 or so per shard per batch.
		batch := min(max(16*ents.Map().Shards(), 1024), 1<<18)
		newPut := func() (func(*Entry) error, func()) {
			b := sh.Batch(batch)
			return t.putter(b.Set, intern), b.Flush
		}
		err := buildParallel(z, c, workers, newPut, func(target, source string) { addDep(deps, target, source) })
		sh.Done()
		if err != nil {
			return nil, err
		}
	} else {
		put := t.putter(ents.Set, newInterner(z.RecordCount(), 1))
		c.deps = func(target, source string) { addDep(deps, target, source) }
		var ferr error
		z.Each(func(n *zone.Node) bool {
			ferr = c.name(n, put)
			return ferr == nil
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	t.entries, t.deps = ents.Map(), deps.Map()
	t.neg, t.negRep = c.neg, c.negRep
	t.setNSEC3(z, c)
	return t, nil
}

// setNSEC3 turns on the composed signed NXDOMAIN when c marked entries
// for it.
func (t *Table) setNSEC3(z *zone.Zone, c *compiler) {
	t.nsec3, t.nsec, t.pieces = nil, nil, nil
	if _, ok := t.neg[NXD3Key]; ok && c.n3 {
		t.nsec3 = z
	}
	if _, ok := t.neg[NXD3Key]; ok && c.nsec {
		t.nsec = z
	}
	if t.nsec3 != nil || t.nsec != nil {
		// Per version: a node a change replaced is another pointer, and
		// the old one's piece goes with the old table.
		t.pieces = &pieceCache{}
	}
}

// NSEC3Composed reports whether the table composes its zone's DO=1
// NXDOMAIN answers (nsec3nxd.go): XDP then needs the zone's NSEC3 chain.
func (t *Table) NSEC3Composed() bool { return t.nsec3 != nil }

// NSECComposed is NSEC3Composed for NSEC zones (nsecnxd.go): XDP then
// needs the zone's closest enclosers (NSECEnclosers).
func (t *Table) NSECComposed() bool { return t.nsec != nil }

// buildChunk is how many names a worker of a parallel Build compiles at a
// time; zones under two chunks are compiled on one goroutine. A variable
// for tests.
var buildChunk = 2048

func buildWorkers(z *zone.Zone) int {
	if z.Len() < 2*buildChunk {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), (z.Len()+buildChunk-1)/buildChunk)
}

// buildParallel compiles z's names on several goroutines, each with its own
// compiler, storing entries through a put from newPut (each goroutine's
// own; flush is called once it is done, also on error) and dependencies
// through dep on this one: the engine's answers,
// their encoding and the table's inserts (a 1M-name zone's are 3M cache
// misses) spread over the CPUs. Shared negative bodies depend only on the
// QNAME's length and the zone (see shared), so every worker picks the
// same ones; c receives them.
func buildParallel(z *zone.Zone, c *compiler, workers int, newPut func() (put func(*Entry) error, flush func()), dep func(target, source string)) error {
	nodes := make([]*zone.Node, 0, z.Len())
	z.Each(func(n *zone.Node) bool {
		nodes = append(nodes, n)
		return true
	})
	comps := make([]*compiler, workers)
	for w := range comps {
		wc, err := newCompilerWith(z, c.zoneTypes, c.n3, c.nsec) // the apex checks once, not per worker
		if err != nil {
			return err
		}
		comps[w] = wc
	}
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, workers)
	deps := make([][][2]string, workers)
	var wg sync.WaitGroup
	for w, wc := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			put, flush := newPut()
			defer flush()
			wc.deps = func(target, source string) { deps[w] = append(deps[w], [2]string{target, source}) }
			for !failed.Load() {
				i := int(next.Add(1)-1) * buildChunk
				if i >= len(nodes) {
					return
				}
				for _, n := range nodes[i:min(i+buildChunk, len(nodes))] {
					if errs[w] = wc.name(n, put); errs[w] != nil {
						failed.Store(true)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for _, list := range deps {
		for _, d := range list {
			dep(d[0], d[1])
		}
	}
	for _, wc := range comps {
		for l, b := range wc.neg {
			if _, ok := c.neg[l]; !ok {
				c.neg[l], c.negRep[l] = b, wc.negRep[l]
			}
		}
	}
	return nil
}

func soaNames(z *zone.Zone) string {
	return z.SOA.Ns + " " + z.SOA.Mbox // exactly: compression is case-sensitive
}

func addDep(deps *shardmap.Editor[[]string], target, source string) {
	list, _ := deps.Get(target)
	if slices.Contains(list, source) {
		return
	}
	deps.Set(target, append(slices.Clip(list), source))
}

// putter stores entries, sharing identical bodies and keeping one negative
// body (or first part) per QNAME length.
func (t *Table) putter(set func(string, val), intern *interner) func(*Entry) error {
	return func(e *Entry) error {
		b := &e.Body
		v := val{an: b.An, ns: b.Ns, ar: b.Ar, extra: b.ExtraOff, rcode: b.Rcode, aa: b.AA, answer: e.Kind, marks: entryMarks(e)}
		var body []byte
		switch {
		case e.Negative && b.Tail != nil:
			v.kind, body, v.ns = valSignedNeg, b.Tail, b.TailNs
		case e.Negative:
			set(keyString(e.Name, e.Type, e.DO), val{kind: valNeg, answer: e.Kind, marks: entryMarks(e)})
			return nil
		default:
			body = b.Bytes
		}
		n := len(body)
		if e.Referral || e.WildNoData {
			// The pointers to move follow the body (val.ptrs); interned
			// with them, so a referral never shares bytes without them.
			if len(b.Ptrs)/2 > 255 || len(body) == 0 {
				v.marks &^= markReferral | markWildNoData
			} else {
				body = append(append(slices.Clip(body), byte(len(b.Ptrs)/2)), b.Ptrs...)
				if e.WildNoData {
					body = binary.LittleEndian.AppendUint64(body, e.WildExcept[0])
					body = binary.LittleEndian.AppendUint64(body, e.WildExcept[1])
				}
			}
		}
		k, body := intern.share(body, e)
		v.setBytes(body)
		v.n = uint16(n)
		set(k, v)
		return nil
	}
}

// internParts is how many locked parts a Build on several goroutines
// splits its interner into: two writers rarely meet in one.
const internParts = 64

// interner shares identical bodies between entries; safe for concurrent
// use. Its parts are split by a hash of the body.
type interner struct {
	seed  maphash.Seed
	parts []internPart
}

type internPart struct {
	sync.Mutex
	// m maps a body to where its stored copy starts (the key is that copy,
	// so the length is the key's): 24 bytes a slot, not 40 with a slice.
	m map[string]*byte
}

// newInterner is an interner of about hint bodies in parts parts.
func newInterner(hint, parts int) *interner {
	in := &interner{seed: maphash.MakeSeed(), parts: make([]internPart, parts)}
	for i := range in.parts {
		in.parts[i].m = make(map[string]*byte, hint/parts+1)
	}
	return in
}

// share returns e's table key and the stored copy of body: the one
// stored before for the same bytes, else a new one.
func (in *interner) share(body []byte, e *Entry) (string, []byte) {
	p := &in.parts[0]
	if len(in.parts) > 1 {
		p = &in.parts[maphash.Bytes(in.seed, body)%uint64(len(in.parts))]
	}
	p.Lock()
	s, ok := p.m[string(body)]
	if !ok {
		// A body first seen: one allocation for the key and the body
		// behind it, so that a lookup, which compares the key, has the
		// body in the same or the next cache line (a large table's
		// lookups are cache misses). Never written again, so the
		// string may share the bytes.
		kb := key(make([]byte, 0, len(e.Name)+3+len(body)), e.Name, e.Type, e.DO)
		n := len(kb)
		kb = append(kb, body...)
		body = kb[n:len(kb):len(kb)]
		p.m[unsafe.String(unsafe.SliceData(body), len(body))] = unsafe.SliceData(body) // the key shares them too
		p.Unlock()
		return unsafe.String(&kb[0], n), body
	}
	p.Unlock()
	return keyString(e.Name, e.Type, e.DO), unsafe.Slice(s, len(body))
}

// keyString is key as a string, in one allocation.
func keyString(name []byte, qtype uint16, do bool) string {
	k := key(make([]byte, 0, len(name)+3), name, qtype, do)
	return unsafe.String(unsafe.SliceData(k), len(k)) // never written again
}

// key is the table key: wire name, QTYPE, DO.
func key(dst, name []byte, qtype uint16, do bool) []byte {
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint16(dst, qtype)
	if do {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// Each calls fn for every entry of the table, as the package function Each
// lists them for the table's zone (in no particular order): a consumer that
// mirrors the table (the XDP maps) fills itself from the table without
// compiling the zone again. The *Entry is reused between calls and its
// bytes are the table's: fn copies what it keeps and writes none of it.
func (t *Table) Each(fn func(*Entry) error) error {
	var err error
	var e Entry // one for every call: fn copies what it keeps (an Entry each was 3M allocations)
	// The map's slots are walked in order, but each key's bytes (and the
	// body behind them) are somewhere in the heap: a cache miss an entry,
	// 0.8 s of a 1M-name zone's XDP load taken one after the other. So
	// the entries come in batches whose bytes are first touched all
	// together, letting the CPU wait for many misses at once.
	var batch [eachBatch]struct {
		k string
		v val
	}
	n := 0
	flush := func() bool {
		var sink byte
		for i := range batch[:n] {
			sink += batch[i].k[0]
			if b := batch[i].v.body; b != nil {
				sink += *b
			}
		}
		touched.Add(uint32(sink)) // once a batch: no race between tables
		for i := range batch[:n] {
			if err = t.emit(&e, batch[i].k, batch[i].v, fn); err != nil {
				return false
			}
		}
		n = 0
		return true
	}
	t.entries.Range(func(k string, v val) bool {
		batch[n].k, batch[n].v = k, v
		if n++; n < len(batch) {
			return true
		}
		return flush()
	})
	if err == nil {
		flush()
	}
	return err
}

// eachBatch is how many entries Each touches before it lists them.
const eachBatch = 64

// touched keeps the loads of Each's batches (a sum never read), which the
// compiler would drop if their values went nowhere.
var touched atomic.Uint32

// emit lists the entry of key k and value v through fn, in e.
func (t *Table) emit(e *Entry, k string, v val, fn func(*Entry) error) error {
	// The key's own bytes, not a copy: fn must not write the name,
	// as for any Entry.
	qkey := unsafe.Slice(unsafe.StringData(k), len(k)-1)
	do := k[len(k)-1] == 1
	b := t.bodyOf(v, len(qkey)-2) // v in hand: no second lookup
	*e = Entry{
		Name:             qkey[:len(qkey)-2],
		Type:             binary.BigEndian.Uint16(qkey[len(qkey)-2:]),
		DO:               do,
		Kind:             v.answer,
		Body:             b,
		Negative:         v.kind != valBody,
		NXD:              v.marks&markNXD != 0,
		Wild:             v.marks&markWild != 0,
		WildSafe:         v.marks&markWildSafe != 0,
		Referral:         v.marks&markReferral != 0,
		WildNoData:       v.marks&markWildNoData != 0,
		WildExcept:       v.except(),
		WildNoDataSigned: v.marks&markWildNoDataSigned != 0,
	}
	return fn(e)
}

// Len is the number of entries.
func (t *Table) Len() int { return t.entries.Len() }

// Lookup returns the compiled body for a query key (lowercased wire QNAME
// followed by QTYPE, as wire.Query.Key); false when the engine must answer.
func (t *Table) Lookup(qkey []byte, do bool) (wire.Body, bool) {
	do = do && t.signed
	var buf [wire.MaxNameLen + 3]byte
	k := append(buf[:0], qkey...)
	k = append(k, 0)
	if do {
		k[len(k)-1] = 1
	}
	v, ok := t.entries.GetBytes(k)
	if !ok {
		qtype := binary.BigEndian.Uint16(qkey[len(qkey)-2:])
		k[len(k)-3], k[len(k)-2] = 0, 0
		v, ok = t.entries.GetBytes(k)
		switch {
		case !ok && NXDable(qtype):
			return t.nxdomain(k, do, qtype) // the name does not exist
		case !ok || !Defaultable(qtype):
			return wire.Body{}, false
		}
	}
	return t.bodyOf(v, len(qkey)-2), true
}

// bodyOf is the body of a value found for a QNAME of wire length nameLen.
func (t *Table) bodyOf(v val, nameLen int) wire.Body {
	switch v.kind {
	case valNeg:
		return t.neg[nameLen]
	case valSignedNeg:
		b := t.neg[nameLen+SignedKey]
		b.Ns += v.ns
		b.Tail, b.TailNs = v.bytes(), v.ns
		return b
	}
	return v.wireBody()
}

// NXDable reports whether a query of this QTYPE for a name that does not
// exist may get the zone's NXDOMAIN body: any type but OPT and the meta
// types (128-255), which the responder and XDP handle before.
func NXDable(qtype uint16) bool {
	return qtype != dns.TypeOPT && (qtype < 128 || qtype > 255)
}

// nxdomain answers for a name without a default entry (k: its table key
// with QTYPE 0): the longest suffix with a default entry is the closest
// encloser, and its NXD flag says whether the name gets the zone's
// NXDOMAIN body. Signed answers (DO=1) need proofs: the flag on the DO=1
// entry says they are composed (nsec3NXD, nsecNXD), else never.
//
// When the closest encloser says Wild, the answer is the entry of its
// wildcard for qtype, if that says WildSafe (the same for every name it
// synthesises), as XDP answers it; else the engine answers.
func (t *Table) nxdomain(k []byte, do bool, qtype uint16) (wire.Body, bool) {
	name := k[:len(k)-3]
	for prev, off := 0, int(name[0])+1; off < len(name); prev, off = off, off+int(name[off])+1 {
		if v, ok := t.entries.GetBytes(k[off:]); ok {
			if v.marks&markWild != 0 && off >= 2 {
				return t.wildcard(name, off, qtype, do)
			}
			if !do && v.marks&markNXD != 0 {
				return t.neg[NXDKey], true
			}
			if do && v.marks&markNXD != 0 && t.nsec3 != nil {
				// Signed, NSEC3: head and proof pieces (nsec3nxd.go).
				return t.nsec3NXD(name, off, prev)
			}
			if do && v.marks&markNXD != 0 {
				// Signed, NSEC: head and proof pieces (nsecnxd.go).
				return t.nsecNXD(name, off)
			}
			if v.marks&markReferral != 0 && v.kind == valBody {
				// Below a cut: its referral, pointers moved by the
				// labels in front (Entry.Referral).
				b := v.wireBody()
				b.Shift = uint16(off)
				return b, true
			}
			break
		}
	}
	return wire.Body{}, false
}

// wildcard returns the body of the wildcard below the encloser at offset
// ce of the QNAME name (lowercased wire form), for qtype, when it is
// WildSafe; with DO, followed by the proof for the QNAME (wildproof.go).
func (t *Table) wildcard(name []byte, ce int, qtype uint16, do bool) (wire.Body, bool) {
	var buf [wire.MaxNameLen + 5]byte
	k := key(append(buf[:0], 1, '*'), name[ce:], qtype, do)
	v, ok := t.entries.GetBytes(k)
	if !ok && Defaultable(qtype) && do && t.signed {
		// Signed: the NXDOMAIN's head and pieces (WildNoDataSigned).
		k[len(k)-3], k[len(k)-2] = 0, 0
		if v, ok = t.entries.GetBytes(k); ok && v.marks&markWildNoDataSigned != 0 {
			if head, ok := t.neg[NXD3Key]; ok {
				return composeWildNoData(t.nsec, t.nsec3, t.pieces, head, name, ce)
			}
		}
		return wire.Body{}, false
	}
	if !ok && Defaultable(qtype) {
		// A type it has no entry of: its NODATA, moved (WildNoData).
		k[len(k)-3], k[len(k)-2] = 0, 0
		if v, ok = t.entries.GetBytes(k); ok && v.kind == valBody && v.marks&markWildNoData != 0 {
			if w, ex := LabelWord(name[nextCloser(name, ce):]), v.except(); w == ex[0] || w == ex[1] {
				return wire.Body{}, false
			}
			b := v.wireBody()
			b.Shift = uint16(ce - 2)
			return b, true
		}
		return wire.Body{}, false
	}
	if !ok || v.kind != valBody || v.marks&markWildSafe == 0 {
		return wire.Body{}, false
	}
	if !do || !t.signed {
		return v.wireBody(), true
	}
	z := t.nsec
	if z == nil {
		z = t.nsec3
	}
	if z == nil {
		return wire.Body{}, false
	}
	return withWildProof(z, t.pieces, v.wireBody(), name, ce)
}

// nextCloser is the offset of the next closer name in name (lowercased
// wire form) whose closest encloser starts at ce: the label just before.
func nextCloser(name []byte, ce int) int {
	nc := 0
	for nc+int(name[nc])+1 < ce {
		nc += int(name[nc]) + 1
	}
	return nc
}

func mustWire(name string) []byte {
	w, _ := wireName(name)
	return w
}
