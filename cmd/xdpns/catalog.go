package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/xdpns/xdpns/userspace/catalog"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/zone"
	"github.com/xdpns/xdpns/xfr"
)

// Catalog zones (docs/catalog.md). A produced catalog (catalog: produce)
// is built here from the configuration each time the zones load (start,
// reload) and served like a zone from a file: answered, transferred by
// AXFR (IXFR gets the whole zone, as for any file zone) and NOTIFYed when
// its serial changes.

// produced remembers, per produced catalog, the entries last written and
// their serial: the serial moves only when the member set does.
var produced = struct {
	sync.Mutex
	last map[string]producedVersion
}{last: map[string]producedVersion{}}

type producedVersion struct {
	entries []catalog.Entry
	serial  uint32
}

// producedSerial returns the serial for a version of catalog name listing
// entries: the last one when they did not change, else the Unix time (so
// that a restart, which forgets the last serial, still goes forward), or
// one more than the last when the clock is behind it.
func producedSerial(name string, entries []catalog.Entry, now time.Time) uint32 {
	produced.Lock()
	defer produced.Unlock()
	last, ok := produced.last[name]
	if ok && slices.Equal(last.entries, entries) {
		return last.serial
	}
	serial := uint32(now.Unix())
	if ok && int32(serial-last.serial) <= 0 { // RFC 1982: not after the last
		serial = last.serial + 1
	}
	produced.last[name] = producedVersion{entries: entries, serial: serial}
	return serial
}

// produceCatalog builds the catalog zone cz lists: the zones of cfg
// (members: all) or the ones named, each with its group.
func produceCatalog(cfg *config.Config, cz config.Zone) loadedZone {
	var entries []catalog.Entry
	for _, m := range cfg.ProducedMembers(&cz) {
		entries = append(entries, catalog.Entry{Zone: m.Name, Group: m.Group})
	}
	slices.SortFunc(entries, func(a, b catalog.Entry) int {
		if a.Zone < b.Zone {
			return -1
		}
		if a.Zone > b.Zone {
			return 1
		}
		return 0
	})
	z, err := catalog.Build(cz.Name, entries, producedSerial(cz.Name, entries, time.Now()))
	if err != nil {
		return loadedZone{conf: cz, err: fmt.Errorf("%s:%d: catalog %s: %w", cfg.File, cz.Line, cz.Name, err)}
	}
	return loadedZone{conf: cz, zone: z}
}

// Fleet is what a consumed catalog needs from the daemon: member zones
// added (a secondary, or new settings for one served) and removed with
// their state. The daemon implements it (applyMembers); the run-time zone
// management of serve is meant to implement it too.
type Fleet interface {
	AddZones(zones []config.Zone) error
	RemoveZones(names []string) error
}

// consumer is the daemon's side of the catalogs it consumes: their member
// sets (catalog.Registry) and the configuration of each member zone.
type consumer struct {
	mu      sync.Mutex // one catalog version processed at a time
	reg     *catalog.Registry
	members map[string]config.Zone // by name; read under daemon.mu too

	lmu     sync.Mutex
	latest  map[string]*zone.Zone // newest version of each catalog seen
	syncing bool                  // at start: versions are processed in line
	stash   []*zone.Zone          // versions seen while syncing
}

func newConsumer() *consumer {
	return &consumer{reg: catalog.NewRegistry(catalog.Options{}), members: map[string]config.Zone{}, latest: map[string]*zone.Zone{}}
}

// withMembers is cfg with the member zones of consumed catalogs appended:
// what the transfers in and out are configured from.
func (d *daemon) withMembers(cfg *config.Config) *config.Config {
	d.cat.mu.Lock()
	defer d.cat.mu.Unlock()
	if len(d.cat.members) == 0 {
		return cfg
	}
	eff := *cfg
	eff.Zones = slices.Clone(cfg.Zones)
	names := make([]string, 0, len(d.cat.members))
	for n := range d.cat.members {
		if cfg.Zone(n) == nil { // a configured zone wins (RFC 9432 §5.1)
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		eff.Zones = append(eff.Zones, d.cat.members[n])
	}
	return &eff
}

// consumedCatalog returns the configuration of a consumed catalog zone.
func (d *daemon) consumedCatalog(origin string) (config.Zone, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if z := d.cfg.Zone(origin); z != nil && z.Catalog == config.CatalogConsume {
		return *z, true
	}
	return config.Zone{}, false
}

// catalogServed is called when a new version of a secondary zone is
// served: for a consumed catalog its member set is recomputed and applied.
// Not from the OnZone goroutine (Reconfigure must not be called there):
// in a goroutine of its own, or, at start, after the Manager started, so
// that the members stored on disk are served before the listeners open.
func (d *daemon) catalogServed(z *zone.Zone) {
	if _, ok := d.consumedCatalog(z.Origin); !ok {
		return
	}
	c := d.cat
	c.lmu.Lock()
	c.latest[z.Origin] = z
	if c.syncing {
		c.stash = append(c.stash, z)
		c.lmu.Unlock()
		return
	}
	c.lmu.Unlock()
	go func() {
		d.reloadMu.Lock()
		defer d.reloadMu.Unlock()
		d.applyCatalog(z)
	}()
}

// applyCatalog processes one version of a consumed catalog, unless a newer
// one was served since. The caller holds d.reloadMu.
func (d *daemon) applyCatalog(z *zone.Zone) {
	c := d.cat
	c.lmu.Lock()
	stale := c.latest[z.Origin] != z
	c.lmu.Unlock()
	if stale {
		return
	}
	cz, ok := d.consumedCatalog(z.Origin)
	if !ok {
		return
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	log := d.zlog.With("catalog", z.Origin, "serial", z.Serial())
	c.mu.Lock()
	c.reg.Opt = catalog.Options{MaxMembers: cz.MaxMembers, Clash: func(name string) bool { return cfg.Zone(name) != nil }}
	acts, probs, err := c.reg.Update(z)
	c.mu.Unlock()
	for _, p := range probs {
		log.Warn("catalog: ignored", "owner", p.Owner, "member", p.Zone, "problem", p.Msg)
	}
	if err != nil {
		log.Error("catalog version not processed; the member set before stays", "err", err)
		return
	}
	var add []config.Zone
	var remove, reset []string
	for _, a := range acts {
		log.Info("catalog member", "action", a.Kind.String(), "zone", a.Member.Zone, "unique_id", a.Member.ID, "groups", a.Member.Groups, "from", a.From)
		switch a.Kind {
		case catalog.Remove:
			remove = append(remove, a.Member.Zone)
			continue
		case catalog.Reset:
			reset = append(reset, a.Member.Zone)
		}
		owner := cz
		if a.Catalog != z.Origin {
			if oz, ok := d.consumedCatalog(a.Catalog); ok {
				owner = oz
			}
		}
		add = append(add, cfg.MemberZone(&owner, a.Member.Zone, a.Member.Groups))
	}
	if len(reset) > 0 {
		// Removed with their state, then added afresh (RFC 9432 §5.5).
		if err := d.RemoveZones(reset); err != nil {
			log.Error("catalog: reset", "err", err)
		}
	}
	if err := d.RemoveZones(remove); err != nil {
		log.Error("catalog: remove members", "err", err)
	}
	if err := d.AddZones(add); err != nil {
		log.Error("catalog: add members", "err", err)
	}
	if len(acts) > 0 {
		log.Info("catalog applied", "members", c.reg.Set(z.Origin).Len(), "added", len(add)-len(reset), "removed", len(remove), "reset", len(reset))
	}
}

// AddZones serves member zones (Fleet): as secondaries of the running
// Manager, with placeholders until their first transfer, or their state
// from disk. A zone already a member gets the new settings.
func (d *daemon) AddZones(zones []config.Zone) error {
	if len(zones) == 0 {
		return nil
	}
	d.cat.mu.Lock()
	for _, z := range zones {
		d.cat.members[z.Name] = z
	}
	d.cat.mu.Unlock()
	return d.applyMembers()
}

// RemoveZones stops serving member zones and forgets their state (Fleet).
func (d *daemon) RemoveZones(names []string) error {
	if len(names) == 0 {
		return nil
	}
	d.cat.mu.Lock()
	var gone []string
	for _, n := range names {
		if _, ok := d.cat.members[n]; ok {
			delete(d.cat.members, n)
			gone = append(gone, n)
		}
	}
	d.cat.mu.Unlock()
	if err := d.applyMembers(); err != nil {
		return err
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	var errs []error
	for _, n := range gone {
		if cfg.Zone(n) != nil {
			continue // configured: not ours to remove
		}
		d.removeZone(n)
		errs = append(errs, xfr.ForgetState(cfg.Xfr.StateDir, n))
	}
	return errors.Join(errs...)
}

// applyMembers reconfigures the Manager and the transfers out with the
// configuration plus the current members: only the zones that changed are
// touched.
func (d *daemon) applyMembers() error {
	d.mu.Lock()
	cfg, mgr := d.cfg, d.sec
	d.mu.Unlock()
	eff := d.withMembers(d.effective(cfg)) // with the run-time zones
	x := xfrConfig(eff)
	d.pending(x)
	if _, err := mgr.Reconfigure(x); err != nil {
		return fmt.Errorf("members: %w", err)
	}
	d.mu.Lock()
	d.xcfg = x
	d.mu.Unlock()
	return d.startXfrout(eff)
}

// syncCatalogs processes, in line, the catalog versions the Manager
// published from disk while starting: their members are served from their
// own state files before the listeners open. Called once, at start.
func (d *daemon) syncCatalogs() {
	c := d.cat
	c.lmu.Lock()
	stash := c.stash
	c.stash, c.syncing = nil, false
	c.lmu.Unlock()
	for _, z := range stash {
		d.applyCatalog(z)
	}
}

// reloadCatalogs follows a reload: members of catalogs no longer consumed
// are removed (save those that migrated to one still consumed), and every
// member's settings are taken again from the new templates. The caller
// holds d.reloadMu and has installed cfg.
func (d *daemon) reloadCatalogs(cfg *config.Config) {
	c := d.cat
	c.mu.Lock()
	var drop []string
	for _, a := range c.reg.Members() {
		if z := cfg.Zone(a.Catalog); z == nil || z.Catalog != config.CatalogConsume {
			if !slices.Contains(drop, a.Catalog) {
				drop = append(drop, a.Catalog)
			}
		}
	}
	var remove []string
	for _, cat := range drop {
		for _, a := range c.reg.Drop(cat) {
			remove = append(remove, a.Member.Zone)
		}
		c.lmu.Lock()
		delete(c.latest, cat)
		c.lmu.Unlock()
		d.zlog.Info("catalog no longer consumed; its members go", "catalog", cat)
	}
	var again []config.Zone
	for _, a := range c.reg.Members() {
		if old, ok := c.members[a.Member.Zone]; ok {
			nz := cfg.MemberZone(cfg.Zone(a.Catalog), a.Member.Zone, a.Member.Groups)
			if !reflect.DeepEqual(old, nz) {
				again = append(again, nz)
			}
		}
	}
	c.mu.Unlock()
	if err := d.RemoveZones(remove); err != nil {
		d.zlog.Error("catalog: remove members", "err", err)
	}
	if err := d.AddZones(again); err != nil {
		d.zlog.Error("catalog: member settings", "err", err)
	}
}
