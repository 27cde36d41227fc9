package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xdpns/xdpns/userspace/zone"
)

// Changes is what changed between two member sets of one catalog.
type Changes struct {
	// Added and Removed are members only in the new, only in the old set.
	Added, Removed []Member
	// Reset are members whose unique-id changed (the new member): RFC
	// 9432 §5.3 makes that a removal and an addition, so the zone's state
	// (data, timers, journal) is dropped and transferred afresh (§5.5).
	Reset []Member
	// Regrouped are members whose groups changed, unique-id the same (the
	// new member): their settings come from another template now.
	Regrouped []Member
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Reset)+len(c.Regrouped) == 0
}

func (c Changes) String() string {
	return fmt.Sprintf("added %d, removed %d, reset %d, regrouped %d", len(c.Added), len(c.Removed), len(c.Reset), len(c.Regrouped))
}

// Diff compares two member sets of a catalog; a nil set is empty. Each
// list is sorted by zone name.
func Diff(old, new *Set) Changes {
	var c Changes
	for _, name := range new.Names() {
		m := new.Members[name]
		o, ok := old.lookup(name)
		switch {
		case !ok:
			c.Added = append(c.Added, m)
		case o.ID != m.ID:
			c.Reset = append(c.Reset, m)
		case !slices.Equal(o.Groups, m.Groups):
			c.Regrouped = append(c.Regrouped, m)
		}
	}
	for _, name := range old.Names() {
		if _, ok := new.lookup(name); !ok {
			c.Removed = append(c.Removed, old.Members[name])
		}
	}
	return c
}

// Kind is what the server must do with a member zone.
type Kind int

const (
	// Add starts serving the member zone (a secondary transferred from
	// the template's primaries).
	Add Kind = iota
	// Remove stops serving it and drops its state.
	Remove
	// Reset drops its state and transfers it afresh (a new unique-id,
	// or a migration under a new one).
	Reset
	// Regroup applies another template's settings, keeping its data.
	Regroup
	// Migrate moves it to another catalog keeping its data (RFC 9432
	// §5.4, the unique-id unchanged): only the owner changes.
	Migrate
)

func (k Kind) String() string {
	return [...]string{"add", "remove", "reset", "regroup", "migrate"}[k]
}

// Action is one thing to do with one member zone.
type Action struct {
	Kind    Kind
	Member  Member // the new member (the old one for Remove)
	Catalog string // the catalog that owns it now (had it, for Remove)
	// From is the catalog it migrated from (Migrate, or Reset by one).
	From string
}

func (a Action) String() string {
	s := fmt.Sprintf("%s %s (catalog %s, unique-id %s", a.Kind, a.Member.Zone, a.Catalog, a.Member.ID)
	if len(a.Member.Groups) > 0 {
		s += ", group " + strings.Join(a.Member.Groups, ",")
	}
	if a.From != "" {
		s += ", from catalog " + a.From
	}
	return s + ")"
}

// Registry is the state of a consumer of one or more catalogs: the member
// set of each and which catalog owns each member zone. Update turns a new
// version of a catalog into actions with RFC 9432's rules across catalogs:
// a zone already served (configured, or a member of another catalog)
// wins over a new member of the same name (§5.1), unless the catalog that
// owns it points at the new one with a coo property: then the zone
// migrates (§5.4), keeping its state when the unique-id is the same,
// reset when it is not. A member that migrated away is not removed when
// the old catalog drops it. Not safe for concurrent use.
type Registry struct {
	// Opt is used for every catalog (its Clash is asked before the
	// registry's own: the configured zones).
	Opt   Options
	sets  map[string]*Set
	zones map[string]*zone.Zone // the last version of each catalog seen
	owner map[string]string     // member zone -> catalog
}

// NewRegistry returns an empty registry.
func NewRegistry(opt Options) *Registry {
	return &Registry{Opt: opt, sets: map[string]*Set{}, zones: map[string]*zone.Zone{}, owner: map[string]string{}}
}

// Set returns the member set in force for a catalog, or nil.
func (r *Registry) Set(catalog string) *Set { return r.sets[catalog] }

// Owner returns the catalog that owns a member zone.
func (r *Registry) Owner(member string) (string, bool) {
	c, ok := r.owner[member]
	return c, ok
}

// Members returns every member zone with its owner, sorted by zone.
func (r *Registry) Members() []Action {
	var out []Action
	for z, c := range r.owner {
		out = append(out, Action{Kind: Add, Member: r.sets[c].Members[z], Catalog: c})
	}
	slices.SortFunc(out, func(a, b Action) int { return strings.Compare(a.Member.Zone, b.Member.Zone) })
	return out
}

// Update processes a new version of a catalog zone. On error (the version
// cannot be processed) nothing changes and the member set before stays in
// force. Problems are what was ignored.
func (r *Registry) Update(z *zone.Zone) ([]Action, []Problem, error) {
	acts, probs, err := r.update(z)
	if err != nil {
		return nil, probs, err
	}
	// A coo in this catalog may release a member another catalog
	// already lists (it was a clash until now): process that one again.
	set := r.sets[z.Origin]
	var again []string
	for _, name := range set.Names() {
		m := set.Members[name]
		if m.COO == "" || r.owner[name] != z.Origin || r.zones[m.COO] == nil {
			continue
		}
		if ns := r.sets[m.COO]; ns == nil || ns.Members[name].Zone == "" {
			if !slices.Contains(again, m.COO) {
				again = append(again, m.COO)
			}
		}
	}
	for _, c := range again {
		more, p, err := r.update(r.zones[c])
		if err == nil {
			acts = append(acts, more...)
			probs = append(probs, p...)
		}
	}
	return acts, probs, nil
}

func (r *Registry) update(z *zone.Zone) ([]Action, []Problem, error) {
	cat := z.Origin
	prev := r.sets[cat]
	opt := r.Opt
	opt.Prev = prev
	// migrating: members another catalog owns and hands to this one.
	migrating := map[string]string{}
	opt.Clash = func(member string) bool {
		if r.Opt.Clash != nil && r.Opt.Clash(member) {
			return true
		}
		owner, ok := r.owner[member]
		if !ok || owner == cat {
			return false
		}
		if m := r.sets[owner].Members[member]; m.COO == cat {
			migrating[member] = owner
			return false
		}
		return true
	}
	set, probs, err := Parse(z, opt)
	if err != nil {
		return nil, nil, err
	}
	if set.Catalog != cat {
		return nil, nil, fmt.Errorf("catalog %s: parsed as %s", cat, set.Catalog)
	}
	ch := Diff(prev, set)
	var acts []Action
	for _, m := range ch.Added {
		if from, ok := migrating[m.Zone]; ok {
			kind := Migrate
			if r.sets[from].Members[m.Zone].ID != m.ID {
				kind = Reset
			}
			acts = append(acts, Action{Kind: kind, Member: m, Catalog: cat, From: from})
		} else {
			acts = append(acts, Action{Kind: Add, Member: m, Catalog: cat})
		}
		r.owner[m.Zone] = cat
	}
	for _, m := range ch.Reset {
		acts = append(acts, Action{Kind: Reset, Member: m, Catalog: cat})
	}
	for _, m := range ch.Regrouped {
		acts = append(acts, Action{Kind: Regroup, Member: m, Catalog: cat})
	}
	for _, m := range ch.Removed {
		if r.owner[m.Zone] == cat {
			acts = append(acts, Action{Kind: Remove, Member: m, Catalog: cat})
			delete(r.owner, m.Zone)
		}
		// else: it migrated to another catalog, which keeps it.
	}
	r.sets[cat] = set
	r.zones[cat] = z
	return acts, probs, nil
}

// Drop forgets a catalog (no longer configured): its members are removed,
// save those that migrated away.
func (r *Registry) Drop(catalog string) []Action {
	set := r.sets[catalog]
	var acts []Action
	for _, name := range set.Names() {
		if r.owner[name] == catalog {
			acts = append(acts, Action{Kind: Remove, Member: set.Members[name], Catalog: catalog})
			delete(r.owner, name)
		}
	}
	delete(r.sets, catalog)
	delete(r.zones, catalog)
	return acts
}
