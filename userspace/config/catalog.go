package config

import (
	"fmt"
	"net/netip"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Catalog zones (RFC 9432, docs/catalog.md). A zone entry with
//
//	catalog: consume   a secondary zone (with primaries) that is a catalog:
//	                   its member zones are served as secondaries too,
//	                   each with the settings of the template its group
//	                   property names (templates below), else the
//	                   template "default", else the catalog's own
//	                   primaries, allow-notify, axfr-only and timers.
//	catalog: produce   a zone xdpns writes itself (neither file nor
//	                   primaries): a catalog listing the zones it serves
//	                   (members: all, the default, or a list of names),
//	                   transferable like any zone by a downstream
//	                   consumer. A zone's `group` is written as its group
//	                   property.

// Catalog roles of a zone.
const (
	CatalogConsume = "consume"
	CatalogProduce = "produce"
)

// CatalogRoles are the values of a zone's catalog key.
var CatalogRoles = []string{CatalogConsume, CatalogProduce}

// maxMembersLimit bounds a catalog's max-members.
const maxMembersLimit = 10_000_000

// DefaultMaxMembers is catalog.DefaultMaxMembers.
const DefaultMaxMembers = 100_000

// Template is the settings of member zones of consumed catalogs whose
// group property names it (top-level templates).
type Template struct {
	Name          string // as written: a group is any text
	Primaries     []Primary
	AllowNotify   []netip.Prefix
	AXFROnly      bool
	Timers        Timers
	AllowTransfer AllowTransfer
	Notify        []netip.AddrPort
	NotifyKey     string
	Line          int
}

// DefaultTemplate is the template of members with no group, or a group
// no template names.
const DefaultTemplate = "default"

// Template returns the template with the name, or nil.
func (c *Config) Template(name string) *Template {
	for i := range c.Templates {
		if c.Templates[i].Name == name {
			return &c.Templates[i]
		}
	}
	return nil
}

// MemberZone is the configuration of a member zone of the consumed
// catalog cat: the first of groups (sorted) that names a template, else
// the default template, else the catalog's own primaries and transfer
// settings (what serves the catalog usually serves its members).
func (c *Config) MemberZone(cat *Zone, member string, groups []string) Zone {
	z := Zone{Name: member, Line: cat.Line, MemberOf: cat.Name}
	var t *Template
	for _, g := range groups {
		if t = c.Template(g); t != nil {
			break
		}
	}
	if t == nil {
		t = c.Template(DefaultTemplate)
	}
	if t == nil {
		z.Primaries, z.AllowNotify, z.AXFROnly, z.Timers = cat.Primaries, cat.AllowNotify, cat.AXFROnly, cat.Timers
		return z
	}
	z.Primaries, z.AllowNotify, z.AXFROnly, z.Timers = t.Primaries, t.AllowNotify, t.AXFROnly, t.Timers
	z.AllowTransfer, z.Notify, z.NotifyKey = t.AllowTransfer, t.Notify, t.NotifyKey
	z.Template = t.Name
	return z
}

// Producers returns the zones with catalog: produce.
func (c *Config) Producers() []Zone {
	var out []Zone
	for _, z := range c.Zones {
		if z.Catalog == CatalogProduce {
			out = append(out, z)
		}
	}
	return out
}

// ProducedMembers is what a produced catalog lists: every configured zone
// that is not a produced catalog (members: all), or the named ones.
func (c *Config) ProducedMembers(cat *Zone) []Zone {
	var out []Zone
	for _, z := range c.Zones {
		if z.Catalog == CatalogProduce {
			continue
		}
		if cat.CatalogMembers == nil || slices.Contains(cat.CatalogMembers, z.Name) {
			out = append(out, z)
		}
	}
	return out
}

// catalogZone decodes the catalog keys of a zone entry.
func (d *decoder) catalogFields(path string, z *Zone, given map[string]int) []field {
	set := func(key string, v *yaml.Node) { given[key] = resolve(v).Line }
	return []field{
		{"catalog", func(v *yaml.Node) {
			set("catalog", v)
			d.oneOf(v, path+".catalog", CatalogRoles, &z.Catalog)
		}},
		{"members", func(v *yaml.Node) {
			set("members", v)
			if s := resolve(v); s.Kind == yaml.ScalarNode && s.Value == "all" {
				return
			}
			z.CatalogMembers = []string{}
			d.list(v, path+".members", false, func(i int, v *yaml.Node) {
				var name string
				p := fmt.Sprintf("%s.members[%d]", path, i)
				d.zoneName(v, p, &name)
				if name != "" {
					line := resolve(v).Line
					z.CatalogMembers = append(z.CatalogMembers, name)
					d.later = append(d.later, func(cfg *Config) {
						if cz := cfg.Zone(name); cz == nil {
							d.errorf(line, "%s: zone %s is not configured", p, name)
						} else if cz.Catalog == CatalogProduce {
							d.errorf(line, "%s: %s is a produced catalog, not a zone to list", p, name)
						}
					})
				}
			})
		}},
		{"max-members", func(v *yaml.Node) {
			set("max-members", v)
			intIn(d, v, path+".max-members", 1, maxMembersLimit, &z.MaxMembers)
		}},
		{"group", func(v *yaml.Node) {
			set("group", v)
			d.str(v, path+".group", maxTXT, &z.Group)
		}},
	}
}

// checkCatalog checks the catalog keys of a decoded zone entry against
// its kind; produce stands in for file and primaries.
func (d *decoder) checkCatalog(path string, z *Zone, given map[string]int, hasFile, hasPrimaries bool) {
	line := given["catalog"]
	switch z.Catalog {
	case CatalogConsume:
		if !hasPrimaries {
			d.errorf(line, "%s.catalog: consume needs primaries (a catalog is transferred like any secondary zone)", path)
		}
		if l, ok := given["members"]; ok {
			d.errorf(l, "%s.members: only for catalog: produce (a consumed catalog lists its members itself)", path)
		}
	case CatalogProduce:
		if hasFile || hasPrimaries {
			d.errorf(line, "%s.catalog: produce is a zone xdpns writes: no file or primaries", path)
		}
		if l, ok := given["max-members"]; ok {
			d.errorf(l, "%s.max-members: only for catalog: consume", path)
		}
	default:
		for _, k := range []string{"members", "max-members"} {
			if l, ok := given[k]; ok {
				d.errorf(l, "%s.%s: only for a catalog zone (catalog: consume or produce)", path, k)
			}
		}
	}
	if z.Catalog == CatalogConsume && z.MaxMembers == 0 {
		z.MaxMembers = DefaultMaxMembers
	}
}

// templates decodes the top-level templates.
func (d *decoder) templates(n *yaml.Node) []Template {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	var out []Template
	first := map[string]int{}
	d.list(n, "templates", false, func(i int, v *yaml.Node) {
		path := fmt.Sprintf("templates[%d]", i)
		v = resolve(v)
		t := Template{Line: v.Line}
		nameLine := 0
		var timerLines map[string]int
		timersLine := 0
		d.mapping(v, path, []field{
			{"name", func(v *yaml.Node) {
				nameLine = resolve(v).Line
				d.str(v, path+".name", maxTXT, &t.Name)
			}},
			{"primaries", func(v *yaml.Node) { t.Primaries = d.primaries(v, path+".primaries") }},
			{"allow-notify", func(v *yaml.Node) { t.AllowNotify = d.prefixes(v, path+".allow-notify") }},
			{"axfr-only", func(v *yaml.Node) { d.boolean(v, path+".axfr-only", &t.AXFROnly) }},
			{"timers", func(v *yaml.Node) {
				timersLine = resolve(v).Line
				timerLines = d.timers(v, path+".timers", &t.Timers)
			}},
			{"allow-transfer", func(v *yaml.Node) { d.allowTransfer(v, path+".allow-transfer", &t.AllowTransfer) }},
			{"notify", func(v *yaml.Node) { t.Notify, _ = d.addrPorts(v, path+".notify") }},
			{"notify-key", func(v *yaml.Node) { d.keyRef(v, path+".notify-key", &t.NotifyKey) }},
		})
		if v.Kind != yaml.MappingNode && !isNull(v) {
			return
		}
		if nameLine == 0 || t.Name == "" {
			d.errorf(v.Line, "%s: name is required (the group property that selects it, or %q)", path, DefaultTemplate)
			return
		}
		if len(t.Primaries) == 0 {
			d.errorf(v.Line, "%s: primaries are required (where the member zones are transferred from)", path)
		}
		if t.NotifyKey != "" && len(t.Notify) == 0 {
			d.errorf(v.Line, "%s.notify-key: no notify targets to sign for", path)
		}
		if timerLines != nil {
			tt := t.Timers
			d.later = append(d.later, func(cfg *Config) {
				d.checkTimers(path+".timers", tt.or(cfg.Xfr.Timers), timerLines, timersLine, "xfr.timers")
			})
		}
		if line, dup := first[t.Name]; dup {
			d.errorf(nameLine, "%s.name: duplicate template %q (first at line %d)", path, t.Name, line)
			return
		}
		first[t.Name] = nameLine
		out = append(out, t)
	})
	return out
}
