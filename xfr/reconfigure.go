package xfr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"
)

// ErrRestart: the new configuration changes a setting shared by every zone
// (state directory, limits, timeouts, concurrency caps), which a running
// Manager cannot take. Nothing was changed; the caller builds a new Manager
// instead. The error names the settings.
var ErrRestart = errors.New("xfr: settings shared by every zone changed; a new Manager is needed")

// ErrStopped: the Manager was stopped.
var ErrStopped = errors.New("xfr: manager stopped")

// Changes is what Reconfigure did, by zone origin.
type Changes struct {
	Added   []string // in the new configuration's order
	Removed []string // in the old configuration's order
	Changed []string // settings changed; data, timers and counters kept
	Kept    int      // zones left untouched
}

// Reconfigure applies cfg to a Manager zone by zone, started or not:
//
//   - a zone whose settings are the same keeps running untouched: its data,
//     timers, counters and any transfer in flight;
//   - a removed zone's goroutine is stopped and waited for (a transfer in
//     flight is abandoned); its files in the state directory stay;
//   - an added zone is loaded from disk when it has an unexpired copy
//     (published through OnZone before Reconfigure returns, as Start does)
//     and started;
//   - a zone whose settings changed (primaries, keys, AllowNotify, timers,
//     AXFROnly) is stopped and started again with them, keeping the zone it
//     serves, its journal and its timers, and checks its primaries at once.
//
// Settings shared by every zone (StateDir, Limits, Timeouts, MaxTransfers,
// MaxQueries) cannot change: Reconfigure then returns an error wrapping
// ErrRestart and changes nothing. The default Timers may change: they
// change the zones that inherit them. cfg's OnZone, OnExpire and Logger are
// ignored: the Manager keeps its own. An invalid cfg wraps ErrConfig and
// changes nothing.
//
// After Reconfigure returns, a removed zone calls OnZone and OnExpire no
// more; per zone, calls stay in order. Reconfigure waits for the goroutines
// it stops, so it must not be called from OnZone or OnExpire, nor while
// holding a lock they take.
func (m *Manager) Reconfigure(cfg Config) (Changes, error) {
	var ch Changes
	if err := cfg.prepare(); err != nil {
		return ch, err
	}
	if diff := m.sharedDiff(&cfg); len(diff) > 0 {
		return ch, fmt.Errorf("%w: %s", ErrRestart, strings.Join(diff, ", "))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ch, ErrStopped
	}
	start := time.Now()

	m.zmu.RLock()
	old, oldOrder := m.zones, m.order
	m.zmu.RUnlock()
	next := make(map[string]*zoneState, len(cfg.Zones))
	order := make([]*zoneState, 0, len(cfg.Zones))
	var added, changed []*zoneState
	newCfg := map[*zoneState]Zone{}
	for _, zc := range cfg.Zones {
		zs := old[zc.Name]
		switch {
		case zs == nil:
			zs = m.newZone(zc)
			added = append(added, zs)
			ch.Added = append(ch.Added, zc.Name)
		case !sameZoneConfig(zs.cfg, zc):
			changed = append(changed, zs)
			newCfg[zs] = zc
			ch.Changed = append(ch.Changed, zc.Name)
		default:
			ch.Kept++
		}
		next[zc.Name] = zs
		order = append(order, zs)
	}
	var stop []*zoneState
	for _, zs := range oldOrder {
		if next[zs.cfg.Name] == nil {
			stop = append(stop, zs)
			ch.Removed = append(ch.Removed, zs.cfg.Name)
		}
	}
	stop = append(stop, changed...)

	// Cancel them all, then wait: the waits overlap.
	for _, zs := range stop {
		if zs.cancel != nil {
			zs.cancel()
		}
	}
	for _, zs := range stop {
		m.stopZone(zs)
	}
	for _, zs := range changed {
		zs.mu.Lock()
		zs.cfg = newCfg[zs]
		zs.mu.Unlock()
	}
	// From here NOTIFY, Status and Snapshot see the new set. An added
	// zone is visible before it loads from disk: what OnZone does with its
	// copy may read it back (Snapshot).
	m.zmu.Lock()
	m.zones, m.order = next, order
	m.zmu.Unlock()

	if m.started {
		for _, zs := range added {
			zs.loadFromDisk()
			m.startZone(zs)
		}
		for _, zs := range changed {
			// New primaries may hold a newer serial; new keys or
			// timers are best tried now.
			zs.trigger()
			m.startZone(zs)
		}
	}
	for _, name := range ch.Removed {
		m.log.Info("secondary zone removed; its files stay in the state directory", "zone", name)
	}
	for _, name := range ch.Added {
		m.log.Info("secondary zone added", "zone", name)
	}
	for _, name := range ch.Changed {
		m.log.Info("secondary zone settings changed; checking the primaries", "zone", name)
	}
	lvl := slog.LevelInfo
	if len(ch.Added)+len(ch.Removed)+len(ch.Changed) == 0 {
		lvl = slog.LevelDebug
	}
	m.log.Log(context.Background(), lvl, "reconfigured", "added", len(ch.Added), "removed", len(ch.Removed),
		"changed", len(ch.Changed), "kept", ch.Kept, "took", time.Since(start).Round(time.Microsecond))
	return ch, nil
}

// sharedDiff names the settings shared by every zone that differ between
// the Manager and cfg (both normalised).
func (m *Manager) sharedDiff(cfg *Config) []string {
	var diff []string
	if cfg.StateDir != m.cfg.StateDir {
		diff = append(diff, fmt.Sprintf("state directory %q→%q", m.cfg.StateDir, cfg.StateDir))
	}
	if cfg.Limits != m.cfg.Limits {
		diff = append(diff, "limits")
	}
	if cfg.Timeouts != m.cfg.Timeouts {
		diff = append(diff, "timeouts")
	}
	if cfg.MaxTransfers != m.cfg.MaxTransfers {
		diff = append(diff, fmt.Sprintf("max transfers %d→%d", m.cfg.MaxTransfers, cfg.MaxTransfers))
	}
	if cfg.MaxQueries != m.cfg.MaxQueries {
		diff = append(diff, fmt.Sprintf("max SOA queries %d→%d", m.cfg.MaxQueries, cfg.MaxQueries))
	}
	return diff
}

// sameZoneConfig reports whether two zone configurations are equal. A
// primary's tls.Config holds functions, which reflect.DeepEqual never
// finds equal: TLSID stands for it, or, when both are empty, the pointer.
func sameZoneConfig(a, b Zone) bool {
	if len(a.Primaries) != len(b.Primaries) {
		return false
	}
	for i := range a.Primaries {
		pa, pb := a.Primaries[i], b.Primaries[i]
		if pa.TLSID == "" && pb.TLSID == "" && pa.TLS != pb.TLS {
			return false
		}
	}
	strip := func(z Zone) Zone {
		z.Primaries = slices.Clone(z.Primaries)
		for i := range z.Primaries {
			z.Primaries[i].TLS = nil
		}
		return z
	}
	return reflect.DeepEqual(strip(a), strip(b))
}
