// Package catalog reads and writes DNS catalog zones (RFC 9432): a zone
// whose records list the member zones a secondary should serve.
//
// Parse turns one version of a catalog zone into a Set of members (keyed
// by member zone name, with the unique-id label, groups and change of
// ownership of each); Diff says what changed between two versions;
// Registry applies both across every catalog a server consumes, with the
// RFC's rules for name clashes and migrations between catalogs; Generate
// writes the records of a catalog a producer serves. Everything here is a
// pure function of its inputs: the daemon transfers the catalog zone and
// adds or removes the member zones.
package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// Version is the only catalog schema version handled (RFC 9432 §4.2.1).
const Version = "2"

// DefaultMaxMembers bounds the members of one catalog version: a larger
// catalog is refused whole, so a hostile or broken primary cannot make us
// create a million zones.
const DefaultMaxMembers = 100_000

// Sentinel errors: a catalog version that fails with one of these is not
// processed at all, and the previous member set stays in force.
var (
	ErrVersion        = errors.New("catalog: version property missing or not \"" + Version + "\"")
	ErrTooManyMembers = errors.New("catalog: too many members")
	ErrBrokenMember   = errors.New("catalog: broken member node")
	ErrNotCatalog     = errors.New("catalog: not a catalog zone")
)

// Member is one member zone of a catalog.
type Member struct {
	// Zone is the member zone's name, canonical.
	Zone string
	// ID is the unique-id label of its member node
	// (<ID>.zones.<catalog>), lowercase.
	ID string
	// Groups are the values of its group properties, sorted, each
	// once; empty: none.
	Groups []string
	// COO is the catalog its change-of-ownership property points to
	// (RFC 9432 §4.3.1), canonical; empty: none.
	COO string
}

// Set is the member set of one catalog version.
type Set struct {
	// Catalog is the catalog zone's name, canonical.
	Catalog string
	// Serial is the SOA serial of the version the set was read from.
	Serial  uint32
	Members map[string]Member // by member zone name
}

// Len is the number of members; 0 for a nil set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Members)
}

// Names returns the member zone names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.Members))
	for n := range s.Members {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Problem is something in a catalog that Parse ignored, as RFC 9432 says
// a consumer should, and reports so it can be logged.
type Problem struct {
	// Owner is the catalog record's owner name it is about.
	Owner string
	// Zone is the member zone concerned, when known.
	Zone string
	Msg  string
}

func (p Problem) String() string {
	s := p.Owner + ": " + p.Msg
	if p.Zone != "" && !strings.Contains(p.Msg, p.Zone) {
		s += " (member " + p.Zone + ")"
	}
	return s
}

// Options tune Parse.
type Options struct {
	// MaxMembers refuses a version with more member nodes; 0 is
	// DefaultMaxMembers.
	MaxMembers int
	// Clash reports whether a member zone name is already served by
	// other means (a zone of the configuration, another catalog's
	// member): such a member is ignored and reported (RFC 9432 §5.1: the
	// existing zone wins). Nil: no clashes.
	Clash func(zone string) bool
	// Prev is the member set of the version before, so that a zone
	// listed under two unique-ids keeps the one it had (the existing
	// instance wins). Nil: the smallest unique-id wins.
	Prev *Set
}

// Parse reads the member set of one version of a catalog zone.
//
// A version that cannot be processed at all returns an error and no set
// (the caller keeps the previous one): no version property, or one other
// than "2" (§4.2.1); more member nodes than the limit; a member node with
// more than one PTR record (§4.1: a broken catalog that MUST NOT be
// processed). What a consumer must ignore is ignored and reported as a
// Problem: a member node without a PTR, a zone listed twice, a member
// that clashes with an existing zone, a property with bad data, records
// with no meaning here.
func Parse(z *zone.Zone, opt Options) (*Set, []Problem, error) {
	if z == nil || z.SOA == nil {
		return nil, nil, ErrNotCatalog
	}
	limit := opt.MaxMembers
	if limit <= 0 {
		limit = DefaultMaxMembers
	}
	cat := z.Origin
	zones := child("zones", cat)
	if err := checkVersion(z, cat); err != nil {
		return nil, nil, err
	}
	var probs []Problem
	report := func(owner, member, format string, args ...any) {
		probs = append(probs, Problem{Owner: owner, Zone: member, Msg: fmt.Sprintf(format, args...)})
	}
	// First the member nodes, counted before anything is kept: a hostile
	// catalog is refused before it costs more than one walk.
	type node struct {
		id   string
		n    *zone.Node
		prop map[string]*zone.Node // group, coo
	}
	nodes := map[string]*node{} // by unique-id
	var bad error
	count := 0
	z.Each(func(n *zone.Node) bool {
		rel, ok := relative(n.Name, zones)
		if !ok || rel == "" {
			return true
		}
		labels := dns.SplitDomainName(rel)
		switch len(labels) {
		case 1:
			if !n.HasType(dns.TypePTR) {
				// Data at a member node without its PTR (or an empty
				// non-terminal above properties): no member here.
				if types := n.Types(nil); len(types) > 0 {
					report(n.Name, "", "member node without a PTR record; ignored")
				}
				return true
			}
			count++
			if count > limit {
				bad = fmt.Errorf("%w: more than %d member zones in catalog %s (limit %d)", ErrTooManyMembers, limit, cat, limit)
				return false
			}
			nd := nodes[labels[0]]
			if nd == nil {
				nd = &node{id: labels[0]}
				nodes[labels[0]] = nd
			}
			nd.n = n
		case 2:
			switch labels[0] {
			case "group", "coo":
				nd := nodes[labels[1]]
				if nd == nil {
					nd = &node{id: labels[1]}
					nodes[labels[1]] = nd
				}
				if nd.prop == nil {
					nd.prop = map[string]*zone.Node{}
				}
				nd.prop[labels[0]] = n
			case "ext":
			default:
				if len(n.Types(nil)) > 0 {
					report(n.Name, "", "unknown member property %q; ignored", labels[0])
				}
			}
		}
		return true
	})
	if bad != nil {
		return nil, nil, bad
	}
	set := &Set{Catalog: cat, Serial: z.Serial(), Members: map[string]Member{}}
	ids := make([]string, 0, len(nodes))
	for id, nd := range nodes {
		if nd.n != nil {
			ids = append(ids, id)
		} else {
			for _, p := range nd.prop {
				report(p.Name, "", "property of a member node that does not exist; ignored")
			}
		}
	}
	slices.Sort(ids) // deterministic choice between duplicates
	byZone := map[string][]string{}
	for _, id := range ids {
		nd := nodes[id]
		ptrs := nd.n.Get(dns.TypePTR).RRs
		if len(ptrs) != 1 {
			return nil, nil, fmt.Errorf("%w: %s has %d PTR records, a member node has exactly one (RFC 9432 §4.1); catalog %s not processed", ErrBrokenMember, nd.n.Name, len(ptrs), cat)
		}
		member := dns.CanonicalName(ptrs[0].(*dns.PTR).Ptr)
		if member == cat {
			report(nd.n.Name, member, "member is the catalog zone itself; ignored")
			continue
		}
		m := Member{Zone: member, ID: id}
		if p := nd.prop["group"]; p != nil {
			m.Groups = groups(p, member, report)
		}
		if p := nd.prop["coo"]; p != nil {
			m.COO = coo(p, member, cat, report)
		}
		byZone[member] = append(byZone[member], id)
		if len(byZone[member]) > 1 {
			continue
		}
		set.Members[member] = m
	}
	for member, list := range byZone {
		if len(list) < 2 {
			continue
		}
		keep := list[0]
		if old, ok := opt.Prev.lookup(member); ok && slices.Contains(list, old.ID) {
			keep = old.ID
		}
		if keep != set.Members[member].ID {
			// Rebuild the kept one: its properties are its own.
			nd := nodes[keep]
			m := Member{Zone: member, ID: keep}
			if p := nd.prop["group"]; p != nil {
				m.Groups = groups(p, member, func(string, string, string, ...any) {})
			}
			if p := nd.prop["coo"]; p != nil {
				m.COO = coo(p, member, cat, func(string, string, string, ...any) {})
			}
			set.Members[member] = m
		}
		for _, id := range list {
			if id != keep {
				report(id+"."+zones, member, "zone %s is already a member under unique-id %s; this one ignored (RFC 9432 §5.1)", member, keep)
			}
		}
	}
	if opt.Clash != nil {
		for _, member := range set.Names() {
			if opt.Clash(member) {
				m := set.Members[member]
				report(m.ID+"."+zones, member, "zone %s is already served (configured, or a member of another catalog); the existing zone wins, member ignored (RFC 9432 §5.1)", member)
				delete(set.Members, member)
			}
		}
	}
	slices.SortFunc(probs, func(a, b Problem) int { return strings.Compare(a.Owner, b.Owner) })
	return set, probs, nil
}

func (s *Set) lookup(zone string) (Member, bool) {
	if s == nil {
		return Member{}, false
	}
	m, ok := s.Members[zone]
	return m, ok
}

// checkVersion requires exactly one TXT record "2" at version.<catalog>.
func checkVersion(z *zone.Zone, cat string) error {
	name := child("version", cat)
	n := z.Node(name)
	if n == nil || !n.HasType(dns.TypeTXT) {
		return fmt.Errorf("%w: %s has no TXT record", ErrVersion, name)
	}
	txts := n.Get(dns.TypeTXT).RRs
	if len(txts) != 1 {
		return fmt.Errorf("%w: %s has %d TXT records, want exactly one", ErrVersion, name, len(txts))
	}
	got := txts[0].(*dns.TXT).Txt
	if len(got) != 1 || got[0] != Version {
		return fmt.Errorf("%w: %s says %q, this server reads schema version %q only; catalog not processed", ErrVersion, name, strings.Join(got, " "), Version)
	}
	return nil
}

// groups reads the group property: each TXT record one group name
// (RFC 9432 §4.3.2), a record of several strings being one name written
// in pieces.
func groups(p *zone.Node, member string, report func(owner, member, format string, args ...any)) []string {
	var out []string
	if s := p.Get(dns.TypeTXT); s != nil {
		for _, rr := range s.RRs {
			g := strings.Join(rr.(*dns.TXT).Txt, "")
			if g == "" {
				report(p.Name, member, "empty group; ignored")
				continue
			}
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	if len(out) == 0 && len(p.Types(nil)) > 0 && !p.HasType(dns.TypeTXT) {
		report(p.Name, member, "group property without a TXT record; ignored")
	}
	slices.Sort(out)
	return out
}

// coo reads the change-of-ownership property: one PTR to the catalog the
// member moves to (RFC 9432 §4.3.1).
func coo(p *zone.Node, member, cat string, report func(owner, member, format string, args ...any)) string {
	s := p.Get(dns.TypePTR)
	if s == nil {
		report(p.Name, member, "coo property without a PTR record; ignored")
		return ""
	}
	if len(s.RRs) != 1 {
		report(p.Name, member, "coo property with %d PTR records, want one; ignored", len(s.RRs))
		return ""
	}
	to := dns.CanonicalName(s.RRs[0].(*dns.PTR).Ptr)
	if to == cat {
		report(p.Name, member, "coo points to this catalog; ignored")
		return ""
	}
	return to
}

// relative returns name without the suffix zone, and whether name is at or
// below it.
func relative(name, suffix string) (string, bool) {
	if name == suffix {
		return "", true
	}
	if strings.HasSuffix(name, "."+suffix) {
		return name[:len(name)-len(suffix)-1], true
	}
	return "", false
}

// child is the name label.parent.
func child(label, parent string) string {
	if parent == "." {
		return label + "."
	}
	return label + "." + parent
}
