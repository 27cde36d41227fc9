// Package zone holds the in-memory model of one authoritative zone: an
// immutable snapshot of canonical names, RRsets by type and node flags that
// are computed once at build time, so the answer engine never has to
// rediscover structure (cuts, wildcards, empty non-terminals) per query.
//
// A *Zone is never modified after New returns. Updates build a new *Zone and
// swap a pointer, so readers never lock against writers.
package zone

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/shardmap"
)

// Flags describe a node's place in the zone tree. They are computed once in
// New; the engine reads them instead of walking the tree per query.
type Flags uint8

const (
	// Apex is the zone's origin node.
	Apex Flags = 1 << iota
	// Delegation marks a zone cut: an NS RRset at a name other than the apex.
	Delegation
	// BelowCut marks a name strictly below a zone cut: glue or occluded data
	// that is never answered authoritatively.
	BelowCut
	// Wildcard marks a name whose leftmost label is "*".
	Wildcard
	// EmptyNonTerminal marks a name with no RRsets that exists because names
	// below it do (RFC 4592 §2.2.2).
	EmptyNonTerminal
	// HasDNAME marks a node that owns a DNAME RRset.
	HasDNAME
)

// RRset is all records of one type at one name, with the RRSIGs that cover
// them. Nodes store RRsets in wire form; Get builds this view on demand.
type RRset struct {
	Type uint16
	RRs  []dns.RR
	Sigs []dns.RR
}

// Node is one owner name. Its RRsets are kept as one byte slice in wire form
// (see encodeSets) rather than as miekg/dns records: a record object costs
// several times its wire size, and only the engine's slow path and the
// compiler need records, which Get builds when asked.
type Node struct {
	Name  string // canonical: lowercase, fully qualified
	Flags Flags
	kids  uint32 // child nodes: a node without data or kids is removed
	data  []byte
}

// Types returns every type an RRset of the zone's tree has (as Node.Types
// gives them, NSEC3 owners aside), sorted, when the zone knows them: a
// zone from New or FromStored does; false for one from Apply. The slice
// is the zone's: do not write it.
func (z *Zone) Types() ([]uint16, bool) { return z.types, z.types != nil }

// Leaf reports whether the node has no child nodes: no name below it
// exists, empty non-terminals included.
func (n *Node) Leaf() bool { return n.kids == 0 }

// Has reports whether f is set on the node.
func (n *Node) Has(f Flags) bool { return n != nil && n.Flags&f != 0 }

// Zone is one immutable zone snapshot.
type Zone struct {
	Origin string // canonical
	SOA    *dns.SOA

	nodes *shardmap.Map[*Node] // copied on write by Apply
	order *nameOrder           // canonical order, built when first asked

	// Signed is true when the zone carries DNSKEY at the apex: answers to
	// DO=1 queries then include RRSIGs and denial proofs.
	Signed bool
	// NSEC3 is the apex NSEC3PARAM when the zone is denied with NSEC3.
	NSEC3    *dns.NSEC3PARAM
	nsec     []string     // owners with an NSEC RRset, canonical order
	nsecKeys [][]byte     // their SortKeys
	n3       []nsec3Entry // NSEC3 owners sorted by hash

	// types is every type an RRset of the tree has (not the NSEC3 chain),
	// sorted; nil when not known (Apply does not keep it).
	types []uint16

	negSOA     dns.RR   // SOA with the negative-caching TTL
	negSOASigs []dns.RR // its RRSIGs with the same TTL

	// id names this version; base and delta say which version Apply made it
	// from and what changed, so compiled answers can be updated, not redone.
	// An id, not a pointer: old versions must be free to go.
	id, base uint64
	delta    *Delta
}

var versions atomic.Uint64

// DeltaFrom returns what changed between prev and z when z was made from
// prev by Apply, or nil (then everything must be assumed changed).
func (z *Zone) DeltaFrom(prev *Zone) *Delta {
	if prev == nil || z.delta == nil || z.base != prev.id {
		return nil
	}
	return z.delta
}

// NegativeSOA returns the SOA for the authority section of negative answers,
// with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3), and its RRSIGs.
func (z *Zone) NegativeSOA() (dns.RR, []dns.RR) { return z.negSOA, z.negSOASigs }

// nameOrder is the canonical order of a zone's names, computed once on first
// use: only AXFR order and tests need it, and Apply would otherwise have to
// maintain it per change.
type nameOrder struct {
	once  sync.Once
	names []string
	// The record count: counted by index for a zone it builds, else
	// when first asked (a count walks every node: two seconds of CPU on a
	// 1M-name zone when done twice).
	countOnce sync.Once
	count     int
}

type nsec3Entry struct {
	hash string // lowercase base32hex first label
	node *Node
}

// Sentinel errors for callers that test the kind of failure.
var (
	ErrNoSOA        = errors.New("zone has no SOA at the apex")
	ErrDuplicateSOA = errors.New("duplicate SOA")
	ErrOutOfZone    = errors.New("record outside the zone")
	ErrCNAMEAndData = errors.New("CNAME beside other data")
	ErrNoApexNS     = errors.New("zone has no NS at the apex")
)

// RRError ties a validation error to the record that caused it. Pos is filled
// by the file loader ("file:line"); it is empty for transferred zones.
type RRError struct {
	Pos string
	RR  dns.RR
	Err error
}

func (e *RRError) Error() string {
	s := e.Err.Error()
	if e.RR != nil {
		s = fmt.Sprintf("%s: %s", s, strings.ReplaceAll(e.RR.String(), "\t", " "))
	}
	if e.Pos != "" {
		s = e.Pos + ": " + s
	}
	return s
}

func (e *RRError) Unwrap() error { return e.Err }

// Warning is a problem New tolerated: the record was dropped.
type Warning = RRError

// Options tune New.
type Options struct {
	// RequireNS makes a missing apex NS an error (transfers validate this;
	// hand-written test zones may omit it).
	RequireNS bool
}

// New builds a validated zone from records. It takes ownership of rrs (owner
// names are canonicalised in place). Errors about rrs[i] carry pos(i) when pos
// is non-nil (the file loader maps it to file:line). An out-of-zone address
// record that an NS in the zone points at is dropped with a warning (glue
// copied from a parent); any other out-of-zone record is an error.
func New(origin string, rrs []dns.RR, opt Options, pos func(i int) string) (*Zone, []Warning, error) {
	bl := newBuilder(origin, rrs, len(rrs), pos)
	for i, rr := range rrs {
		if err := bl.add(i, rr); err != nil {
			return nil, bl.warns, err
		}
	}
	return bl.finish(rrs, opt)
}

// builder is New's state: the zone so far and its names' records.
type builder struct {
	origin string
	where  func(i int) string
	z      *Zone
	// One map while building: each name's node and its RRsets, found by a
	// scan of the few types a name has. (Four maps in turn made a million
	// records take seconds more, most of it map lookups missing the cache.)
	nodes     map[string]*building
	nsTargets map[string]bool
	warns     []Warning
	soaSeen   bool
	slab      buildSlab
	last      *building // node's last answer, and its name
	lastName  string
	// addAddr's last owner as given, and canonical (in the zone).
	lastOwner, lastCanon string
}

// newBuilder starts a zone of about n records; the NS records among rrs
// say which out-of-zone addresses are glue.
func newBuilder(origin string, rrs []dns.RR, n int, pos func(i int) string) *builder {
	origin = dns.CanonicalName(origin)
	bl := &builder{
		origin: origin,
		where: func(i int) string {
			if pos == nil {
				return ""
			}
			return pos(i)
		},
		z:         &Zone{Origin: origin, order: &nameOrder{}, id: versions.Add(1)},
		nodes:     make(map[string]*building, n/2+1),
		nsTargets: map[string]bool{},
		slab:      buildSlab{chunk: min(slabChunk, n+1)},
	}
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			bl.nsTargets[dns.CanonicalName(ns.Ns)] = true
		}
	}
	return bl
}

// add takes rrs[i].
func (bl *builder) add(i int, rr dns.RR) error {
	origin, where := bl.origin, bl.where
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	if h.Class != dns.ClassINET {
		return &RRError{where(i), rr, fmt.Errorf("class %s not supported", dns.ClassToString[h.Class])}
	}
	if !under(origin, h.Name) {
		// Glue for an in-zone NS that sits outside the zone is common in
		// zone files copied from parents; it is never served, so drop it.
		if (h.Rrtype == dns.TypeA || h.Rrtype == dns.TypeAAAA) && bl.nsTargets[h.Name] {
			bl.warns = append(bl.warns, Warning{where(i), rr, fmt.Errorf("%w (ignored glue)", ErrOutOfZone)})
			return nil
		}
		return &RRError{where(i), rr, ErrOutOfZone}
	}
	switch h.Rrtype {
	case dns.TypeSOA:
		if h.Name != origin {
			return &RRError{where(i), rr, fmt.Errorf("SOA not at the apex %s", origin)}
		}
		if bl.soaSeen {
			return &RRError{where(i), rr, ErrDuplicateSOA}
		}
		bl.soaSeen = true
		bl.z.SOA = rr.(*dns.SOA)
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY:
		return &RRError{where(i), rr, fmt.Errorf("meta type %s in zone data", dns.TypeToString[h.Rrtype])}
	}
	t := h.Rrtype
	if sig, ok := rr.(*dns.RRSIG); ok {
		t = sig.TypeCovered
	}
	s := bl.node(h.Name).set(t)
	if h.Rrtype == dns.TypeRRSIG {
		s.Sigs = append(s.Sigs, rr)
		return nil
	}
	if dup(s.RRs, rr) {
		return nil // RFC 2181 §5: an RRset holds no duplicates
	}
	if s.RRs == nil {
		s.RRs = bl.slab.one(rr)
	} else {
		s.RRs = append(s.RRs, rr)
	}
	return nil
}

// node is the building of canonical name, added when new.
func (bl *builder) node(name string) *building {
	if name == bl.lastName && bl.last != nil {
		return bl.last // a name's records are usually on lines together
	}
	b := bl.nodes[name]
	if b == nil {
		b = bl.slab.building(name)
		bl.nodes[name] = b
	}
	bl.last, bl.lastName = b, name
	return b
}

// addrNode is node for addAddr, without the map for a name new to it: a
// million addresses' names put in a Go map were a cache miss each, 0.95 s
// of loading a 1M-name file. Its names come after every other record's
// (newFast), so a name already in the map has records of the slow kind
// and is found there (the map then holds a handful); one that is not gets
// a building of its own per run of its lines, and finish merges runs of
// one name (mergeRuns), which files grouped by owner never have.
func (bl *builder) addrNode(name string) *building {
	if name == bl.lastName && bl.last != nil {
		return bl.last
	}
	b := bl.nodes[name]
	if b == nil {
		b = bl.slab.building(name)
	}
	bl.last, bl.lastName = b, name
	return b
}

// addAddr takes an A or AAAA record in stored form (rdata: the address);
// false when only add can: an owner outside the zone (maybe glue).
func (bl *builder) addAddr(owner string, t uint16, ttl uint32, rdata []byte) bool {
	// A name's lines are usually together, and fastParse hands them the
	// same owner string: canonicalised once, not per record.
	name := bl.lastCanon
	if owner != bl.lastOwner || name == "" {
		name = dns.CanonicalName(owner)
		if !under(bl.origin, name) {
			return false
		}
		bl.lastOwner, bl.lastCanon = owner, name
	}
	b := bl.addrNode(name)
	r := &b.addr[0]
	if t == dns.TypeAAAA {
		r = &b.addr[1]
	}
	var room []byte
	if r.n == 0 {
		room = bl.slab.bytes(2 + len(rdata))
	}
	return r.add(t, ttl, rdata, room)
}

// finish checks and encodes what add gathered; rrs are the records given
// to add (errors name their positions).
func (bl *builder) finish(rrs []dns.RR, opt Options) (*Zone, []Warning, error) {
	z, origin, nodes, where, warns := bl.z, bl.origin, bl.nodes, bl.where, bl.warns
	if !bl.soaSeen {
		return nil, warns, ErrNoSOA
	}
	// One pass over the buildings in the order they were made (the slab's:
	// memory read in sequence, where ranging over the map missed the cache
	// at every node, five times over).
	var n3 []*building
	n := 0
	for _, chunk := range bl.slab.all {
		n += len(chunk) // addAddr's names are not all in nodes
	}
	all := make([]*building, 0, n)
	for _, chunk := range bl.slab.all {
		for i := range chunk {
			if b := &chunk[i]; bl.nsec3Split(b, &n3) {
				all = append(all, b)
			}
		}
	}
	// The zone's node map, made here, before the nodes are encoded: a
	// name in it twice is addAddr's runs of one name, merged first.
	list := nodesOf(all)
	nm, ok := nodeMap(list)
	if !ok {
		if all, ok = mergeRuns(all); !ok {
			return nil, warns, errTooMany
		}
		list = nodesOf(all)
		if nm, ok = nodeMap(list); !ok {
			return nil, warns, errNameTwice
		}
	}
	if err := checkCNAMEs(origin, nodes, all, rrs, where); err != nil {
		return nil, warns, err
	}
	for _, list := range [][]*building{n3, all} {
		if err := encodeAll(list); err != nil {
			var re *RRError
			if errors.As(err, &re) && re.RR != nil && re.Pos == "" {
				if i := indexOf(rrs, re.RR); i >= 0 { // only on error: a linear search
					re.Pos = where(i)
				}
			}
			return nil, warns, err
		}
	}
	if err := z.indexIn(nm, list, opt); err != nil {
		return nil, warns, err
	}
	return z, warns, nil
}

func nodesOf(all []*building) []*Node {
	list := make([]*Node, len(all))
	for i, b := range all {
		list[i] = b.node
	}
	return list
}

// errNameTwice: a node map was given one name twice.
var errNameTwice = errors.New("a name given twice")

// errTooMany: merged runs of a name hold more records than an RRset may.
var errTooMany = errors.New("more than 65535 records in an RRset")

// mergeRuns merges the buildings of a name made by addrNode for its
// separate runs of lines into its first, in file order (as the map would
// have gathered them), and leaves the others out; false when a set
// overflows. Only address sets are in such buildings.
func mergeRuns(all []*building) ([]*building, bool) {
	first := make(map[string]*building, len(all))
	out := all[:0] // written behind the reads
	for _, b := range all {
		f := first[b.node.Name]
		if f == nil {
			first[b.node.Name] = b
			out = append(out, b)
			continue
		}
		if len(b.sets) > 0 {
			return nil, false // never: a name with other records is in the map
		}
		for k := range b.addr {
			src, dst := &b.addr[k], &f.addr[k]
			switch {
			case src.n == 0:
			case dst.n == 0:
				*dst = *src
			default:
				for p := 0; p < len(src.rd); {
					l := int(binary.BigEndian.Uint16(src.rd[p:]))
					if !dst.add(src.typ, src.ttl, src.rd[p+2:p+2+l], nil) {
						return nil, false
					}
					p += 2 + l
				}
			}
		}
	}
	return out, true
}

// nsec3Split normalises b's TTLs and type order, and moves an NSEC3 RRset
// into a building of its own, added to n3; false when b is left empty
// (then no longer in bl.nodes).
func (bl *builder) nsec3Split(b *building, n3 *[]*building) bool {
	for i := range b.sets {
		// RFC 2181 §5.2: all RRs of an RRset share one TTL; the lowest.
		normaliseTTL(b.sets[i].RRs)
	}
	if len(b.sets) > 1 {
		slices.SortFunc(b.sets, func(x, y RRset) int { return cmp.Compare(x.Type, y.Type) })
	}
	// NSEC3 owners are not names of the zone's tree: queries for them are
	// answered as if they did not exist (RFC 5155 §7.2.8), and they must not
	// create empty non-terminals. Keep them aside, sorted by hash.
	// The NSEC3 RRset is split off even when its owner also holds ordinary
	// data: RFC 5155 Appendix A has 2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.
	// with an A RRset beside the NSEC3 of ns1.example.
	name := b.node.Name
	if len(b.sets) == 0 || name == bl.origin || Parent(name) != bl.origin {
		return true // NSEC3 owners are one label below the apex
	}
	i := slices.IndexFunc(b.sets, func(s RRset) bool { return s.Type == dns.TypeNSEC3 })
	if i < 0 {
		return true
	}
	if len(b.sets[i].RRs) > 0 {
		h, _, _ := strings.Cut(name, ".")
		nb := &building{node: &Node{Name: name}, sets: []RRset{b.sets[i]}}
		*n3 = append(*n3, nb)
		bl.z.n3 = append(bl.z.n3, nsec3Entry{hash: h, node: nb.node})
	}
	// Else an RRSIG over an NSEC3 that is not there: no link of the chain
	// (every search expects an NSEC3), and no name of the tree either.
	// Apply drops the same.
	b.sets = slices.Delete(b.sets, i, i+1)
	if b.empty() {
		delete(bl.nodes, name)
		return false
	}
	return true
}

// checkCNAMEs enforces that a CNAME shares its name only with DNSSEC records
// (RFC 1034 §3.6.2, RFC 4035 §2.5), except below a zone cut or DNAME where
// data is occluded and never served.
func checkCNAMEs(origin string, nodes map[string]*building, all []*building, rrs []dns.RR, where func(int) string) error {
	occluded := func(name string) bool {
		for p := Parent(name); p != origin && under(origin, p); p = Parent(p) {
			if b := nodes[p]; b != nil && (b.get(dns.TypeNS) != nil || b.get(dns.TypeDNAME) != nil) {
				return true
			}
		}
		return false
	}
	for _, b := range all {
		c := b.get(dns.TypeCNAME)
		if c == nil || occluded(b.node.Name) {
			continue
		}
		if b.addr[0].n > 0 || b.addr[1].n > 0 {
			return errSlowPath // New names the lines
		}
		for _, s := range b.sets {
			switch s.Type {
			case dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC:
			default:
				if len(s.RRs) > 0 {
					// Name the later of the two lines: that is the one a
					// person just added, usually.
					bad := c.RRs[0]
					if indexOf(rrs, s.RRs[0]) > indexOf(rrs, bad) {
						bad = s.RRs[0]
					}
					return &RRError{where(indexOf(rrs, bad)), bad, ErrCNAMEAndData}
				}
			}
		}
		if len(c.RRs) > 1 {
			return &RRError{where(indexOf(rrs, c.RRs[1])), c.RRs[1], errors.New("more than one CNAME at a name")}
		}
	}
	return nil
}

// buildSlab hands out what New gathers records in from chunks: one
// allocation per thousand names instead of three per name (the building,
// its sets, the first record's slice). All of it is garbage once New
// returns, so nothing long-lived shares a chunk.
type buildSlab struct {
	// chunk: entries per chunk, at most the zone's record count, so a
	// zone of 100 names does not clear 1,024 of each (10,000 small zones
	// spent a second in memclr).
	chunk int
	b     []building
	all   [][]building // every chunk of b, in order
	sets  []RRset
	rrs   []dns.RR
	raw   []byte
}

// bytes returns an empty slice with room for n bytes and no more (an
// append beyond moves out).
func (sl *buildSlab) bytes(n int) []byte {
	if n > cap(sl.raw)-len(sl.raw) {
		sl.raw = make([]byte, 0, max(n, 20*sl.chunk))
	}
	l := len(sl.raw)
	sl.raw = sl.raw[:l+n]
	return sl.raw[l : l : l+n]
}

const slabChunk = 1024

func (sl *buildSlab) building(name string) *building {
	if len(sl.b) == cap(sl.b) {
		sl.b = make([]building, 0, sl.chunk)
		sl.all = append(sl.all, nil)
	}
	if len(sl.sets)+2 > cap(sl.sets) {
		sl.sets = make([]RRset, 0, 2*sl.chunk)
	}
	sl.b = append(sl.b, building{node: &Node{Name: name}})
	sl.all[len(sl.all)-1] = sl.b
	b := &sl.b[len(sl.b)-1]
	// Room for two sets (a name's A and AAAA, or a set and its NSEC);
	// more move out on append, as any slice's do.
	b.sets = sl.sets[len(sl.sets) : len(sl.sets) : len(sl.sets)+2]
	sl.sets = sl.sets[:len(sl.sets)+2]
	return b
}

// one returns a slice holding rr, with room for just it: most RRsets have
// one record.
func (sl *buildSlab) one(rr dns.RR) []dns.RR {
	if len(sl.rrs) == cap(sl.rrs) {
		sl.rrs = make([]dns.RR, 0, 2*sl.chunk)
	}
	sl.rrs = append(sl.rrs, rr)
	n := len(sl.rrs)
	return sl.rrs[n-1 : n : n]
}

// building is a node while New gathers its records.
type building struct {
	node *Node
	sets []RRset
	// addr holds the A and AAAA records fastParse read, already in
	// stored form (newFast): no dns.RR for most records of a big zone.
	addr [2]rawSet
}

func (b *building) empty() bool { return len(b.sets) == 0 && b.addr[0].n == 0 && b.addr[1].n == 0 }

func (b *building) get(t uint16) *RRset {
	for i := range b.sets {
		if b.sets[i].Type == t {
			return &b.sets[i]
		}
	}
	return nil
}

// set returns the RRset of type t, adding an empty one when missing.
func (b *building) set(t uint16) *RRset {
	if s := b.get(t); s != nil {
		return s
	}
	b.sets = append(b.sets, RRset{Type: t})
	return &b.sets[len(b.sets)-1]
}

func indexOf(rrs []dns.RR, rr dns.RR) int {
	for i := range rrs {
		if rrs[i] == rr {
			return i
		}
	}
	return -1
}

func dup(set []dns.RR, rr dns.RR) bool {
	for _, r := range set {
		if dns.IsDuplicate(r, rr) {
			return true
		}
	}
	return false
}

func normaliseTTL(rrs []dns.RR) {
	if len(rrs) < 2 {
		return
	}
	min := rrs[0].Header().Ttl
	for _, r := range rrs[1:] {
		if r.Header().Ttl < min {
			min = r.Header().Ttl
		}
	}
	for _, r := range rrs {
		r.Header().Ttl = min
	}
}

// index computes node flags, empty non-terminals, child counts and the
// DNSSEC orderings, then freezes nodes into the zone's sharded map.
func (z *Zone) index(built []*Node, opt Options) error {
	b, ok := nodeMap(built)
	if !ok {
		return errNameTwice // only FromStored can
	}
	return z.indexIn(b, built, opt)
}

// nodeMap puts built into a new sharded map of nodes; false when a name
// is there twice.
func nodeMap(built []*Node) (*shardmap.Editor[*Node], bool) {
	b := shardmap.Builder[*Node](len(built) + len(built)/8)
	for _, n := range built {
		b.Set(n.Name, n)
	}
	return b, b.Map().Len() == len(built)
}

// indexIn is index with built already in b (nodeMap).
func (z *Zone) indexIn(b *shardmap.Editor[*Node], built []*Node, opt Options) error {
	// Nodes go straight into the zone's sharded map; empty non-terminals are
	// added for every ancestor of a name, up to the apex.
	get := func(name string) *Node {
		n, _ := b.Get(name)
		return n
	}
	for _, n := range built {
		name := n.Name
		for p := parent(name); p != "" && under(z.Origin, p) && p != name; p = parent(p) {
			if get(p) != nil {
				break // ancestors of an existing node were already added
			}
			b.Set(p, &Node{Name: p})
			if p == z.Origin {
				break
			}
		}
	}
	m := b.Map()
	// Flags and child counts, then what lies below a cut (which reads the
	// flags of ancestors): on every CPU for large zones, each worker on
	// its own shards. A node's flags are written by the worker that has the
	// node; its parent's child count is an atomic add.
	var mu sync.Mutex
	var cuts atomic.Bool // a zone of hosts has none: nothing is below a cut
	records := 0
	eachParallelBatch(m, func(name string, n *Node, local *indexLocal) {
		f, nsec := nodeInfo(z.Origin, n)
		n.Flags = f
		if f&(Delegation|HasDNAME) != 0 {
			cuts.Store(true)
		}
		if name != z.Origin {
			p, _ := m.Get(parent(name))
			atomic.AddUint32(&p.kids, 1)
		}
		if nsec {
			local.nsec = append(local.nsec, name)
		}
		n.each(func(s setAt) bool {
			if s.nrr > 0 && !slices.Contains(local.types, s.typ) {
				local.types = append(local.types, s.typ)
			}
			local.records += s.nrr + s.nsig
			return true
		})
	}, func(local *indexLocal) {
		mu.Lock()
		records += local.records
		z.nsec = append(z.nsec, local.nsec...)
		for _, t := range local.types {
			if !slices.Contains(z.types, t) {
				z.types = append(z.types, t)
			}
		}
		mu.Unlock()
	})
	slices.Sort(z.types)
	if z.types == nil {
		z.types = []uint16{}
	}
	// The record count, counted here on the way (RecordCount walked every
	// node again for it: 0.5 s of a 1M-name zone's load, before it served).
	for _, e := range z.n3 {
		records += e.node.records()
	}
	z.order.countOnce.Do(func() { z.order.count = records })
	var below []*Node
	if cuts.Load() {
		eachParallelBatch(m, func(name string, n *Node, local *indexLocal) {
			if belowCut(z.Origin, name, func(s string) *Node { p, _ := m.Get(s); return p }) {
				local.below = append(local.below, n)
			}
		}, func(local *indexLocal) {
			mu.Lock()
			below = append(below, local.below...)
			mu.Unlock()
		})
	}
	for _, n := range below {
		n.Flags |= BelowCut
	}
	sortCanonical(z.nsec)
	for _, name := range z.nsec {
		z.nsecKeys = append(z.nsecKeys, SortKey(nil, name))
	}
	sort.Slice(z.n3, func(i, j int) bool { return z.n3[i].hash < z.n3[j].hash })
	z.nodes = m
	if z.Node(z.Origin) == nil {
		return ErrNoSOA
	}
	return z.apexChanged(opt)
}

// apexChanged recomputes what the zone derives from its apex: SOA, the
// negative SOA, whether it is signed and how it denies existence.
func (z *Zone) apexChanged(opt Options) error {
	apex := z.Node(z.Origin)
	if opt.RequireNS && !apex.HasType(dns.TypeNS) {
		return ErrNoApexNS
	}
	soa := apex.Get(dns.TypeSOA)
	switch {
	case soa == nil || len(soa.RRs) == 0:
		return ErrNoSOA
	case len(soa.RRs) > 1:
		return ErrDuplicateSOA
	}
	z.SOA = soa.RRs[0].(*dns.SOA)
	z.Signed = apex.HasType(dns.TypeDNSKEY)
	ttl := min(z.SOA.Hdr.Ttl, z.SOA.Minttl)
	z.negSOA = dns.Copy(z.SOA)
	z.negSOA.Header().Ttl = ttl
	z.negSOASigs = nil
	for _, sig := range soa.Sigs {
		sig.Header().Ttl = ttl
		z.negSOASigs = append(z.negSOASigs, sig)
	}
	z.NSEC3 = nil
	if p := apex.Get(dns.TypeNSEC3PARAM); p != nil && len(p.RRs) > 0 {
		z.NSEC3 = p.RRs[0].(*dns.NSEC3PARAM)
	}
	return nil
}

// nodeFlags computes the flags a node has on its own (all but BelowCut).
func nodeFlags(origin string, n *Node) Flags {
	f, _ := nodeInfo(origin, n)
	return f
}

// nodeInfo is nodeFlags, and whether the node owns an NSEC, in one walk
// over its sets (a million-name zone walked each node once per type
// asked: a second of its load).
func nodeInfo(origin string, n *Node) (f Flags, nsec bool) {
	ns, dname := false, false
	n.each(func(s setAt) bool {
		switch {
		case s.nrr == 0:
		case s.typ == dns.TypeNS:
			ns = true
		case s.typ == dns.TypeDNAME:
			dname = true
		case s.typ == dns.TypeNSEC:
			nsec = true
		}
		return s.typ < dns.TypeNSEC
	})
	switch {
	case n.Name == origin:
		f |= Apex
	case ns:
		f |= Delegation
	}
	if strings.HasPrefix(n.Name, "*.") {
		f |= Wildcard
	}
	if len(n.data) == 0 {
		f |= EmptyNonTerminal
	}
	if dname {
		f |= HasDNAME
	}
	return f, nsec
}

// belowCut reports whether a zone cut or a DNAME owner (RFC 6672 §2.4: data
// below it is occluded) sits strictly between the apex and name.
func belowCut(origin, name string, get func(string) *Node) bool {
	if name == origin {
		return false
	}
	for p := parent(name); p != "" && under(origin, p); p = parent(p) {
		if n := get(p); n.Has(Delegation) || n.Has(HasDNAME) {
			return true
		}
		if p == origin {
			break
		}
	}
	return false
}

func parent(name string) string {
	if name == "." {
		return ""
	}
	i := 0
	for i < len(name) && name[i] != '.' { // skip one label, honouring escapes
		if name[i] == '\\' {
			i++
		}
		i++
	}
	if i+1 >= len(name) {
		return "."
	}
	return name[i+1:]
}

// under reports whether name is origin or below it, both canonical
// (lowercase, fully qualified): a suffix test, where dns.IsSubDomain splits
// both names into labels (a tenth of loading a large zone). Names with
// escapes take dns.IsSubDomain (an escaped dot is no label boundary).
func under(origin, name string) bool {
	if strings.IndexByte(name, '\\') >= 0 || strings.IndexByte(origin, '\\') >= 0 {
		return dns.IsSubDomain(origin, name)
	}
	switch {
	case origin == "." || name == origin:
		return true
	case len(name) <= len(origin):
		return false
	}
	return name[len(name)-len(origin)-1] == '.' && name[len(name)-len(origin):] == origin
}

// Parent returns the name with its leftmost label removed ("." for a TLD).
func Parent(name string) string { return parent(name) }

// Node returns the node at a canonical name, or nil.
func (z *Zone) Node(name string) *Node {
	n, _ := z.nodes.Get(name)
	return n
}

// Len is the number of nodes, empty non-terminals included.
func (z *Zone) Len() int { return z.nodes.Len() }

// Each calls fn for every node, in no particular order, until it returns
// false.
func (z *Zone) Each(fn func(*Node) bool) {
	z.nodes.Range(func(_ string, n *Node) bool { return fn(n) })
}

// Names returns every node name in canonical DNSSEC order, sorted on first
// use (a second or so for a million names). The slice is shared: do not
// modify it.
func (z *Zone) Names() []string {
	z.order.once.Do(func() {
		names := make([]string, 0, z.nodes.Len())
		z.Each(func(n *Node) bool {
			names = append(names, n.Name)
			return true
		})
		sortCanonical(names)
		z.order.names = names
	})
	return z.order.names
}

// Serial is the SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// RecordCount is the number of records, signatures included: what
// len(Records()) says, without building them or the canonical order.
func (z *Zone) RecordCount() int {
	z.order.countOnce.Do(func() {
		c := 0
		z.Each(func(n *Node) bool {
			c += n.records()
			return true
		})
		for _, e := range z.n3 {
			c += e.node.records()
		}
		z.order.count = c
	})
	return z.order.count
}

// Records returns every record in the zone, SOA first, in canonical name
// order: the order AXFR sends and the differential tests compare.
func (z *Zone) Records() []dns.RR {
	out := []dns.RR{z.SOA}
	add := func(n *Node) {
		for _, s := range n.Sets() {
			if s.Type != dns.TypeSOA {
				out = append(out, s.RRs...)
			}
			out = append(out, s.Sigs...)
		}
	}
	for _, name := range z.Names() {
		add(z.Node(name))
	}
	for _, e := range z.n3 { // the NSEC3 chain, in hash order
		add(e.node)
	}
	return out
}

// NSECCovering returns the NSEC node whose owner is the closest name at or
// before name in canonical order: it matches or covers name (RFC 4034 §4).
// Nil when the zone has no NSEC chain.
func (z *Zone) NSECCovering(name string) *Node {
	if len(z.nsec) == 0 {
		return nil
	}
	k := SortKey(nil, name)
	i := sort.Search(len(z.nsec), func(i int) bool { return bytes.Compare(z.nsecKeys[i], k) > 0 })
	if i == 0 {
		i = len(z.nsec) // wraps to the last NSEC, which covers names past the end
	}
	return z.Node(z.nsec[i-1])
}

// NSECBefore returns the NSEC node of the last owner that sorts before
// key (a SortKey), wrapping to the zone's last NSEC when none does: the
// NSEC covering every name between that owner and key. With subtree, it
// is the last owner at or below the name key is for: the NSEC covering
// the names after that subtree. compile's nsecnxd.go reads the NSEC for
// each gap between a name's children with it.
func (z *Zone) NSECBefore(key []byte, subtree bool) *Node {
	if len(z.nsec) == 0 {
		return nil
	}
	i := sort.Search(len(z.nsec), func(i int) bool {
		k := z.nsecKeys[i]
		if subtree {
			// Keys below the name start with its key: the subtree is
			// the run after it.
			return bytes.Compare(k, key) > 0 && !bytes.HasPrefix(k, key)
		}
		return bytes.Compare(k, key) >= 0
	})
	if i == 0 {
		i = len(z.nsec)
	}
	return z.Node(z.nsec[i-1])
}

// EachNSEC calls fn for every node with an NSEC RRset, in canonical
// order (the order NSECCovering searches).
func (z *Zone) EachNSEC(fn func(n *Node)) {
	for _, name := range z.nsec {
		if n := z.Node(name); n != nil {
			fn(n)
		}
	}
}

// NSEC3For returns the NSEC3 node that matches the hash of name (match=true)
// or covers it. Nil when the zone is not NSEC3-signed.
func (z *Zone) NSEC3For(name string) (n *Node, match bool) {
	if z.NSEC3 == nil || len(z.n3) == 0 {
		return nil, false
	}
	h := strings.ToLower(dns.HashName(name, z.NSEC3.Hash, z.NSEC3.Iterations, z.NSEC3.Salt))
	i := sort.Search(len(z.n3), func(i int) bool { return z.n3[i].hash >= h })
	if i < len(z.n3) && z.n3[i].hash == h {
		return z.n3[i].node, true
	}
	if i == 0 {
		i = len(z.n3) // covered by the last hash, which wraps around
	}
	return z.n3[i-1].node, false
}

// EachNSEC3 calls fn for every NSEC3 node of the zone in hash order
// (the order NSEC3For searches), with its owner name.
func (z *Zone) EachNSEC3(fn func(owner string, n *Node)) {
	for _, e := range z.n3 {
		fn(e.node.Name, e.node)
	}
}

// sortCanonical sorts names in canonical order, computing each key once.
func sortCanonical(names []string) {
	type kv struct {
		key  []byte
		name string
	}
	kvs := make([]kv, len(names))
	arena := make([]byte, 0, len(names)*24)
	for i, n := range names {
		start := len(arena)
		arena = SortKey(arena, n)
		kvs[i] = kv{arena[start:len(arena):len(arena)], n}
	}
	sort.Slice(kvs, func(i, j int) bool { return bytes.Compare(kvs[i].key, kvs[j].key) < 0 })
	for i := range kvs {
		names[i] = kvs[i].name
	}
}
