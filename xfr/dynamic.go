package xfr

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// ErrZoneExists: AddZone was given a zone the Manager already keeps.
var ErrZoneExists = errors.New("already a secondary zone")

// AddZone adds one zone to a Manager, started or not, as Reconfigure does
// for a zone new in its configuration (loaded from disk when it has an
// unexpired copy, published through OnZone before AddZone returns, then
// started: it checks its primaries at once), without looking at the other
// zones: the cost does not grow with their number. zc inherits the
// Manager's default timers. An invalid zc wraps ErrConfig, a name already
// kept ErrZoneExists; neither changes anything.
func (m *Manager) AddZone(zc Zone) error {
	c := m.cfg
	c.Zones = []Zone{zc}
	if err := c.prepare(); err != nil {
		return err
	}
	zc = c.Zones[0]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	zs := m.newZone(zc)
	m.zmu.Lock()
	if m.zones[zc.Name] != nil {
		m.zmu.Unlock()
		return fmt.Errorf("%w: %s", ErrZoneExists, zc.Name)
	}
	// order is only appended to here and replaced whole elsewhere, so a
	// reader holding the old slice header keeps a consistent view.
	m.zones[zc.Name] = zs
	m.order = append(m.order, zs)
	m.zmu.Unlock()
	if m.started {
		zs.loadFromDisk()
		m.startZone(zs)
		zs.trigger() // a zone added at run time is transferred now
	}
	m.log.Info("secondary zone added", "zone", zc.Name)
	return nil
}

// RemoveZone stops one zone and waits for it (a transfer in flight is
// abandoned): after it returns the zone calls OnZone and OnExpire no more.
// With purge its files in the state directory (NAME.zone, NAME.ixfr,
// NAME.timers) are deleted too. The other
// zones are not touched. Like Reconfigure it must not be called from OnZone
// or OnExpire.
func (m *Manager) RemoveZone(name string, purge bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	zs := m.zone(name)
	if zs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownZone, name)
	}
	m.stopZone(zs)
	m.zmu.Lock()
	delete(m.zones, zs.cfg.Name)
	// A new slice: readers may be walking the old one.
	m.order = slices.DeleteFunc(slices.Clone(m.order), func(o *zoneState) bool { return o == zs })
	m.zmu.Unlock()
	if purge && m.store != nil {
		// NAME.corrupt files stay: they are kept for someone to look at.
		s := m.store
		for _, p := range []string{s.zonePath(zs.cfg.Name), s.journalPath(zs.cfg.Name), s.timersPath(zs.cfg.Name)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("zone %s removed; its state file: %w", zs.cfg.Name, err)
			}
		}
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("zone %s removed; state directory: %w", zs.cfg.Name, err)
		}
	}
	m.log.Info("secondary zone removed", "zone", zs.cfg.Name, "files_deleted", purge && m.store != nil)
	return nil
}
