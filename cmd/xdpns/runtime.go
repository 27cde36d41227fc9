package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/xfr"
)

// Run-time zones: secondary zones added to a running serve by `xdpns zone
// add` (and, later, by a catalog consumer through the same two methods,
// addRuntimeZone and removeRuntimeZone), kept in xfr.runtime-zones so they
// survive a restart without the operator's YAML being rewritten.
//
// Cost: an add or a remove touches one zone in the xfr Manager
// (Manager.AddZone/RemoveZone), the responder (a copy-on-write shardmap
// put) and the transfers-out server only when the zone has allow-transfer
// or notify. It rewrites the whole file (about 100 bytes per zone), the
// part that grows with the number of run-time zones. XDP builds a new
// generation of its maps for a zone set that changed (fastPath.sync),
// which grows with every zone served: once per add (putPending) and once
// per remove.
//
// Who wins: the configuration. A zone in the YAML is never added at run
// time; a zone added at run time that a later YAML (reload, restart) also
// holds is dropped from the run-time set, with a message naming both
// places, and goes on with the YAML's settings and the data it has.

// runtimeState is the daemon's set of run-time zones; guarded by d.mu,
// changed under d.reloadMu.
type runtimeState struct {
	path  string               // xfr.runtime-zones; "" off
	zones []config.RuntimeZone // in the order added, as in the file
	names map[string]int       // index in zones
	// broken is why the file could not be read (start or reload): the
	// zones it holds are not known, so adds and removes are refused
	// rather than overwrite it.
	broken error
	// claims lets other owners of zone names (a catalog consumer) refuse
	// an add: the error says who holds the name.
	claims []func(name string) error
}

// Errors of addRuntimeZone and removeRuntimeZone callers may test.
var (
	errRuntimeOff     = errors.New("run-time zones are off (xfr.runtime-zones is empty)")
	errRuntimeBroken  = errors.New("the run-time zones file is broken")
	errInConfig       = errors.New("zone is in the configuration")
	errAlreadyAdded   = errors.New("zone was already added at run time")
	errNotRuntimeZone = errors.New("zone was not added at run time")
	errOtherOwner     = errors.New("zone was added by another owner")
)

func (s *runtimeState) set(zones []config.RuntimeZone) {
	s.zones = zones
	s.names = make(map[string]int, len(zones))
	for i, z := range zones {
		s.names[z.Name] = i
	}
}

// loadRuntime reads the run-time zones of cfg at start. A broken file is
// logged with its file:line errors and leaves the set empty (and adds
// refused); the configuration's zones serve regardless.
func (d *daemon) loadRuntime(cfg *config.Config) {
	d.rt.path = cfg.Xfr.RuntimeZones
	zones, shadowed, err := config.LoadRuntimeZones(cfg)
	for _, s := range shadowed {
		d.log.Warn("run-time zone dropped", "err", s.Error())
	}
	if err != nil {
		d.rt.broken = err
		for _, line := range strings.Split(err.Error(), "\n") {
			d.log.Error("run-time zones not served; fix the file, then `xdpns zone reload`", "err", line)
		}
		d.rt.set(nil)
		return
	}
	d.rt.set(zones)
	if len(shadowed) > 0 {
		if err := d.writeRuntime(zones); err != nil {
			d.log.Error("run-time zones file not rewritten", "err", err)
		}
	}
	if len(zones) > 0 {
		d.log.Info("run-time zones", "file", d.rt.path, "zones", len(zones))
	}
}

// reloadRuntime re-reads the run-time zones file against the new
// configuration cfg (a reload). When it cannot be read the zones served
// stay as they are (with the settings they had). It returns the messages
// for the reload's answer. With d.reloadMu held.
func (d *daemon) reloadRuntime(cfg *config.Config) (msgs []string, ok bool) {
	zones, shadowed, err := config.LoadRuntimeZones(cfg)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range shadowed {
		d.log.Warn("run-time zone dropped", "err", s.Error())
		msgs = append(msgs, s.Error())
	}
	if cfg.Xfr.RuntimeZones != d.rt.path {
		d.log.Warn("xfr.runtime-zones changed; restart to apply it")
	}
	if err != nil {
		d.rt.broken = err
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				msgs = append(msgs, e.Error())
			}
		} else {
			msgs = append(msgs, err.Error())
		}
		d.log.Error("run-time zones file broken; its zones keep serving as they were", "err", err)
		return msgs, false
	}
	d.rt.broken = nil
	d.rt.set(zones)
	if len(shadowed) > 0 {
		if err := d.writeRuntime(zones); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	return msgs, true
}

// effective is cfg with the run-time zones after its own: what the xfr
// Manager and the transfers-out server are built from.
func (d *daemon) effective(cfg *config.Config) *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.rt.zones) == 0 {
		return cfg
	}
	eff := *cfg
	eff.Zones = make([]config.Zone, 0, len(cfg.Zones)+len(d.rt.zones))
	eff.Zones = append(eff.Zones, cfg.Zones...)
	inCfg := make(map[string]bool, len(cfg.Zones))
	for _, z := range cfg.Zones {
		inCfg[z.Name] = true
	}
	for _, z := range d.rt.zones {
		if !inCfg[z.Name] {
			eff.Zones = append(eff.Zones, z.Zone)
		}
	}
	return &eff
}

// writeRuntime replaces the run-time zones file with zones: a temporary
// file in the same directory, fsynced, renamed over the old one, and the
// directory fsynced, so a crash leaves the old file or the new one.
func (d *daemon) writeRuntime(zones []config.RuntimeZone) error {
	path := d.rt.path
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("run-time zones: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("run-time zones: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(config.MarshalRuntimeZones(zones))
	if err == nil {
		err = f.Chmod(0o640)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("run-time zones: write %s: %w", path, err)
	}
	if df, err := os.Open(dir); err == nil {
		err = df.Sync()
		df.Close()
		if err != nil {
			return fmt.Errorf("run-time zones: sync %s: %w", dir, err)
		}
	}
	return nil
}

// addRuntimeZone adds a secondary zone to the running serve: checked
// against the configuration, the run-time set and the claims, written to
// the run-time zones file, then served (SERVFAIL until its first transfer,
// which starts at once) and kept up to date like a configured secondary.
// The zone comes from config.NewRuntimeZone (a catalog member builds its
// own with Owner set). Nothing changes when it fails.
func (d *daemon) addRuntimeZone(rz config.RuntimeZone) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	cfg, mgr, path, broken := d.cfg, d.sec, d.rt.path, d.rt.broken
	_, added := d.rt.names[rz.Name]
	var owner string
	if added {
		owner = d.rt.zones[d.rt.names[rz.Name]].Owner
	}
	claims := d.rt.claims
	d.mu.Unlock()
	switch cz := cfg.Zone(rz.Name); {
	case path == "":
		return errRuntimeOff
	case broken != nil:
		return fmt.Errorf("%w (%v); fix it, then `xdpns zone reload`", errRuntimeBroken, firstLine(broken))
	case cz != nil:
		return fmt.Errorf("%w: %s is at %s:%d", errInConfig, rz.Name, cfg.File, cz.Line)
	case added:
		return fmt.Errorf("%w: %s%s", errAlreadyAdded, rz.Name, ownerText(owner))
	}
	for _, claim := range claims {
		if err := claim(rz.Name); err != nil {
			return err
		}
	}
	// The zone's xfr settings, resolved against the configuration's keys
	// and timers alone: no other zone is looked at.
	one := *cfg
	one.Zones = []config.Zone{rz.Zone}
	xz := xfrConfig(&one).Zones[0]

	d.mu.Lock()
	next := append(slices.Clip(d.rt.zones), rz)
	d.mu.Unlock()
	if err := d.writeRuntime(next); err != nil {
		return err
	}
	d.mu.Lock()
	d.rt.zones = next
	d.rt.names[rz.Name] = len(next) - 1
	d.mu.Unlock()

	d.putPending(rz.Name)
	// Transfer-out settings (NOTIFY targets, ACLs) before the first
	// transfer: it may publish before AddZone returns, and a publish
	// without them sends no NOTIFY downstream.
	outSettings := len(rz.Notify)+len(rz.AllowTransfer.From)+len(rz.AllowTransfer.Keys) > 0
	if outSettings {
		if err := d.startXfrout(d.withMembers(d.effective(cfg))); err != nil {
			d.log.Error("transfer settings not applied", "zone", rz.Name, "err", err)
		}
	}
	d.mu.Lock()
	noStore := d.xcfg.StateDir == "" && cfg.Xfr.StateDir != ""
	d.mu.Unlock()
	var err error
	if noStore {
		// The first secondary of a serve without any: its Manager was
		// built without a state directory, which only a new one takes.
		d.stopSecondaries()
		err = d.startSecondaries(d.effective(cfg))
	} else {
		if err = mgr.AddZone(xz); err == nil {
			d.mu.Lock()
			d.xcfg.Zones = append(d.xcfg.Zones, xz)
			d.mu.Unlock()
		}
	}
	if err != nil {
		d.log.Error("run-time zone not started", "zone", rz.Name, "err", err)
		d.mu.Lock()
		d.rt.set(next[:len(next)-1])
		d.mu.Unlock()
		if werr := d.writeRuntime(next[:len(next)-1]); werr != nil {
			d.log.Error("run-time zones file not restored", "err", werr)
		}
		d.removeZone(rz.Name)
		if outSettings {
			if err := d.startXfrout(d.withMembers(d.effective(cfg))); err != nil {
				d.log.Error("transfer settings not restored", "zone", rz.Name, "err", err)
			}
		}
		return fmt.Errorf("zone %s: %w", rz.Name, err)
	}
	d.zlog.Info("added at run time", "zone", rz.Name, "owner", rz.Owner, "primaries", len(rz.Primaries))
	return nil
}

// removeRuntimeZone stops serving a zone added at run time (answers become
// REFUSED, XDP entries go), stops its transfers, deletes its files in the
// state directory and its entry in the run-time zones file. owner must be
// the one that added it ("" for the command line).
func (d *daemon) removeRuntimeZone(name, owner string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	cfg, mgr, broken := d.cfg, d.sec, d.rt.broken
	i, added := d.rt.names[name]
	var rz config.RuntimeZone
	if added {
		rz = d.rt.zones[i]
	}
	d.mu.Unlock()
	switch cz := cfg.Zone(name); {
	case cz != nil:
		return fmt.Errorf("%w: %s is at %s:%d; remove it there and `xdpns zone reload`", errInConfig, name, cfg.File, cz.Line)
	case broken != nil:
		return fmt.Errorf("%w (%v); fix it, then `xdpns zone reload`", errRuntimeBroken, firstLine(broken))
	case !added:
		return fmt.Errorf("%w: %s", errNotRuntimeZone, name)
	case rz.Owner != owner:
		return fmt.Errorf("%w: %s%s", errOtherOwner, name, ownerText(rz.Owner))
	}
	d.mu.Lock()
	next := slices.Delete(slices.Clone(d.rt.zones), i, i+1)
	d.mu.Unlock()
	if err := d.writeRuntime(next); err != nil {
		return err
	}
	d.mu.Lock()
	d.rt.set(next)
	d.xcfg.Zones = slices.DeleteFunc(slices.Clone(d.xcfg.Zones), func(z xfr.Zone) bool { return z.Name == name })
	d.mu.Unlock()
	// Transfers first, so nothing publishes the zone again; then the
	// responder and XDP.
	if err := mgr.RemoveZone(name, true); err != nil && !errors.Is(err, xfr.ErrUnknownZone) {
		d.log.Error("run-time zone removal", "zone", name, "err", err)
	}
	d.removeZone(name)
	if len(rz.Notify)+len(rz.AllowTransfer.From)+len(rz.AllowTransfer.Keys) > 0 {
		if err := d.startXfrout(d.withMembers(d.effective(cfg))); err != nil {
			d.log.Error("transfer settings not applied", "zone", name, "err", err)
		}
	}
	d.zlog.Info("removed at run time", "zone", name, "owner", owner)
	return nil
}

// isRuntime reports whether the zone was added at run time, and by whom.
func (d *daemon) isRuntime(name string) (owner string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, ok := d.rt.names[name]
	if !ok {
		return "", false
	}
	return d.rt.zones[i].Owner, true
}

// waitFirstTransfer waits up to wait for an added zone to be served (or
// its first transfer to fail) and says which.
func (d *daemon) waitFirstTransfer(name string, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		st, err := d.manager().ZoneStatus(name)
		if err != nil {
			return err.Error()
		}
		switch {
		case st.State != xfr.StateLoading:
			return fmt.Sprintf("serving serial %d from %s", st.Serial, st.Source)
		case st.LastError != "":
			return "not transferred yet: " + st.LastError + "; retrying, see `xdpns zone status " + name + "`"
		case time.Now().After(deadline):
			return "first transfer still running; see `xdpns zone status " + name + "`"
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ownerText(owner string) string {
	if owner == "" {
		return " (by `xdpns zone add`)"
	}
	return " (by " + owner + ")"
}

// runtimeNames lists the run-time zones.
func (d *daemon) runtimeNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.rt.zones))
	for i, z := range d.rt.zones {
		out[i] = z.Name
	}
	return out
}

// runtimeHas reports whether name is a run-time zone.
func (d *daemon) runtimeHas(name string) bool {
	_, ok := d.isRuntime(name)
	return ok
}

// keepRuntime is newX with the run-time zones (names) as oldX has them:
// a reload that cannot read the run-time zones file leaves them running
// as they are.
func keepRuntime(newX, oldX xfr.Config, names []string) xfr.Config {
	newX.Zones = slices.Clone(newX.Zones)
	for _, z := range oldX.Zones {
		if slices.Contains(names, z.Name) && !slices.ContainsFunc(newX.Zones, func(n xfr.Zone) bool { return n.Name == z.Name }) {
			newX.Zones = append(newX.Zones, z)
		}
	}
	if len(newX.Zones) > 0 && newX.StateDir == "" {
		newX.StateDir = oldX.StateDir
	}
	return newX
}

// Control commands of run-time zones.
const (
	ctlZoneAdd    = "zone-add"
	ctlZoneRemove = "zone-remove"
)

// zoneAddArgs is a zone-add request: the options of `xdpns zone add`.
type zoneAddArgs struct {
	Primaries     []string `json:"primaries"`
	Key           string   `json:"key,omitempty"`
	AllowNotify   []string `json:"allow_notify,omitempty"`
	AXFROnly      bool     `json:"axfr_only,omitempty"`
	AllowTransfer []string `json:"allow_transfer,omitempty"`
	TransferKeys  []string `json:"transfer_keys,omitempty"`
	Notify        []string `json:"notify,omitempty"`
	NotifyKey     string   `json:"notify_key,omitempty"`
	// WaitMS bounds the wait for the first transfer before answering
	// (0: answer at once).
	WaitMS int `json:"wait_ms,omitempty"`
}

// maxAddWait bounds a zone-add's wait, below the control write timeout.
const maxAddWait = 30 * time.Second

func (d *daemon) controlAdd(name string, a *zoneAddArgs) ctlResponse {
	if name == "" || a == nil {
		return ctlResponse{Error: "zone-add needs a zone name and its primaries"}
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	rz, err := config.NewRuntimeZone(config.RuntimeZoneRequest{
		Name: name, Primaries: a.Primaries, Key: a.Key, AllowNotify: a.AllowNotify, AXFROnly: a.AXFROnly,
		AllowTransfer: a.AllowTransfer, TransferKeys: a.TransferKeys, Notify: a.Notify, NotifyKey: a.NotifyKey,
	}, cfg)
	if err != nil {
		return ctlResponse{Error: fmt.Sprintf("zone %s: %v", name, err)}
	}
	if err := d.addRuntimeZone(rz); err != nil {
		return ctlResponse{Error: err.Error()}
	}
	msg := fmt.Sprintf("zone %s added (kept in %s)", rz.Name, d.rt.path)
	if a.WaitMS > 0 {
		msg += "; " + d.waitFirstTransfer(rz.Name, min(time.Duration(a.WaitMS)*time.Millisecond, maxAddWait))
	}
	return ctlResponse{OK: true, Message: msg}
}

func (d *daemon) controlRemove(name string) ctlResponse {
	if name == "" {
		return ctlResponse{Error: "zone-remove needs a zone name"}
	}
	if err := d.removeRuntimeZone(name, ""); err != nil {
		return ctlResponse{Error: err.Error()}
	}
	return ctlResponse{OK: true, Message: fmt.Sprintf("zone %s removed: no longer served, its state files deleted", name)}
}

// addClaim registers a check every run-time add must pass: a catalog
// consumer returns an error naming the catalog for the names its members
// hold, so `xdpns zone add` of a member is refused with that reason. The
// claim runs with the add's lock held: it must not add or remove zones.
func (d *daemon) addClaim(claim func(name string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rt.claims = append(d.rt.claims, claim)
}

// putPending serves the placeholder of an added zone (SERVFAIL until its
// first transfer). XDP is told only when a zone enclosing it is served:
// otherwise XDP has no entry for any of its names and passes them to Go
// already, and the first transfer loads the zone, so an add costs one
// generation of the XDP maps instead of two.
func (d *daemon) putPending(name string) {
	d.zmu.Lock()
	defer d.zmu.Unlock()
	if d.r.Zone(name) != nil {
		return
	}
	rz := responder.Pending(name)
	if d.xdp != nil && !d.enclosedLocked(name) {
		d.r.Put(rz)
		d.served[name] = rz
		return
	}
	d.putLocked(rz, nil, nil)
}

// enclosedLocked reports whether a zone served encloses name. With d.zmu
// held.
func (d *daemon) enclosedLocked(name string) bool {
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		if _, ok := d.served[name[off:]]; ok {
			return true
		}
	}
	_, root := d.served["."]
	return root
}
