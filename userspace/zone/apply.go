package zone

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/shardmap"
)

// Errors of Apply: the change does not fit this version of the zone (RFC 1995
// §5: the histories diverged). Callers fall back to a full transfer.
var (
	ErrNotFound = errors.New("deleted record not in the zone")
	ErrExists   = errors.New("added record already in the zone")
)

// Delta says what an Apply changed, so that compiled answers can be redone
// for the affected names only.
type Delta struct {
	// Names whose node changed: data, flags, created or removed (empty
	// non-terminals and NSEC3 owners included).
	Names map[string]bool
	// Cuts are names where an NS, DS or DNAME RRset changed, appeared or went:
	// every answer at or below them may differ.
	Cuts []string
	// SOA is true when the SOA changed (it does on every IXFR).
	SOA bool
}

// Apply returns a new zone: z with deleted removed and added inserted (one
// IXFR difference sequence; the SOA is deleted and added like any record).
// z is not changed and keeps serving; the new zone shares every node and
// shard the change did not touch, so the cost is proportional to the change,
// not to the zone. Every deleted record must exist and no added one may
// (ErrNotFound, ErrExists); the result is validated as New validates.
func (z *Zone) Apply(deleted, added []dns.RR, opt Options) (*Zone, *Delta, error) {
	return z.ApplyDiffs([]Diff{{deleted, added}}, opt)
}

// Diff is one IXFR difference sequence.
type Diff struct{ Deleted, Added []dns.RR }

// ApplyDiffs applies differences in order (one IXFR carries several) and
// reports what changed over all of them.
func (z *Zone) ApplyDiffs(diffs []Diff, opt Options) (*Zone, *Delta, error) {
	cur, total := z, &Delta{Names: map[string]bool{}}
	for _, df := range diffs {
		next, d, err := cur.apply(df.Deleted, df.Added, opt)
		if err != nil {
			return nil, nil, err
		}
		for n := range d.Names {
			total.Names[n] = true
		}
		for _, c := range d.Cuts {
			total.Cuts = appendOnce(total.Cuts, c)
		}
		total.SOA = total.SOA || d.SOA
		cur = next
	}
	cur.id, cur.base, cur.delta = versions.Add(1), z.id, total
	return cur, total, nil
}

func (z *Zone) apply(deleted, added []dns.RR, opt Options) (*Zone, *Delta, error) {
	a := applier{
		z:  z,
		nz: &Zone{Origin: z.Origin, order: &nameOrder{}, nsec: z.nsec, nsecKeys: z.nsecKeys, n3: z.n3},
		ed: z.nodes.Edit(),
		d:  &Delta{Names: map[string]bool{}},
	}
	byName := map[string]*change{}
	var order []string
	for i, list := range [][]dns.RR{deleted, added} {
		for _, rr := range list {
			// A wire round trip gives the record the form stored records
			// are built in (dns.IsDuplicate compares some fields, such as
			// NSEC3's next hash, as text); it is also a private copy.
			rr, err := roundTrip(rr)
			if err != nil {
				return nil, nil, err
			}
			h := rr.Header()
			h.Name = dns.CanonicalName(h.Name)
			if err := a.check(rr); err != nil {
				return nil, nil, err
			}
			c := byName[h.Name]
			if c == nil {
				c = &change{}
				byName[h.Name] = c
				order = append(order, h.Name)
			}
			if i == 0 {
				c.del = append(c.del, rr)
			} else {
				c.add = append(c.add, rr)
			}
		}
	}
	for _, name := range order {
		if err := a.name(name, byName[name]); err != nil {
			return nil, nil, err
		}
	}
	if err := a.finish(opt); err != nil {
		return nil, nil, err
	}
	return a.nz, a.d, nil
}

type change struct{ del, add []dns.RR }

type applier struct {
	z, nz      *Zone
	ed         *shardmap.Editor[*Node]
	d          *Delta
	cutChanged []string // Delegation or DNAME appeared or went here
	nsecAdd    []string // names that gained an NSEC RRset
	nsecDel    []string // names that lost theirs
	n3Dirty    bool
}

func (a *applier) get(name string) *Node {
	n, _ := a.ed.Get(name)
	return n
}

func (a *applier) check(rr dns.RR) error {
	h := rr.Header()
	switch {
	case h.Class != dns.ClassINET:
		return &RRError{"", rr, fmt.Errorf("class %s not supported", dns.ClassToString[h.Class])}
	case !dns.IsSubDomain(a.z.Origin, h.Name):
		return &RRError{"", rr, ErrOutOfZone}
	case h.Rrtype == dns.TypeSOA && h.Name != a.z.Origin:
		return &RRError{"", rr, fmt.Errorf("SOA not at the apex %s", a.z.Origin)}
	}
	switch h.Rrtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY:
		return &RRError{"", rr, fmt.Errorf("meta type %s in zone data", dns.TypeToString[h.Rrtype])}
	}
	return nil
}

// covered is the type an RRset key uses for rr: RRSIGs go with what they sign.
func covered(rr dns.RR) uint16 {
	if sig, ok := rr.(*dns.RRSIG); ok {
		return sig.TypeCovered
	}
	return rr.Header().Rrtype
}

// editSets applies one name's deletions and additions to its RRsets.
func editSets(sets []RRset, c *change) ([]RRset, error) {
	find := func(t uint16) int {
		return slices.IndexFunc(sets, func(s RRset) bool { return s.Type == t })
	}
	for _, rr := range c.del {
		i := find(covered(rr))
		if i < 0 {
			return nil, &RRError{"", rr, ErrNotFound}
		}
		list := &sets[i].RRs
		if rr.Header().Rrtype == dns.TypeRRSIG {
			list = &sets[i].Sigs
		}
		j := slices.IndexFunc(*list, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) })
		if j < 0 {
			return nil, &RRError{"", rr, ErrNotFound}
		}
		*list = slices.Delete(*list, j, j+1)
	}
	for _, rr := range c.add {
		t := covered(rr)
		i := find(t)
		if i < 0 {
			sets = append(sets, RRset{Type: t})
			i = len(sets) - 1
		}
		list := &sets[i].RRs
		if rr.Header().Rrtype == dns.TypeRRSIG {
			list = &sets[i].Sigs
		}
		if slices.ContainsFunc(*list, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) }) {
			return nil, &RRError{"", rr, ErrExists}
		}
		*list = append(*list, rr)
	}
	sets = slices.DeleteFunc(sets, func(s RRset) bool { return len(s.RRs) == 0 && len(s.Sigs) == 0 })
	for i := range sets {
		normaliseTTL(sets[i].RRs)
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Type < sets[j].Type })
	return sets, nil
}

// splitNSEC3 separates the part of a change that belongs to the NSEC3 chain.
func splitNSEC3(c *change) (n3, rest *change) {
	n3, rest = &change{}, &change{}
	for _, rr := range c.del {
		if covered(rr) == dns.TypeNSEC3 {
			n3.del = append(n3.del, rr)
		} else {
			rest.del = append(rest.del, rr)
		}
	}
	for _, rr := range c.add {
		if covered(rr) == dns.TypeNSEC3 {
			n3.add = append(n3.add, rr)
		} else {
			rest.add = append(rest.add, rr)
		}
	}
	return n3, rest
}

func (a *applier) name(name string, c *change) error {
	origin := a.z.Origin
	if name != origin && Parent(name) == origin {
		n3, rest := splitNSEC3(c)
		if len(n3.del)+len(n3.add) > 0 {
			if err := a.nsec3(name, n3); err != nil {
				return err
			}
		}
		c = rest
		if len(c.del)+len(c.add) == 0 {
			return nil
		}
	}
	old := a.get(name)
	sets, err := editSets(old.Sets(), c)
	if err != nil {
		return err
	}
	for _, rr := range append(c.del, c.add...) {
		switch covered(rr) {
		case dns.TypeSOA:
			a.d.SOA = true
		case dns.TypeNS, dns.TypeDS, dns.TypeDNAME:
			if name != origin || covered(rr) == dns.TypeDNAME {
				a.d.Cuts = appendOnce(a.d.Cuts, name)
			}
		}
	}
	n := &Node{Name: name}
	if old != nil {
		n.kids = old.kids
	}
	if n.data, _, err = encodeSets(sets, nil); err != nil {
		return err
	}
	if len(n.data) == 0 {
		n.data = nil
	}
	n.Flags = nodeFlags(origin, n)
	if belowCut(origin, name, a.get) {
		n.Flags |= BelowCut
	}
	// A cut that appears or goes changes BelowCut under it (a walk in
	// finish). A new name without NS or DNAME is no cut: nothing is below it.
	const cutFlags = Delegation | HasDNAME
	var oldFlags Flags
	if old != nil {
		oldFlags = old.Flags
	}
	if oldFlags&cutFlags != n.Flags&cutFlags {
		a.cutChanged = append(a.cutChanged, name)
	}
	switch had, has := old.HasType(dns.TypeNSEC), n.HasType(dns.TypeNSEC); {
	case has && !had:
		a.nsecAdd = append(a.nsecAdd, name)
	case had && !has:
		a.nsecDel = append(a.nsecDel, name)
	}
	if err := checkNodeCNAME(n, sets, func(x string) bool { return belowCut(origin, x, a.get) }); err != nil {
		return err
	}
	a.d.Names[name] = true
	switch {
	case n.data == nil && n.kids == 0 && name != origin:
		if old != nil {
			a.remove(name)
		}
	case old == nil:
		a.ed.Set(name, n)
		a.addAncestors(name)
	default:
		a.ed.Set(name, n)
	}
	return nil
}

// checkNodeCNAME is New's CNAME rule for one node.
func checkNodeCNAME(n *Node, sets []RRset, occluded func(string) bool) error {
	i := slices.IndexFunc(sets, func(s RRset) bool { return s.Type == dns.TypeCNAME })
	if i < 0 || occluded(n.Name) {
		return nil
	}
	if len(sets[i].RRs) > 1 {
		return &RRError{"", sets[i].RRs[1], errors.New("more than one CNAME at a name")}
	}
	for _, s := range sets {
		switch s.Type {
		case dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC:
		default:
			if len(s.RRs) > 0 {
				return &RRError{"", s.RRs[0], ErrCNAMEAndData}
			}
		}
	}
	return nil
}

// remove deletes an empty leaf and then every empty non-terminal above it
// that has no child left.
func (a *applier) remove(name string) {
	a.ed.Delete(name)
	a.d.Names[name] = true
	for p := Parent(name); ; p = Parent(p) {
		pn := *a.get(p)
		pn.kids--
		a.d.Names[p] = true
		if pn.data == nil && pn.kids == 0 && p != a.z.Origin {
			a.ed.Delete(p)
			continue
		}
		pn.Flags = nodeFlags(a.z.Origin, &pn) | pn.Flags&BelowCut
		a.ed.Set(p, &pn)
		return
	}
}

// addAncestors counts a new node in its parent, creating empty non-terminals
// up to the first ancestor that exists.
func (a *applier) addAncestors(name string) {
	for p := Parent(name); ; p = Parent(p) {
		a.d.Names[p] = true
		if old := a.get(p); old != nil {
			pn := *old
			pn.kids++
			pn.Flags = nodeFlags(a.z.Origin, &pn) | pn.Flags&BelowCut
			a.ed.Set(p, &pn)
			return
		}
		pn := &Node{Name: p, kids: 1}
		pn.Flags = nodeFlags(a.z.Origin, pn)
		if belowCut(a.z.Origin, p, a.get) {
			pn.Flags |= BelowCut
		}
		a.ed.Set(p, pn)
	}
}

// nsec3 applies a change to one NSEC3 owner of the chain.
func (a *applier) nsec3(name string, c *change) error {
	h, _, _ := strings.Cut(name, ".")
	i := sort.Search(len(a.nz.n3), func(i int) bool { return a.nz.n3[i].hash >= h })
	var old *Node
	if i < len(a.nz.n3) && a.nz.n3[i].hash == h {
		old = a.nz.n3[i].node
	}
	sets, err := editSets(old.Sets(), c)
	if err != nil {
		return err
	}
	n := &Node{Name: name}
	if n.data, _, err = encodeSets(sets, nil); err != nil {
		return err
	}
	if !slices.ContainsFunc(sets, func(s RRset) bool { return s.Type == dns.TypeNSEC3 && len(s.RRs) > 0 }) {
		// Only RRSIGs left (an IXFR deleted the NSEC3 and not its
		// signature): not a link of the chain, which every search
		// expects to hold an NSEC3.
		n.data = nil
	}
	if !a.n3Dirty {
		a.nz.n3 = slices.Clone(a.nz.n3)
		a.n3Dirty = true
	}
	switch {
	case len(n.data) == 0 && old != nil:
		a.nz.n3 = slices.Delete(a.nz.n3, i, i+1)
	case old != nil:
		a.nz.n3[i].node = n
	case len(n.data) > 0:
		a.nz.n3 = slices.Insert(a.nz.n3, i, nsec3Entry{hash: h, node: n})
	}
	a.d.Names[name] = true
	return nil
}

func (a *applier) finish(opt Options) error {
	// A cut that appeared or went changes BelowCut under it. Finding the
	// names below means a walk over the zone: rare, and still cheaper than
	// rebuilding it.
	if len(a.cutChanged) > 0 {
		var under []*Node
		a.ed.Range(func(name string, n *Node) bool {
			for _, c := range a.cutChanged {
				if name != c && dns.IsSubDomain(c, name) {
					under = append(under, n)
					break
				}
			}
			return true
		})
		for _, n := range under {
			bc := belowCut(a.z.Origin, n.Name, a.get)
			if bc != n.Has(BelowCut) {
				c := *n
				c.Flags ^= BelowCut
				a.ed.Set(n.Name, &c)
				a.d.Names[n.Name] = true
			}
		}
	}
	a.nz.nodes = a.ed.Map()
	if a.get(a.z.Origin) == nil {
		return ErrNoSOA
	}
	if err := a.nz.apexChanged(opt); err != nil {
		return err
	}
	if len(a.nsecAdd)+len(a.nsecDel) > 0 {
		// Keep the NSEC order sorted by inserting and removing in place.
		a.nz.nsec, a.nz.nsecKeys = slices.Clone(a.nz.nsec), slices.Clone(a.nz.nsecKeys)
		for _, name := range a.nsecDel {
			k := SortKey(nil, name)
			if i, ok := slices.BinarySearchFunc(a.nz.nsecKeys, k, bytes.Compare); ok {
				a.nz.nsec = slices.Delete(a.nz.nsec, i, i+1)
				a.nz.nsecKeys = slices.Delete(a.nz.nsecKeys, i, i+1)
			}
		}
		for _, name := range a.nsecAdd {
			k := SortKey(nil, name)
			if i, ok := slices.BinarySearchFunc(a.nz.nsecKeys, k, bytes.Compare); !ok {
				a.nz.nsec = slices.Insert(a.nz.nsec, i, name)
				a.nz.nsecKeys = slices.Insert(a.nz.nsecKeys, i, k)
			}
		}
	}
	return nil
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func roundTrip(rr dns.RR) (dns.RR, error) {
	buf := make([]byte, dns.Len(rr)+16)
	n, err := dns.PackRR(dns.Copy(rr), buf, 0, nil, false)
	if err != nil {
		return nil, &RRError{"", rr, err}
	}
	out, _, err := dns.UnpackRR(buf[:n], 0)
	if err != nil {
		return nil, &RRError{"", rr, err}
	}
	return out, nil
}
