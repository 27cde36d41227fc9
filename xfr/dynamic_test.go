package xfr

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// AddZone starts one zone (transferred at once) without touching the
// others; RemoveZone stops it, deletes its files with purge, and leaves
// the rest running; a Reconfigure afterwards sees the zone set they made.
func TestAddRemoveZone(t *testing.T) {
	t.Parallel()
	p := startMulti(t, nil)
	dir := t.TempDir()
	rec := newRecorder()
	cfg := Config{StateDir: dir, Zones: []Zone{zoneOf("a.test.", p)}}
	m, _ := startManager(t, cfg, rec)
	rec.wait(t, "a.test.", 1)

	if err := m.AddZone(zoneOf("B.test", p)); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "b.test.", 1)
	if err := m.AddZone(zoneOf("b.test.", p)); !errors.Is(err, ErrZoneExists) {
		t.Errorf("AddZone twice: %v", err)
	}
	if err := m.AddZone(Zone{Name: "c.test."}); !errors.Is(err, ErrConfig) {
		t.Errorf("AddZone without primaries: %v", err)
	}
	if got := rec.serials("a.test."); len(got) != 1 {
		t.Errorf("a.test. published %v, want once", got)
	}
	if names := statusNames(m); !slices.Equal(names, []string{"a.test.", "b.test."}) {
		t.Errorf("Status lists %v", names)
	}
	// The new zone inherits the Manager's timers, as Reconfigure gives
	// them: a Reconfigure with it leaves it untouched.
	cfg.Zones = append(cfg.Zones, zoneOf("b.test.", p))
	if ch, err := m.Reconfigure(cfg); err != nil || ch.Kept != 2 || len(ch.Added)+len(ch.Changed)+len(ch.Removed) != 0 {
		t.Errorf("Reconfigure to the same set: %+v %v", ch, err)
	}
	zoneFile := filepath.Join(dir, "b.test.zone")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// Saved just after it is published.
		if _, err := os.Stat(zoneFile); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}

	if err := m.RemoveZone("b.test.", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(zoneFile); !os.IsNotExist(err) {
		t.Errorf("zone file after RemoveZone with purge: %v", err)
	}
	if _, err := m.ZoneStatus("b.test."); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("status of a removed zone: %v", err)
	}
	if err := m.RemoveZone("b.test.", true); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("RemoveZone twice: %v", err)
	}
	_, before, _ := p.counts("b.test.")
	time.Sleep(50 * time.Millisecond)
	if _, after, _ := p.counts("b.test."); after != before {
		t.Errorf("b.test. transferred after its removal")
	}
	if err := m.Refresh("a.test."); err != nil {
		t.Errorf("a.test. after b.test. went: %v", err)
	}
	if names := statusNames(m); !slices.Equal(names, []string{"a.test."}) {
		t.Errorf("Status lists %v", names)
	}
	stopWithin(t, m, 5*time.Second)
	if err := m.AddZone(zoneOf("d.test.", p)); !errors.Is(err, ErrStopped) {
		t.Errorf("AddZone after Stop: %v", err)
	}
}
