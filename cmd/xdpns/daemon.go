package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/cookie"
	"github.com/xdpns/xdpns/userspace/metrics"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/rrl"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/xfrout"
	"github.com/xdpns/xdpns/userspace/zone"
	"github.com/xdpns/xdpns/xfr"
)

// daemon is a running `xdpns serve`: the responder and its listeners, the
// zones served from files, the secondary zones kept by an xfr.Manager, and
// the control socket. serve, the demo and the tests all run one.
type daemon struct {
	cfgPath string
	started *config.Config // listener, responder and log settings come from here
	root    *slog.Logger
	log     *slog.Logger // component=serve
	zlog    *slog.Logger // component=zone
	r       *responder.Responder
	srv     *server.Server
	ctl     *controlServer
	metrics *metrics.Server // nil without metrics.listen (metrics.go)
	hooks   daemonHooks

	reloadMu sync.Mutex // one reload at a time (SIGHUP, control)

	ctx context.Context // parent of the Manager's work
	// gen counts Managers, so callbacks of a replaced one are ignored.
	gen atomic.Uint64
	// out serves transfers to downstream secondaries and sends their
	// NOTIFYs; replaced when a reload changes its settings.
	out atomic.Pointer[xfrout.Server]
	// notifyReady is set once the listeners are up: NOTIFYs sent earlier
	// would bring SOA queries to a closed port.
	notifyReady atomic.Bool

	// zmu orders every change of the served zones: the responder first,
	// then XDP, so both always hold the same versions (fastPath.sync).
	zmu    sync.Mutex
	served map[string]*responder.Zone // what the responder serves, by origin
	xdp    *fastPath                  // nil when XDP is off
	xdpOff xdpStatus                  // why, when it is
	trim   memTrim                    // after bulk loads
	// deferred, while not nil, collects the zones a starting Manager
	// publishes from its state directory: served by the engine at once,
	// compiled once every zone is served (startup.go).
	deferred *[]*zone.Zone
	rrl      *rrl.Limiter // server.rrl; nil when off (rrl.go)
	// cookies holds the server cookie secrets; nil when off (cookies.go).
	cookies *cookie.Jar
	// requireCookie is server.cookies.require as the responder has it.
	requireCookie bool

	rt runtimeState // zones added at run time (runtime.go); guarded by mu

	mu    sync.Mutex
	cfg   *config.Config       // the configuration applied last
	files map[string]*fileZone // by canonical name
	sec   *xfr.Manager         // never nil once started
	xcfg  xfr.Config           // what sec was built from, without callbacks
	ocfg  xfrout.Config        // what out was built from, without Source and Logger

	cat *consumer // consumed catalogs and their members (catalog.go)
}

// daemonHooks let the demo and tests watch the daemon.
type daemonHooks struct {
	// served is called after a new version of a secondary zone is served.
	served func(origin string, serial uint32)
}

// fileZone is a zone served from a file.
type fileZone struct {
	conf    config.Zone
	served  *responder.Zone // nil when it never loaded
	loaded  time.Time       // when served was loaded
	lastErr string          // of the last load, when it failed
}

// startDaemon serves cfg: file zones are loaded, then the secondaries
// stored on disk are published (so both answer from the first query), then
// the listeners start (with the NOTIFY, transfer and signed-query hooks),
// downstream targets are notified, and the control socket opens. Close
// stops it all.
func startDaemon(ctx context.Context, cfgPath string, cfg *config.Config, root *slog.Logger, hooks daemonHooks) (*daemon, error) {
	d := &daemon{
		cfgPath: cfgPath,
		started: cfg,
		root:    root,
		log:     component(root, "serve"),
		zlog:    component(root, "zone"),
		hooks:   hooks,
		files:   map[string]*fileZone{},
		served:  map[string]*responder.Zone{},
		cfg:     cfg,
		ctx:     ctx,
		cat:     newConsumer(),
	}
	d.cat.syncing = true // until the Manager published what is on disk
	jar, err := newCookieJar(cfg)
	if err != nil {
		return nil, err
	}
	d.cookies = jar
	d.requireCookie = cfg.Server.Cookies.Require
	d.loadRuntime(cfg)
	eff := d.effective(cfg) // with the run-time zones
	d.r = responder.New(responder.Config{
		UDPPayload:    cfg.Server.UDPPayload,
		NSID:          cfg.Server.NSID,
		Identity:      cfg.Server.Identity,
		Version:       cfg.Server.Version,
		Expire:        d.expireLeft,
		Cookies:       jar,
		RequireCookie: cfg.Server.Cookies.Require,
	})
	if err := d.startXfrout(eff); err != nil {
		return nil, err
	}
	// The zone files are read while XDP loads: making its maps and
	// verifying its program take half a second with a large zone's maps,
	// and neither needs the other until the zones are served.
	files := make(chan []loadedZone, 1)
	go func() { files <- readFiles(cfg, true) }()
	// Loaded (and pinned answers adopted) now; attached once the zones
	// are loaded and the listeners up.
	d.xdp, d.xdpOff = newFastPath(cfg, component(root, "xdp"))
	if d.xdp != nil {
		d.xdp.trim = d.trim.soon
		d.xdp.tables = func(z *zone.Zone) *compile.Table {
			if rz := d.r.Zone(z.Origin); rz != nil && rz.Zone == z {
				return rz.Table
			}
			return nil
		}
	}
	fail := func(err error) (*daemon, error) {
		if d.xdp != nil {
			d.xdp.close()
		}
		d.out.Load().Close()
		return nil, err
	}
	loaded, _ := d.serveFiles(cfg, <-files, true)
	if loaded == 0 && eff.Secondaries() == 0 {
		return fail(fmt.Errorf("no zone loaded; not serving (%d configured)", len(cfg.Zones)))
	}
	if err := d.startSecondaries(eff); err != nil {
		return fail(err)
	}
	d.syncCatalogs() // members stored on disk served before the listeners open
	sc := serverConfig(cfg)
	sc.Notify = d.handleNotify
	sc.Transfer = d.handleTransfer
	sc.Signed = d.handleSigned
	sc.RRL = d.newLimiter(cfg)
	d.xdpCookies(true)
	d.srv = server.New(sc, d.r, component(root, "server"))
	if err := d.srv.Start(); err != nil {
		d.stopSecondaries()
		return fail(fmt.Errorf("start: %w", err))
	}
	d.startXDP()
	// Tell downstream secondaries what we serve now, as BIND does at start.
	d.notifyReady.Store(true)
	for _, z := range eff.Zones {
		d.changed(z.Name)
	}
	if cfg.Control.Socket != "" {
		ctl, err := startControl(d, cfg.Control, component(root, "control"))
		if err != nil {
			// Like named with an unusable control channel: serve anyway.
			d.log.Error("control socket not available; zone commands will not work", "err", err)
		} else {
			d.ctl = ctl
		}
	}
	d.startMetrics()
	d.log.Info("serving", "files", loaded, "secondaries", cfg.Secondaries(), "listen", d.srv.Addrs())
	// Loading left the heap at up to twice what it holds (GOGC=100) with
	// the garbage of every zone's records and encodings; a provider's box
	// has memory for zones, not for that. One collection that returns the
	// freed pages: 10,000 zones of 100 names settle at ~0.6 GiB, not 1.2
	// (docs/performance.md). Transfers that complete later are not waited
	// for.
	go debug.FreeOSMemory()
	return d, nil
}

// Close stops the control socket, the listeners and the transfers, then
// XDP: detached, or with xdp.pin left attached, answering from the pinned
// maps until the next serve adopts them.
func (d *daemon) Close() error {
	d.stopMetrics()
	if d.ctl != nil {
		d.ctl.Close()
	}
	err := d.srv.Close()
	d.stopSecondaries()
	if d.xdp != nil {
		d.xdp.close()
	}
	d.out.Load().Close()
	return err
}

// putZone serves rz: in the responder, then in XDP. ch is what
// CompileFrom reported against base, the version served before (nil:
// compiled afresh).
func (d *daemon) putZone(rz *responder.Zone, base *zone.Zone, ch *compile.Changes) {
	d.zmu.Lock()
	defer d.zmu.Unlock()
	d.putLocked(rz, base, ch)
}

func (d *daemon) putLocked(rz *responder.Zone, base *zone.Zone, ch *compile.Changes) {
	origin := dns.CanonicalName(rz.Origin)
	if rz.Zone != nil {
		origin = dns.CanonicalName(rz.Zone.Origin)
	}
	d.r.Put(rz)
	d.served[origin] = rz
	if d.xdp != nil {
		d.xdp.sync(d.xdpWant, origin, base, ch)
	}
}

// xdpWant is what XDP should hold for the zones served. With d.zmu held.
func (d *daemon) xdpWant() map[string]*zone.Zone { return xdpZones(d.served) }

// removeZone stops serving a zone, in the responder and in XDP.
func (d *daemon) removeZone(origin string) {
	d.zmu.Lock()
	defer d.zmu.Unlock()
	origin = dns.CanonicalName(origin)
	d.r.Remove(origin)
	delete(d.served, origin)
	if d.xdp != nil {
		d.xdp.sync(d.xdpWant, origin, nil, nil)
	}
}

// startXDP loads every zone served into the maps and attaches XDP. Under
// the zone lock, so no change slips between the two.
func (d *daemon) startXDP() {
	if d.xdp == nil {
		return
	}
	d.zmu.Lock()
	defer d.zmu.Unlock()
	d.xdp.start(xdpZones(d.served))
}

// holdXDP and releaseXDP bracket a reload: its many changes reach XDP
// in one go at the end.
func (d *daemon) holdXDP() {
	if d.xdp != nil {
		d.xdp.hold()
	}
}

func (d *daemon) releaseXDP() {
	if d.xdp == nil {
		return
	}
	d.zmu.Lock()
	defer d.zmu.Unlock()
	d.xdp.release(xdpZones(d.served))
}

// xdpStatus is the state of XDP and its counters, with the number of
// zones the responder answers.
func (d *daemon) xdpStatus() xdpStatus {
	st := d.xdpOff
	if d.xdp != nil {
		st = d.xdp.status()
	}
	d.zmu.Lock()
	for _, rz := range d.served {
		if rz.Zone != nil && !rz.Expired {
			st.Served++
		}
	}
	d.zmu.Unlock()
	return st
}

// serverCounters reads the listeners' counters.
func (d *daemon) serverCounters() serverCounters {
	s := &d.srv.Stats
	return serverCounters{
		UDPQueries: s.UDPQueries.Load(), UDPResponses: s.UDPResponses.Load(),
		TCPQueries: s.TCPQueries.Load(), TCPConns: s.TCPConns.Load(), TCPRefused: s.TCPRefused.Load(),
	}
}

// manager returns the current xfr.Manager.
func (d *daemon) manager() *xfr.Manager {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sec
}

// handleNotify is the server's NOTIFY hook. A Manager without zones refuses
// every NOTIFY.
func (d *daemon) handleNotify(pkt []byte, from netip.Addr) []byte {
	return d.manager().HandleNotify(pkt, from)
}

// handleTransfer is the server's AXFR/IXFR hook (TCP).
func (d *daemon) handleTransfer(w io.Writer, pkt []byte, from netip.Addr) error {
	return d.out.Load().HandleTransfer(w, pkt, from)
}

// handleSigned is the server's hook for TSIG-signed queries (a downstream
// secondary's SOA check): verified, answered by the responder, signed.
func (d *daemon) handleSigned(pkt []byte, from netip.Addr, tcp bool) []byte {
	return d.out.Load().HandleSigned(pkt, from, tcp, d.respond)
}

// respond answers a query with the responder, outside the server's loops.
func (d *daemon) respond(pkt []byte, tcp bool) []byte {
	var s responder.Scratch
	return d.r.Respond(&s, nil, pkt, tcp)
}

// changed tells the zone's downstream secondaries about a new version.
func (d *daemon) changed(origin string) {
	if d.notifyReady.Load() {
		d.out.Load().Changed(origin)
	}
}

// xfroutConfig maps the transfer ACLs and NOTIFY targets of cfg (without
// Source and Logger). allow-transfer with keys but no addresses means from
// anywhere with one of the keys.
func xfroutConfig(cfg *config.Config) xfrout.Config {
	var out xfrout.Config
	for _, k := range cfg.Keys {
		out.Keys = append(out.Keys, xfrout.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	for _, z := range cfg.Zones {
		acl := xfrout.ACL{Prefixes: z.AllowTransfer.From, Keys: z.AllowTransfer.Keys}
		if len(acl.Prefixes) == 0 && len(acl.Keys) > 0 {
			acl.Prefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}
		out.Zones = append(out.Zones, xfrout.Zone{Name: z.Name, AllowTransfer: acl, Notify: z.Notify, NotifyKey: z.NotifyKey})
	}
	return out
}

// startXfrout builds the transfers-out server for cfg, replacing the
// current one (whose NOTIFYs in flight stop) when its settings changed.
func (d *daemon) startXfrout(cfg *config.Config) error {
	oc := xfroutConfig(cfg)
	d.mu.Lock()
	same := d.out.Load() != nil && reflect.DeepEqual(oc, d.ocfg)
	d.mu.Unlock()
	if same {
		return nil
	}
	full := oc
	full.Source = d.source
	full.Logger = component(d.root, "xfrout")
	s, err := xfrout.New(full)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	d.mu.Lock()
	d.ocfg = oc
	d.mu.Unlock()
	if old := d.out.Swap(s); old != nil {
		old.Close()
	}
	return nil
}

// expireLeft is the EDNS EXPIRE answered to SOA queries (RFC 7314): for a
// secondary the seconds left before its expire deadline, so a tier of our
// own secondaries cannot outlive the primary's data; false for file zones
// (the responder answers the SOA expire).
func (d *daemon) expireLeft(origin string) (uint32, bool) {
	mgr := d.manager()
	if mgr == nil {
		return 0, false
	}
	st, err := mgr.ZoneStatus(origin)
	if err != nil {
		return 0, false
	}
	return uint32(max(0, time.Until(st.ExpireAt)/time.Second)), true
}

// source is xfrout's view of a zone: a secondary's snapshot and IXFR
// journal from the Manager, else the zone the responder serves (a file
// zone: no journal, so IXFR gets the whole zone).
func (d *daemon) source(origin string) (xfrout.Snapshot, bool) {
	if mgr := d.manager(); mgr != nil {
		z, journal, expired, err := mgr.Snapshot(origin)
		if err == nil {
			if z == nil {
				return xfrout.Snapshot{}, false // never loaded
			}
			snap := xfrout.Snapshot{Zone: z, Journal: journal, Expired: expired}
			if st, err := mgr.ZoneStatus(origin); err == nil {
				if left := time.Until(st.ExpireAt); left > 0 {
					snap.Expire = left
				}
			}
			return snap, true
		}
	}
	rz := d.r.Zone(origin)
	if rz == nil {
		return xfrout.Snapshot{}, false
	}
	return xfrout.Snapshot{Zone: rz.Zone, Expired: rz.Expired}, true
}

// xfrConfig maps the secondary zones of cfg to an xfr.Config (without
// callbacks and logger). The configuration was checked: every key named
// exists.
func xfrConfig(cfg *config.Config) xfr.Config {
	x := cfg.Xfr
	out := xfr.Config{
		StateDir:     x.StateDir,
		Timers:       xfrTimers(x.Timers),
		Timeouts:     xfr.Timeouts{Query: x.Timeouts.Query, Read: x.Timeouts.Read, Transfer: x.Timeouts.Transfer},
		Limits:       xfr.Limits{MaxRecords: x.Limits.MaxRecords, MaxRRSize: x.Limits.MaxRRSize, JournalRecords: x.Limits.JournalRecords},
		MaxTransfers: x.MaxTransfers,
		MaxQueries:   x.MaxSOAQueries,
	}
	for _, z := range cfg.Zones {
		if !z.Secondary() {
			continue
		}
		xz := xfr.Zone{Name: z.Name, AllowNotify: z.AllowNotify, Timers: xfrTimers(z.Timers), AXFROnly: z.AXFROnly}
		for _, p := range z.Primaries {
			xp := xfr.Primary{Addr: p.Addr}
			if k := cfg.Key(p.Key); k != nil {
				xp.Key = &xfr.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
			}
			primaryTLS(cfg, p, &xp)
			xz.Primaries = append(xz.Primaries, xp)
		}
		out.Zones = append(out.Zones, xz)
	}
	if len(out.Zones) == 0 {
		out.StateDir = "" // nothing to keep: do not create the directory
	}
	return out
}

// xfrTimers maps timers; zero fields stay zero (inherit), and a jitter of 0
// (none) becomes xfr's -1.
func xfrTimers(t config.Timers) xfr.Timers {
	out := xfr.Timers{
		RefreshMin: t.RefreshMin, RefreshMax: t.RefreshMax,
		RetryMin: t.RetryMin, RetryMax: t.RetryMax,
		ExpireMin: t.ExpireMin, ExpireMax: t.ExpireMax,
	}
	if t.Jitter != nil {
		out.Jitter = *t.Jitter
		if out.Jitter == 0 {
			out.Jitter = -1
		}
	}
	return out
}

// startSecondaries builds and starts the Manager for cfg's secondary zones.
// Start publishes every zone stored on disk before it returns.
func (d *daemon) startSecondaries(cfg *config.Config) error {
	xc := xfrConfig(d.withMembers(cfg))
	gen := d.gen.Add(1)
	full := xc
	full.Logger = d.root
	full.OnZone = func(z *zone.Zone) { d.onZone(gen, z) }
	full.OnExpire = func(origin string, expired bool) { d.onExpire(gen, origin, expired) }
	mgr, err := xfr.New(full)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	// Set before Start, which publishes the zones on disk: xfrout reads
	// their snapshots from it.
	d.mu.Lock()
	d.sec, d.xcfg = mgr, xc
	d.mu.Unlock()
	d.pending(xc)
	d.zmu.Lock()
	d.deferred = new([]*zone.Zone)
	d.zmu.Unlock()
	err = mgr.Start(d.ctx)
	d.zmu.Lock()
	list := *d.deferred
	d.deferred = nil
	d.zmu.Unlock()
	go d.compileDeferred(list)
	return err
}

// pending serves a placeholder for every secondary of xc not served yet:
// a secondary without data (first start, nothing on disk) answers SERVFAIL
// until its first transfer, not REFUSED. Put before the Manager starts the
// zone: what it publishes from disk replaces the placeholder.
func (d *daemon) pending(xc xfr.Config) {
	for _, z := range xc.Zones {
		if d.r.Zone(z.Name) == nil {
			d.putZone(responder.Pending(z.Name), nil, nil)
		}
	}
}

// stopSecondaries stops the Manager; its zones keep being served as they
// are.
func (d *daemon) stopSecondaries() {
	d.mu.Lock()
	mgr := d.sec
	d.mu.Unlock()
	if mgr != nil {
		mgr.Stop()
	}
}

func (d *daemon) onZone(gen uint64, z *zone.Zone) {
	if d.gen.Load() != gen {
		return // a Manager replaced by a reload
	}
	// After an IXFR, z shares what did not change with the version served
	// until now, and only the answers the change touches are compiled;
	// XDP writes what changed. Under the zone lock: compile against the
	// version served, serve, then XDP, in that order.
	d.zmu.Lock()
	prev := d.r.Zone(z.Origin)
	if d.deferred != nil && (prev == nil || prev.Table == nil) {
		*d.deferred = append(*d.deferred, z)
		d.publishEngine(prev, z)
		return
	}
	if (prev == nil || z.DeltaFrom(prev.Zone) == nil) && z.Len() >= publishFirst {
		d.publishEngine(prev, z)
		d.compileServed(z)
		return
	}
	rz, ch, err := responder.CompileFrom(prev, z)
	if err != nil {
		ch = nil
		if rz, err = responder.Compile(z); err != nil {
			d.zlog.Warn("compile failed; answering without precomputed answers", "zone", z.Origin, "err", err)
			rz = &responder.Zone{Zone: z}
		}
	}
	var base *zone.Zone
	if prev != nil {
		base = prev.Zone
	}
	d.putLocked(rz, base, ch)
	d.zmu.Unlock()
	d.changed(z.Origin)
	if f := d.hooks.served; f != nil {
		f(z.Origin, z.Serial())
	}
	d.catalogServed(z)
}

// publishFirst is the zone size (names) from which a fully transferred zone
// is served by the engine at once and its answers compiled afterwards: a
// million names take seconds to compile, and the zone should answer before.
var publishFirst = 20000 // a variable for tests

// publishEngine serves z from the engine alone (XDP passes it, so no
// stale answer stays in the maps); compileServed serves its compiled
// answers later, without holding the zone lock, unless z was replaced
// meanwhile. Called from onZone with d.zmu held; returns with it released.
// The zone's next change waits for the compile when onZone calls both: xfr
// calls onZone in order per zone.
func (d *daemon) publishEngine(prev *responder.Zone, z *zone.Zone) {
	var base *zone.Zone
	if prev != nil {
		base = prev.Zone
	}
	d.putLocked(&responder.Zone{Zone: z}, base, nil)
	d.zmu.Unlock()
	d.changed(z.Origin)
	if f := d.hooks.served; f != nil {
		f(z.Origin, z.Serial())
	}
	d.catalogServed(z)
}

// compileServed compiles z, served by the engine alone until now, and
// serves the compiled version unless z was replaced or removed meanwhile.
func (d *daemon) compileServed(z *zone.Zone) {
	start := time.Now()
	if !d.compileAndServe(z) {
		return
	}
	d.zlog.Info("answers compiled", "zone", z.Origin, "serial", z.Serial(), "names", z.Len(), "took", time.Since(start).Round(time.Millisecond))
	if z.Len() >= bulkNames && d.xdp == nil {
		d.trim.soon() // with XDP, after the image is loaded (fastPath.trim)
	}
}

// compileAndServe is compileServed without the log: false when z was not
// compiled or no longer served.
func (d *daemon) compileAndServe(z *zone.Zone) bool {
	rz, err := responder.Compile(z)
	if err != nil {
		d.zlog.Warn("compile failed; answering without precomputed answers", "zone", z.Origin, "err", err)
		return false
	}
	d.zmu.Lock()
	defer d.zmu.Unlock()
	cur := d.r.Zone(z.Origin)
	if cur == nil || cur.Zone != z {
		return false // replaced or removed while compiling
	}
	rz.Expired = cur.Expired
	d.putLocked(rz, z, nil)
	return true
}

func (d *daemon) onExpire(gen uint64, origin string, expired bool) {
	if d.gen.Load() != gen {
		return
	}
	d.zmu.Lock()
	defer d.zmu.Unlock()
	if cur := d.r.Zone(origin); cur != nil && cur.Zone != nil {
		c := *cur
		c.Expired = expired
		d.putLocked(&c, cur.Zone, nil)
	}
}

// loadFiles reads every file zone of cfg and serves each that loads. A zone
// that fails keeps its previous version when there is one.
func (d *daemon) loadFiles(cfg *config.Config, atStart bool) (loaded, failed int) {
	return d.serveFiles(cfg, readFiles(cfg, atStart), atStart)
}

// readFiles reads every file zone of cfg. Small zones are compiled on the
// loading workers, except at start: then every zone is served by the
// engine first and compiled once all are served (startup.go).
func readFiles(cfg *config.Config, atStart bool) []loadedZone {
	return loadZonesWith(cfg, func(lz *loadedZone) {
		if lz.zone.Len() < publishFirst && !atStart {
			if lz.served, lz.compileErr = responder.Compile(lz.zone); lz.compileErr != nil {
				lz.served = &responder.Zone{Zone: lz.zone}
			}
		}
	})
}

// serveFiles serves the zones readFiles read; large ones are served by
// the engine at once and compiled in the background.
func (d *daemon) serveFiles(cfg *config.Config, zones []loadedZone, atStart bool) (loaded, failed int) {
	next := make(map[string]*fileZone)
	var deferred []*zone.Zone
	defer func() { go d.compileDeferred(deferred) }()
	for _, lz := range zones {
		zl := d.zlog.With("zone", lz.conf.Name, "file", lz.conf.File)
		for _, w := range lz.warns {
			zl.Warn("zone file", "warning", w.Error())
		}
		old := d.files[lz.conf.Name]
		if lz.err != nil {
			failed++
			fz := &fileZone{conf: lz.conf, lastErr: lz.err.Error()}
			if old != nil && old.served != nil {
				zl.Error("reload failed; the old version keeps serving", "err", lz.err, "serial", old.served.Zone.Serial())
				fz.served, fz.loaded = old.served, old.loaded
			} else {
				zl.Error("load failed; zone not served", "err", lz.err)
			}
			next[lz.conf.Name] = fz
			continue
		}
		served := lz.served
		if served == nil && atStart {
			served = &responder.Zone{Zone: lz.zone}
			deferred = append(deferred, lz.zone)
		} else if served == nil {
			// Large: served by the engine at once, compiled meanwhile
			// (as a large transferred zone is), so that starting or
			// reloading does not wait for a million answers.
			// Not waited for on Close: it ends by serving nothing if
			// the zone was replaced or removed meanwhile.
			served = &responder.Zone{Zone: lz.zone}
			go d.compileServed(lz.zone)
		} else if lz.compileErr != nil {
			// The responder answers such a zone from the engine alone.
			zl.Warn("compile failed; answering without precomputed answers", "err", lz.compileErr)
		}
		loaded++
		next[lz.conf.Name] = &fileZone{conf: lz.conf, served: served, loaded: time.Now()}
		d.putZone(served, nil, nil) // a file is compiled afresh: XDP reloads the zone
		zl.Info("loaded", "serial", lz.zone.Serial(), "records", lz.zone.RecordCount(), "compiled", served.Table != nil)
		if old == nil || old.served == nil || old.served.Zone.Serial() != lz.zone.Serial() {
			d.changed(lz.conf.Name)
		}
	}
	d.mu.Lock()
	d.files = next
	d.mu.Unlock()
	return loaded, failed
}

// reloadResult is what a reload did.
type reloadResult struct {
	Zones, Loaded, Failed int
	Restarted             bool // the secondaries' Manager was rebuilt
	// Secondary zones added, removed (or now served from a file) and
	// changed in place, when the Manager was not rebuilt.
	Added, Removed, Changed int
	Errors                  []string // configuration or zone errors, each leading with file:line
	RuntimeBroken           bool     // the run-time zones file has errors (in Errors)
}

// reload re-reads the configuration and every zone file (SIGHUP, `xdpns
// zone reload`). A configuration that does not parse changes nothing.
// Listener, responder, log and control settings are read at start only.
// Secondary zones are changed one by one on the running Manager
// (xfr.Manager.Reconfigure): the zones whose settings are the same are not
// touched, not even a transfer in flight. When an xfr setting shared by
// every zone changed (state directory, limits, timeouts, concurrency), the
// Manager is rebuilt instead: it serves again what is on disk and
// refreshes in the background.
func (d *daemon) reload() (reloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.holdXDP()
	defer d.releaseXDP()
	d.log.Info("reloading", "config", d.cfgPath)
	cfg, err := config.Load(d.cfgPath)
	if err != nil {
		var errs config.Errors
		res := reloadResult{}
		if errors.As(err, &errs) {
			for _, x := range errs {
				d.log.Error("config", "err", x.Error())
				res.Errors = append(res.Errors, x.Error())
			}
		} else {
			d.log.Error("config", "err", err)
			res.Errors = []string{err.Error()}
		}
		d.log.Error("reload aborted; nothing changed")
		return res, errors.New("configuration has errors; nothing changed")
	}
	// allow-include applies to the zones loaded now; the rest needs a restart.
	now, then := cfg.Server, d.started.Server
	now.AllowInclude, then.AllowInclude = false, false
	if !reflect.DeepEqual(now, then) || cfg.Log != d.started.Log || cfg.Control != d.started.Control {
		d.log.Warn("server, log or control settings changed; restart to apply them")
	}
	if !reflect.DeepEqual(cfg.XDP, d.started.XDP) {
		d.log.Warn("xdp settings changed; restart to apply them")
	}
	if cfg.Metrics.Listen != d.started.Metrics.Listen {
		d.log.Warn("metrics settings changed; restart to apply them")
	}

	oldRuntime := d.runtimeNames()
	rtMsgs, rtOK := d.reloadRuntime(cfg)
	d.mu.Lock()
	oldCfg, oldX, mgr := d.cfg, d.xcfg, d.sec
	d.mu.Unlock()
	eff := d.effective(cfg)               // with the run-time zones
	newX := xfrConfig(d.withMembers(eff)) // catalog members stay
	if !rtOK {
		// The run-time zones keep the settings they run with.
		newX = keepRuntime(newX, oldX, oldRuntime)
	}
	res := reloadResult{Zones: len(cfg.Zones), Errors: rtMsgs, RuntimeBroken: !rtOK}
	var restartWhy error
	inPlace, untouched := false, 0
	if !reflect.DeepEqual(oldX, newX) {
		// First the zones that stay secondaries, with their new settings,
		// and without those that go: they are stopped before the files
		// load and the zones removed below, so none can publish over them.
		// Added zones come at the end, after their placeholders.
		kept := newX
		kept.Zones = nil
		for _, z := range newX.Zones {
			if slices.ContainsFunc(oldX.Zones, func(o xfr.Zone) bool { return o.Name == z.Name }) {
				kept.Zones = append(kept.Zones, z)
			}
		}
		ch, err := mgr.Reconfigure(kept)
		if err != nil {
			restartWhy = err
			// Stopped first, so it cannot publish over a zone that
			// becomes a file zone below.
			d.stopSecondaries()
		} else {
			inPlace = true
			res.Removed, res.Changed, untouched = len(ch.Removed), len(ch.Changed), ch.Kept
			d.mu.Lock()
			d.xcfg = kept
			d.mu.Unlock()
		}
	}
	res.Restarted = restartWhy != nil
	if err := d.startXfrout(d.withMembers(eff)); err != nil {
		// Cannot happen with a checked configuration: keep the old one.
		d.log.Error("transfer settings not applied", "err", err)
		res.Errors = append(res.Errors, err.Error())
	}
	res.Loaded, res.Failed = d.loadFiles(cfg, false)
	d.mu.Lock()
	for _, fz := range d.files {
		if fz.lastErr != "" {
			res.Errors = append(res.Errors, fz.lastErr)
		}
	}
	d.mu.Unlock()
	// Stop serving what the configuration no longer holds, and file
	// versions of zones that became secondaries.
	for _, z := range oldCfg.Zones {
		nz := cfg.Zone(z.Name)
		if (nz == nil && !d.runtimeHas(z.Name)) || (!z.Secondary() && nz != nil && nz.Secondary()) {
			d.removeZone(z.Name)
			d.zlog.Info("no longer served from here", "zone", z.Name)
		}
	}
	for _, name := range oldRuntime {
		if cfg.Zone(name) == nil && !d.runtimeHas(name) {
			d.removeZone(name)
			d.zlog.Info("no longer in the run-time zones file; not served", "zone", name)
		}
	}
	if inPlace {
		d.pending(newX)
		ch, err := mgr.Reconfigure(newX)
		if err != nil {
			// Cannot happen: the shared settings were just taken.
			restartWhy = err
			res.Restarted = true
			d.stopSecondaries()
		} else {
			res.Added = len(ch.Added)
			d.mu.Lock()
			d.xcfg = newX
			d.mu.Unlock()
			d.log.Info("secondary zones reconfigured; the others untouched", "added", res.Added,
				"removed", res.Removed, "changed", res.Changed, "untouched", untouched)
		}
	}
	if restartWhy != nil {
		if err := d.startSecondaries(eff); err != nil {
			// Cannot happen with a checked configuration; keep a Manager
			// so NOTIFY and status still work.
			d.log.Error("secondaries not restarted", "err", err)
			res.Errors = append(res.Errors, err.Error())
			_ = d.startSecondaries(&config.Config{Xfr: cfg.Xfr})
		}
		d.log.Info("secondary zones restarted with the new configuration", "secondaries", cfg.Secondaries(), "reason", restartWhy.Error())
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.reloadCatalogs(cfg) // catalog.go
	d.log.Info("reloaded", "zones", len(cfg.Zones), "loaded", res.Loaded, "failed", res.Failed)
	return res, nil
}
