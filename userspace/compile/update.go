package compile

import (
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Changes is what Update changed, for consumers that mirror the table (the
// XDP maps): entries to write, keys to remove, and — when the SOA changed —
// the new shared negative bodies, which every Negative entry of that QNAME
// length now answers with.
type Changes struct {
	Put       []Entry
	Del       []Key
	Negatives map[int]wire.Body // nil when they did not change
	// Full is true when Update rebuilt the whole table (Put then lists every
	// entry and Del is empty: consumers should reload).
	Full bool
}

// Update compiles the answers a change affects. t was built for the zone
// before the change, z is the zone after it and d what zone.Apply reported.
// t is not modified.
func Update(t *Table, z *zone.Zone, d *zone.Delta) (*Table, *Changes, error) {
	if d == nil || rebuildNeeded(t, z, d) {
		return rebuildAll(z)
	}
	dirty := map[string]bool{}   // names to recompile
	changed := map[string]bool{} // names whose dependents were added
	add := func(name string) {
		if changed[name] {
			return
		}
		changed[name] = true
		dirty[name] = true
		if srcs, ok := t.deps.Get(name); ok {
			for _, s := range srcs {
				dirty[s] = true
			}
		}
	}
	for name := range d.Names {
		add(name)
		// What a name that does not exist gets below a name depends on
		// a wildcard there (and on the probe label, should a zone hold it).
		if first, _, _ := strings.Cut(name, "."); (first == "*" || first == nxdProbe) && name != z.Origin {
			dirty[zone.Parent(name)] = true
		}
	}
	if len(d.Cuts) > 0 {
		// A cut that changed changes every answer below it. Finding those
		// names means a walk over the zone: rare, and still cheap.
		z.Each(func(n *zone.Node) bool {
			for _, c := range d.Cuts {
				if dns.IsSubDomain(c, n.Name) {
					add(n.Name)
					break
				}
			}
			return true
		})
	}
	if soaChanged(z, d) {
		if srcs, ok := t.deps.Get(depSOA); ok {
			for _, s := range srcs {
				dirty[s] = true
			}
		}
	}

	nt := &Table{signed: t.signed, soaNames: t.soaNames, zoneTypes: t.zoneTypes}
	for _, name := range slices.Collect(maps.Keys(d.Names)) {
		for _, tp := range z.Node(name).Types(nil) {
			if !slices.Contains(nt.zoneTypes, tp) {
				nt.zoneTypes = append(slices.Clip(nt.zoneTypes), tp)
			}
		}
	}
	if len(nt.zoneTypes) > len(t.zoneTypes) {
		if srcs, ok := t.deps.Get(depChains); ok {
			for _, s := range srcs {
				dirty[s] = true
			}
		}
	}
	c, err := newCompiler(z, nt.zoneTypes)
	if err != nil {
		return nil, nil, err
	}
	ch := &Changes{}
	if soaChanged(z, d) {
		// Same MNAME and RNAME (rebuildNeeded checked): the shared bodies
		// keep their layout; recompute each for the same neutral name. A
		// signed first part that changes length (RRSIGs over the SOA
		// added, gone, or of another size) would move the tails'
		// pointers into themselves: rebuild.
		c.neg, c.negRep = map[int]wire.Body{}, map[int]string{}
		for l := range t.negRep {
			b, err := c.shared(l)
			if err != nil || (l >= SignedKey && len(b.Bytes) != len(t.neg[l].Bytes)) {
				return rebuildAll(z)
			}
		}
		ch.Negatives = c.neg
	} else {
		c.neg, c.negRep = maps.Clone(t.neg), maps.Clone(t.negRep)
	}
	ents := t.entries.Edit()
	deps := t.deps.Edit()
	c.deps = func(target, source string) { addDep(deps, target, source) }
	put := nt.putter(ents.Set, newInterner(0, 1))
	var dos = []bool{false}
	if z.Signed {
		dos = append(dos, true)
	}
	for name := range dirty {
		wname, err := wireName(name)
		if err != nil {
			return nil, nil, err
		}
		// Forget every entry the name may have had; compile what it has now.
		old := map[Key]bool{}
		for _, do := range dos {
			for _, tp := range append([]uint16{TypeDefault, dns.TypeDS}, nt.zoneTypes...) {
				k := key(nil, wname, tp, do)
				if _, ok := ents.Get(string(k)); ok {
					ents.Delete(string(k))
					old[Key{string(wname), tp, do}] = true
				}
			}
		}
		if n := z.Node(name); n != nil {
			err := c.name(n, func(e *Entry) error {
				delete(old, Key{string(e.Name), e.Type, e.DO})
				ch.Put = append(ch.Put, *e)
				return put(e)
			})
			if err != nil {
				return nil, nil, err
			}
		}
		for k := range old {
			ch.Del = append(ch.Del, k)
		}
	}
	nt.entries, nt.deps = ents.Map(), deps.Map()
	nt.neg, nt.negRep = c.neg, c.negRep
	nt.setNSEC3(z, c)
	return nt, ch, nil
}

// soaChanged: the SOA or the apex (where the RRSIGs over the SOA live)
// changed, so the shared negative bodies and $SOA's dependents are redone.
func soaChanged(z *zone.Zone, d *zone.Delta) bool {
	return d.SOA || d.Names[z.Origin]
}

// rebuildNeeded reports changes Update does not follow piece by piece: the
// zone became signed or unsigned, or the SOA's names changed (they decide how
// every negative answer compresses).
func rebuildNeeded(t *Table, z *zone.Zone, d *zone.Delta) bool {
	return z.Signed != t.signed || (d.SOA && soaNames(z) != t.soaNames)
}

// negativeBody is the plain NODATA body for a name, as the compiler makes it.
func negativeBody(z *zone.Zone, name string) (wire.Body, error) {
	soa, _ := z.NegativeSOA()
	return wire.Encode(name, probeType, dns.RcodeSuccess, true, nil, []dns.RR{soa}, nil)
}

func rebuildAll(z *zone.Zone) (*Table, *Changes, error) {
	t, err := Build(z)
	if err != nil {
		return nil, nil, err
	}
	ch := &Changes{Full: true}
	err = Each(z, func(e *Entry) error {
		ch.Put = append(ch.Put, *e)
		return nil
	})
	return t, ch, err
}
