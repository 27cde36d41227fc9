package loader

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Zones lists the compiled answers of the served zones zs for the maps.
// The responder answers a name from the served zone with the longest origin
// enclosing it, so an entry one zone lists for a name inside a more specific
// served zone (glue below a cut whose child is served too) is left out: XDP
// must not answer it from the parent. Expired zones must not be passed in:
// the responder answers SERVFAIL for them.
func Zones(zs ...*zone.Zone) ([]ZoneEntries, error) {
	return ZonesFrom(nil, nil, zs...)
}

// Tables gives the compiled table of a zone when one is at hand (the
// responder's, built for exactly that version), nil otherwise.
type Tables func(z *zone.Zone) *compile.Table

// ZonesFrom is Zones taking each zone's entries from its table when tables
// has one, instead of compiling the zone again (seconds for a million
// names), and with the zones goOnly names (those Go answers by its engine
// alone: expired, not transferred yet) listed without entries: XDP passes
// their names, and an enclosing zone's entries for them (the referral,
// glue) are left out as for any more specific served zone, so the
// enclosing zone stays in XDP.
func ZonesFrom(tables Tables, goOnly []string, zs ...*zone.Zone) ([]ZoneEntries, error) {
	origins := make(map[string]int, len(zs)+len(goOnly))
	add := func(i int, origin string) error {
		w, err := wireName(origin)
		if err != nil {
			return err
		}
		if _, dup := origins[string(w)]; dup {
			return fmt.Errorf("zone %s given twice", origin)
		}
		origins[string(w)] = i
		return nil
	}
	for i, z := range zs {
		if err := add(i, z.Origin); err != nil {
			return nil, err
		}
	}
	out := make([]ZoneEntries, len(zs), len(zs)+len(goOnly))
	for _, o := range goOnly {
		if err := add(len(out), o); err != nil {
			return nil, err
		}
		out = append(out, ZoneEntries{Origin: o, GoOnly: true})
	}
	for i, z := range zs {
		out[i] = ZoneEntries{Origin: z.Origin, Signed: z.Signed}
		if b, err := compile.NXDomainBody(z); err == nil {
			out[i].NXDomain = b
		}
		out[i].NSEC3 = nsec3For(z, tableOf(tables, z))
		keep := func(e *compile.Entry) error {
			if servedIndex(origins, e.Name) == i {
				out[i].Entries = append(out[i].Entries, *e)
			}
			return nil
		}
		var err error
		if t := tableOf(tables, z); t != nil {
			// Read from the table as the image is built, not copied.
			out[i].Hint = t.Len()
			out[i].List = func(fn func(*compile.Entry) error) error {
				return t.Each(func(e *compile.Entry) error {
					if servedIndex(origins, e.Name) == i {
						return fn(e)
					}
					return nil
				})
			}
		} else {
			// About an entry per RRset and a default per name: grown
			// from empty, a million names' entries were copied over
			// and over (9 of a 12 s compile), the GC waiting on it.
			out[i].Entries = make([]compile.Entry, 0, z.RecordCount()+z.Len())
			err = compile.Each(z, keep)
		}
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", z.Origin, err)
		}
	}
	return out, nil
}

func tableOf(tables Tables, z *zone.Zone) *compile.Table {
	if tables == nil {
		return nil
	}
	return tables(z)
}

// servedIndex returns the index of the longest origin enclosing the wire name.
func servedIndex(origins map[string]int, name []byte) int {
	for off := 0; off < len(name); off += int(name[off]) + 1 {
		if i, ok := origins[string(name[off:])]; ok {
			return i
		}
		if name[off] == 0 {
			break
		}
	}
	return -1
}

func wireName(name string) ([]byte, error) {
	buf := make([]byte, 255)
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	return buf[:n], nil
}

// LoadZones compiles the served zones zs and makes them the answers XDP
// serves (Zones, BuildImage, Load). Entries left to Go by hash collisions
// are counted in the returned image.
func (x *XDP) LoadZones(zs ...*zone.Zone) (*Image, error) {
	return x.LoadZonesFrom(nil, nil, zs...)
}

// LoadZonesFrom is LoadZones with the entries of the zones tables has a
// table for taken from it, and the goOnly zones held without entries
// (ZonesFrom).
func (x *XDP) LoadZonesFrom(tables Tables, goOnly []string, zs ...*zone.Zone) (*Image, error) {
	entries, err := ZonesFrom(tables, goOnly, zs...)
	if err != nil {
		return nil, err
	}
	if im, err := x.loadInPlace(entries); !errors.Is(err, errNoRoom) {
		return im, err
	}
	// The estimate was short: an image of its own size, copied.
	im, err := BuildImage(entries...)
	if err != nil {
		return nil, err
	}
	if err := x.Load(im); err != nil {
		return nil, err
	}
	return im, nil
}
