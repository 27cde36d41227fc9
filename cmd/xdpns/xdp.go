package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// fastPath is the XDP program of a serve (docs/xdp.md): loaded at start,
// attached to the configured interfaces once the zones are loaded, and its
// maps kept holding exactly the zones the responder answers from compiled
// answers (xdpZones). The daemon calls sync after every change of the
// responder's zones, in the same order, so XDP never answers a version Go
// does not serve any more.
type fastPath struct {
	x      *loader.XDP
	log    *slog.Logger
	cfg    config.XDP
	mode   loader.Mode
	pinned bool
	// tables gives the responder's compiled table of a zone version, so
	// that a full load does not compile every zone a second time.
	tables loader.Tables
	// trim, when set, is called after a load of bulkNames entries or
	// more: laying out the image leaves as much garbage as compiling did
	// (a 1M-name zone: 1.1 GiB of RSS after it, 0.5 without).
	trim func()

	// syncMu serialises what writes the maps or attaches: start, sync,
	// detach, close. The daemon also calls sync under its zone lock.
	syncMu  sync.Mutex
	started bool // the daemon's zones are loaded: changes reach the maps
	held    int  // > 0 during a reload: changes wait for release
	// eased > 0 while the zones served at start are compiled: a change
	// that only gives XDP answers it passes now waits for ease's end, so
	// thousands of zones compiled one by one cost one load, not one each
	// (changes XDP must see at once still reach it).
	eased int
	dirty bool // a change arrived while held or before start
	// pending is the newest zone set whose differences from the maps
	// only add answers (deferrable): loaded once by flush, so that a
	// catalog bringing thousands of members costs a few full loads, not
	// one per member. loadTook is the last full load's duration.
	pending  map[string]*zone.Zone
	flushing *time.Timer
	loadTook time.Duration

	// mu guards what status reports (and x once closed).
	mu       sync.Mutex
	links    []xdpLink
	inXDP    map[string]*zone.Zone // origin -> version in the maps, loaded by this process
	loaded   bool                  // this process has loaded the maps
	closed   bool                  // detached or stopped: x is closed
	why      string                // why it was closed
	adopted  bool                  // New took over pinned answers
	lastErr  string
	loads    uint64 // full loads (LoadZones)
	updates  uint64 // per-zone updates (UpdateZone)
	failures uint64
}

// xdpLink is one interface the program is attached to.
type xdpLink struct {
	ifname string
	mode   loader.Mode
	l      link.Link
}

// loaderConfig is what the loader must know to answer exactly as the
// responder does: the port and addresses served (XDPService), our EDNS
// payload size, whether NSID is on (NSID queries go to Go), and the
// largest message the interfaces carry.
func loaderConfig(cfg *config.Config) loader.Config {
	port, addrs := cfg.XDPService()
	return loader.Config{
		Port:         port,
		UDPPayload:   cfg.Server.UDPPayload,
		NSID:         cfg.Server.NSID != "",
		ServiceAddrs: addrs,
		MaxDNS:       maxDNS(cfg.XDP.Interfaces),
		IndexEntries: cfg.XDP.IndexEntries,
		StoreBlocks:  cfg.XDP.StoreBlocks,
		PinPath:      cfg.XDP.Pin,
	}
}

// Bytes below the MTU that are not DNS: IPv6 (the larger) and UDP headers.
const ipUDPHeaders = 40 + 8

// maxDNS is the largest DNS message XDP may send on every interface
// present: the smallest MTU less the IP and UDP headers; 0 (the loader's
// default, for a 1500-byte MTU) when none is found. A larger answer is
// passed to Go.
func maxDNS(ifnames []string) uint16 {
	best := 0
	for _, n := range ifnames {
		iface, err := net.InterfaceByName(n)
		if err != nil || iface.MTU <= 512+ipUDPHeaders {
			continue
		}
		if m := iface.MTU - ipUDPHeaders; best == 0 || m < best {
			best = m
		}
	}
	return uint16(min(best, 0xffff))
}

// checkBPFFS reports whether dir (or its nearest existing parent) is on a
// bpffs mount: pinning elsewhere fails, and an operator is better told why.
func checkBPFFS(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if errors.Is(err, unix.ENOENT) && p != "/" {
			continue
		}
		if err != nil {
			return fmt.Errorf("xdp.pin %s: %w", dir, err)
		}
		if st.Type != unix.BPF_FS_MAGIC {
			return fmt.Errorf("xdp.pin %s: %s is not on a bpffs mount (mount -t bpf bpf %s)", dir, p, p)
		}
		return nil
	}
}

// newFastPath loads the program for cfg, adopting pinned maps when
// xdp.pin is set; it attaches nothing yet. It returns nil and the status
// to report when XDP is off: not configured, not permitted (a container
// without CAP_BPF/CAP_NET_ADMIN/CAP_PERFMON), or failed. The daemon then serves from
// userspace only: the same answers, slower.
func newFastPath(cfg *config.Config, log *slog.Logger) (*fastPath, xdpStatus) {
	xc := cfg.XDP
	off := func(state string, err error) (*fastPath, xdpStatus) {
		return nil, xdpStatus{State: state, Reason: err.Error(), Pin: xc.Pin}
	}
	if !xc.Enabled() {
		if xc.Pin != "" && hasPins(xc.Pin) {
			removeStalePins(xc.Pin, log, errors.New("xdp.interfaces is empty"))
		}
		return off("off", errors.New("xdp.interfaces is empty"))
	}
	mode, err := loader.ParseMode(xc.Mode)
	if err != nil {
		return off("failed", err)
	}
	if xc.Pin != "" {
		if err := checkBPFFS(xc.Pin); err != nil {
			log.Error("XDP not started; serving from userspace only", "err", err)
			return off("failed", err)
		}
	}
	x, err := loader.New(loaderConfig(cfg))
	if err != nil && xc.Pin != "" && hasPins(xc.Pin) {
		// What an earlier serve pinned keeps answering from maps nobody
		// updates any more: remove it, whatever this serve can do.
		removeStalePins(xc.Pin, log, err)
		if !errors.Is(err, loader.ErrNotPermitted) {
			x, err = loader.New(loaderConfig(cfg)) // afresh (another version's maps)
		}
	}
	switch {
	case errors.Is(err, loader.ErrNotPermitted):
		log.Warn("XDP is not permitted here (needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON); serving from userspace only: the same answers, slower", "err", err)
		return off("not permitted", err)
	case err != nil:
		log.Error("XDP not started; serving from userspace only", "err", err)
		return off("failed", err)
	}
	f := &fastPath{x: x, log: log, cfg: xc, mode: mode, pinned: xc.Pin != "", adopted: x.Adopted(), inXDP: map[string]*zone.Zone{}}
	if f.adopted {
		log.Info("adopted pinned XDP answers; they are served until the zones are loaded", "pin", xc.Pin)
	}
	return f, xdpStatus{}
}

// hasPins reports whether dir holds anything (pinned maps or links).
func hasPins(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}

// removeStalePins removes the objects an earlier serve pinned under dir,
// which this serve cannot adopt (why): XDP would go on answering from maps
// no one updates. RemovePins detaches the links; without the privileges
// for that, unlinking the pins drops the links' last reference too.
func removeStalePins(dir string, log *slog.Logger, why error) {
	err := loader.RemovePins(dir)
	if err != nil {
		err = os.RemoveAll(dir)
	}
	if err != nil {
		log.Error("XDP pinned by an earlier serve could not be removed and may answer stale data; run `xdpns xdp detach`", "pin", dir, "err", err)
		return
	}
	log.Warn("XDP pinned by an earlier serve removed: this serve cannot adopt it, and it would answer stale data", "pin", dir, "why", why)
}

// xdpZones returns the zones XDP may answer, by origin: every served zone
// with compiled answers that has not expired; a zone Go answers by the
// engine alone (expired, not transferred yet, not compiled) maps to nil.
// The maps hold such a zone without entries, so that an enclosing zone's
// entries for its names (the referral, glue), which the responder answers
// from the child, are left out while the enclosing zone stays in XDP.
func xdpZones(served map[string]*responder.Zone) map[string]*zone.Zone {
	out := map[string]*zone.Zone{}
	for origin, rz := range served {
		if rz.Zone == nil || rz.Expired || rz.Table == nil {
			out[origin] = nil
		} else {
			out[origin] = rz.Zone
		}
	}
	return out
}

// start loads want, attaches the program to every configured interface
// and from then on lets changes reach the maps. Pinned links of
// interfaces no longer configured are removed. If no interface takes the
// program, XDP is closed and serve goes on from userspace.
func (f *fastPath) start(want map[string]*zone.Zone) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.started = true
	f.dirty = false
	f.load(want)
	if f.isClosed() {
		return // the maps could not even be emptied
	}
	if f.pinned {
		f.removeStaleLinks()
	}
	var links []xdpLink
	for _, ifname := range f.cfg.Interfaces {
		l, mode, err := f.x.Attach(ifname, f.mode)
		if err != nil {
			f.log.Error("XDP not attached; queries on this interface are answered from userspace", "interface", ifname, "mode", f.mode, "err", err)
			f.noteErr(err)
			if errors.Is(err, loader.ErrNotPermitted) {
				break
			}
			continue
		}
		mode = attachedMode(ifname, mode)
		f.log.Info("XDP attached", "interface", ifname, "mode", mode, "pinned", f.pinned)
		links = append(links, xdpLink{ifname: ifname, mode: mode, l: l})
	}
	f.mu.Lock()
	f.links = links
	f.mu.Unlock()
	if len(links) == 0 {
		f.log.Error("XDP attached to no interface; serving from userspace only")
		f.shut(true, "attached to no interface")
	}
}

// removeStaleLinks detaches links pinned for interfaces that are no
// longer configured.
func (f *fastPath) removeStaleLinks() {
	ifnames, err := loader.PinnedLinks(f.cfg.Pin)
	if err != nil {
		f.log.Error("pinned XDP links not listed", "pin", f.cfg.Pin, "err", err)
	}
	for _, ifname := range ifnames {
		if slices.Contains(f.cfg.Interfaces, ifname) {
			continue
		}
		if err := loader.RemoveLink(f.cfg.Pin, ifname); err != nil {
			f.log.Error("pinned XDP link of an interface no longer configured not removed", "interface", ifname, "err", err)
			continue
		}
		f.log.Info("pinned XDP link of an interface no longer configured removed", "interface", ifname)
	}
}

// sync brings the maps to want after a change of the responder's zones.
// ch, when not nil, is what CompileFrom reported for origin against the
// version base: it is applied incrementally when the maps hold base. Any
// other difference is a reload: of the one zone that changed (UpdateZone
// without changes), or of every zone when the set changed or several did.
//
// want gives the zones the responder serves; it is only called when the
// maps are written (it walks every zone: not once per zone of thousands).
func (f *fastPath) sync(want func() map[string]*zone.Zone, origin string, base *zone.Zone, ch *compile.Changes) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if !f.started || f.held > 0 || (f.eased > 0 && f.passes(origin)) {
		f.dirty = true
		return
	}
	if f.isClosed() {
		return
	}
	f.syncLocked(want(), origin, base, ch)
}

// passes reports whether XDP passes every query for names at or below
// origin to Go: it holds no data for origin nor for a zone above it.
// Whatever Go serves there now, XDP gives no answer of its own. A zone
// below origin is its own zone in the maps and keeps its answers.
func (f *fastPath) passes(origin string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := origin; ; n = zone.Parent(n) {
		if z := f.inXDP[n]; z != nil {
			return false
		}
		if n == "." || n == "" {
			return true
		}
	}
}

// ease and unease bracket the compile of the zones served at start
// (fastPath.eased); unease loads what changed meanwhile, in one go.
func (f *fastPath) ease() {
	f.syncMu.Lock()
	f.eased++
	f.syncMu.Unlock()
}

func (f *fastPath) unease(want func() map[string]*zone.Zone) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.eased--
	if f.eased > 0 || f.held > 0 || !f.dirty || !f.started || f.isClosed() {
		return
	}
	f.dirty = false
	f.syncLocked(want(), "", nil, nil)
}

func (f *fastPath) syncLocked(want map[string]*zone.Zone, origin string, base *zone.Zone, ch *compile.Changes) {
	if f.pending != nil {
		f.pending = want // flush loads the newest set, never an older one
	}
	f.mu.Lock()
	have, loaded := f.inXDP, f.loaded
	f.mu.Unlock()
	if loaded && !sameKeys(want, have) && deferrable(want, have) {
		f.deferLoad(want)
		return
	}
	if !loaded || !sameKeys(want, have) {
		f.load(want)
		return
	}
	var changed []string
	for o, z := range want {
		if have[o] != z {
			changed = append(changed, o)
		}
	}
	switch len(changed) {
	case 0:
		return
	case 1:
	default:
		f.load(want)
		return
	}
	o := changed[0]
	if have[o] == nil && want[o] != nil {
		// Its first data: until the load XDP passes its names.
		f.deferLoad(want)
		return
	}
	if want[o] == nil || have[o] == nil {
		// A zone left Go's engine or went to it: held without entries
		// in the maps, so a reload (ZonesFrom) decides again which
		// zone answers its names.
		f.load(want)
		return
	}
	if o != origin || have[o] != base {
		ch = nil
	}
	res, err := f.x.UpdateZone(want[o], ch)
	if err != nil {
		f.log.Warn("XDP update failed; reloading every zone", "zone", o, "err", err)
		f.noteErr(err)
		f.load(want)
		return
	}
	f.mu.Lock()
	f.inXDP = maps.Clone(have)
	f.inXDP[o] = want[o]
	f.updates++
	f.mu.Unlock()
	f.log.Debug("XDP updated", "zone", o, "serial", want[o].Serial(), "incremental", ch != nil,
		"keys", res.Keys, "records", res.Records, "shared", res.Shared, "reloaded", res.Reloaded, "collisions", res.Collisions)
}

// load makes want the answers XDP serves (a new generation). When that
// fails XDP must not keep answering what Go no longer serves: it is
// emptied (everything passed to Go); if even that fails, detached.
func (f *fastPath) load(want map[string]*zone.Zone) {
	f.pending = nil // want is newer than what waits
	start := time.Now()
	defer func() { f.loadTook = time.Since(start) }()
	zs := make([]*zone.Zone, 0, len(want))
	var goOnly []string
	for _, o := range slices.Sorted(maps.Keys(want)) {
		if want[o] == nil {
			goOnly = append(goOnly, o)
		} else {
			zs = append(zs, want[o])
		}
	}
	im, err := f.x.LoadZonesFrom(f.tables, goOnly, zs...)
	if err == nil {
		f.mu.Lock()
		f.inXDP, f.loaded = maps.Clone(want), true
		f.loads++
		f.mu.Unlock()
		f.log.Info("XDP loaded", "zones", len(zs), "entries", im.Entries, "store_bytes", im.StoreBytes(), "left_to_go", im.Collisions)
		if f.trim != nil && im.Entries >= bulkNames {
			f.trim()
		}
		return
	}
	f.log.Error("XDP load failed; XDP passes every query to userspace until the next zone change", "zones", len(zs), "err", err)
	f.noteErr(err)
	if _, err := f.x.LoadZones(); err != nil {
		f.log.Error("XDP could not be emptied; detaching it", "err", err)
		f.noteErr(err)
		f.shut(true, "detached after a failed load")
		return
	}
	f.mu.Lock()
	f.inXDP, f.loaded = map[string]*zone.Zone{}, true
	f.mu.Unlock()
}

// Deferred loads wait at least minDeferral, and at least as long as the
// last load took (so loads take at most about half a CPU while zones keep
// arriving), at most maxDeferral.
const (
	minDeferral = 100 * time.Millisecond
	maxDeferral = 500 * time.Millisecond
)

// deferrable reports whether every difference between want (the zones Go
// serves) and have (those in the maps) only adds answers XDP does not give
// yet: a zone new to the maps, or one going from Go alone (held in the maps
// by a record that passes its names) to its data. Until the load XDP
// passes those zones' queries and Go answers them, so waiting changes no
// answer. Not when a new zone lies below a zone XDP answers from entries:
// those would answer the new zone's names meanwhile (a referral, say),
// where Go answers from the new zone.
func deferrable(want, have map[string]*zone.Zone) bool {
	for o := range have {
		if _, ok := want[o]; !ok {
			return false // removed: XDP must stop answering it now
		}
	}
	for o, z := range want {
		h, ok := have[o]
		switch {
		case ok && (h == z || h == nil):
			continue // unchanged, or from Go alone to data
		case ok:
			return false // an update, or data to Go alone
		}
		_ = z
		for n, p := o, zone.Parent(o); p != n && p != ""; n, p = p, zone.Parent(p) {
			if hz, ok := have[p]; ok && hz != nil {
				return false
			}
		}
	}
	return true
}

// deferLoad loads want a little later (flush), with whatever else arrives
// meanwhile. Called with syncMu held.
func (f *fastPath) deferLoad(want map[string]*zone.Zone) {
	f.pending = want
	if f.flushing != nil {
		return
	}
	d := min(max(minDeferral, f.loadTook), maxDeferral)
	f.flushing = time.AfterFunc(d, f.flush)
}

// flush loads the pending zone set, unless a load came first.
func (f *fastPath) flush() {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.flushing = nil
	want := f.pending
	if want == nil || !f.started || f.held > 0 || f.isClosed() {
		if want != nil {
			f.dirty = true // release or the next change loads it
		}
		return
	}
	f.load(want)
}

func (f *fastPath) noteErr(err error) {
	f.mu.Lock()
	f.lastErr = err.Error()
	f.failures++
	f.mu.Unlock()
}

func (f *fastPath) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// hold makes changes wait (a reload changes many zones); release applies
// what changed meanwhile in one go.
func (f *fastPath) hold() {
	f.syncMu.Lock()
	f.held++
	f.syncMu.Unlock()
}

func (f *fastPath) release(want map[string]*zone.Zone) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.held--
	if f.held > 0 || !f.dirty || !f.started || f.isClosed() {
		return
	}
	f.dirty = false
	f.syncLocked(want, "", nil, nil)
}

// shut closes the program and maps. detach also takes the program off
// the interfaces: pinned links are unpinned first, so closing them
// detaches. Without detach pinned links stay (XDP keeps answering from
// the pinned maps); unpinned ones go with their last reference.
func (f *fastPath) shut(detach bool, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.why = why
	for _, l := range f.links {
		if detach && f.pinned {
			if err := l.l.Unpin(); err != nil {
				f.log.Error("unpin XDP link", "interface", l.ifname, "err", err)
			}
		}
		l.l.Close()
	}
	f.links = nil
	f.x.Close()
	f.closed = true
}

// close is serve's stop: with pinning the program stays attached and keeps
// answering from the pinned maps until the next serve adopts them (or
// `xdpns xdp detach`); without, it is detached.
func (f *fastPath) close() {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if f.isClosed() {
		return
	}
	if f.pinned {
		f.mu.Lock()
		n := len(f.links)
		f.mu.Unlock()
		f.shut(false, "serve stopped")
		if n > 0 {
			f.log.Info("XDP left attached and answering from the pinned maps (xdpns xdp detach removes it)", "pin", f.cfg.Pin)
		}
		return
	}
	f.shut(true, "serve stopped")
	f.log.Info("XDP detached")
}

// detach takes the program off every interface and removes the pins;
// serve goes on from userspace.
func (f *fastPath) detach() (string, error) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	var names []string
	for _, l := range f.links {
		names = append(names, l.ifname)
	}
	f.mu.Unlock()
	f.shut(true, "detached by `xdpns xdp detach`")
	msg := "XDP detached"
	if len(names) > 0 {
		msg += " from " + strings.Join(names, ", ")
	}
	if f.pinned {
		if err := loader.RemovePins(f.cfg.Pin); err != nil {
			return "", fmt.Errorf("remove pins under %s: %w", f.cfg.Pin, err)
		}
		msg += "; pins under " + f.cfg.Pin + " removed"
	}
	f.log.Info(msg + "; serving from userspace only")
	return msg + "; serving from userspace only until restarted", nil
}

// xdpStatus is what `xdpns xdp stats` shows.
type xdpStatus struct {
	// State is "attached", "off" (not configured), "not permitted",
	// "failed" (not started: Reason says why) or "detached" (stopped by
	// `xdpns xdp detach` or an error).
	State      string         `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	Interfaces []xdpInterface `json:"interfaces,omitempty"`
	Pin        string         `json:"pin,omitempty"`
	Adopted    bool           `json:"adopted,omitempty"` // took over pinned answers at start
	Zones      int            `json:"zones"`             // zones in the maps
	Served     int            `json:"served"`            // zones the responder serves
	Loads      uint64         `json:"loads"`
	Updates    uint64         `json:"updates"`
	Failures   uint64         `json:"failures"`
	LastError  string         `json:"last_error,omitempty"`
	// Answered is tx__answer + tx__truncated, Passed every pass__ counter:
	// summed over CPUs since the maps were created (pinned maps keep
	// counting across restarts).
	Answered uint64            `json:"answered"`
	Passed   uint64            `json:"passed"`
	Counters map[string]uint64 `json:"counters,omitempty"`
}

type xdpInterface struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
}

// serverCounters are the userspace server's socket counters since start.
type serverCounters struct {
	UDPQueries   uint64 `json:"udp_queries"`
	UDPResponses uint64 `json:"udp_responses"`
	TCPQueries   uint64 `json:"tcp_queries"`
	TCPConns     uint64 `json:"tcp_connections"`
	TCPRefused   uint64 `json:"tcp_refused"`
}

// status reads the counters and the state.
func (f *fastPath) status() xdpStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := xdpStatus{State: "attached", Pin: f.cfg.Pin, Adopted: f.adopted, Zones: inXDP(f.inXDP),
		Loads: f.loads, Updates: f.updates, Failures: f.failures, LastError: f.lastErr}
	if f.closed {
		st.State, st.Reason = "detached", f.why
		return st
	}
	if len(f.links) == 0 {
		st.State = "loaded" // not attached yet (start in progress)
	}
	for _, l := range f.links {
		st.Interfaces = append(st.Interfaces, xdpInterface{Name: l.ifname, Mode: l.mode.String()})
	}
	c, err := f.x.Stats()
	if err != nil {
		st.LastError = err.Error()
		return st
	}
	st.Counters = map[string]uint64{}
	for _, name := range loader.StatNames() {
		v := c.Get(name)
		st.Counters[name] = v
		switch {
		case strings.HasPrefix(name, "tx__"):
			st.Answered += v
		case strings.HasPrefix(name, "pass__"):
			st.Passed += v
		}
	}
	return st
}

// sameKeys reports whether a and b hold the same origins.
func sameKeys(a, b map[string]*zone.Zone) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// xdpAttachedTo reports whether an XDP program is attached to ifname in
// this network namespace (false when there is no such interface).
func xdpAttachedTo(ifname string) (bool, error) {
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return false, nil
	}
	l, err := netlink.LinkByIndex(iface.Index)
	if err != nil {
		return false, err
	}
	x := l.Attrs().Xdp
	return x != nil && x.Attached, nil
}

// attachedMode is the mode the kernel reports for ifname's XDP program
// (a pinned link taken over keeps the mode it was attached in).
func attachedMode(ifname string, asked loader.Mode) loader.Mode {
	l, err := netlink.LinkByName(ifname)
	if err != nil || l.Attrs().Xdp == nil {
		return asked
	}
	switch l.Attrs().Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return loader.ModeNative
	case nl.XDP_ATTACHED_SKB:
		return loader.ModeGeneric
	}
	return asked
}

// inXDP counts the zones whose answers are in the maps.
func inXDP(zs map[string]*zone.Zone) int {
	n := 0
	for _, z := range zs {
		if z != nil {
			n++
		}
	}
	return n
}
