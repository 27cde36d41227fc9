package xfr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/xot"
	"github.com/xdpns/xdpns/userspace/zone"
)

// ErrUnknownZone: the name is not a configured secondary zone.
var ErrUnknownZone = errors.New("not a secondary zone")

// Manager keeps a set of secondary zones up to date.
type Manager struct {
	cfg   Config // global settings; cfg.Zones is nil (the zones hold their own)
	log   *slog.Logger
	store *store

	zmu   sync.RWMutex          // guards zones and order (Reconfigure changes them)
	zones map[string]*zoneState // by canonical origin
	order []*zoneState          // configuration order

	xfrSem   chan struct{}
	querySem chan struct{}

	// mu serialises Start, Reconfigure and Stop, and guards what they share.
	mu      sync.Mutex
	ctx     context.Context // parent of every zone's goroutine; set by Start
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped bool
}

// New checks cfg and returns a Manager; Start loads state and starts work.
func New(cfg Config) (*Manager, error) {
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	m := &Manager{
		log:      cfg.Logger.With("component", "xfr"),
		zones:    map[string]*zoneState{},
		xfrSem:   make(chan struct{}, cfg.MaxTransfers),
		querySem: make(chan struct{}, cfg.MaxQueries),
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		m.store = &store{dir: cfg.StateDir}
	}
	for _, zc := range cfg.Zones {
		zs := m.newZone(zc)
		m.zones[zc.Name] = zs
		m.order = append(m.order, zs)
	}
	cfg.Zones = nil
	m.cfg = cfg
	return m, nil
}

// prepare copies what the caller could change afterwards and normalises.
func (c *Config) prepare() error {
	c.Zones = append([]Zone(nil), c.Zones...)
	for i := range c.Zones {
		c.Zones[i].Primaries = append([]Primary(nil), c.Zones[i].Primaries...)
		c.Zones[i].AllowNotify = append([]netip.Prefix(nil), c.Zones[i].AllowNotify...)
	}
	return c.normalise()
}

func (m *Manager) newZone(zc Zone) *zoneState {
	return &zoneState{
		m:    m,
		cfg:  zc,
		log:  m.log.With("zone", zc.Name),
		kick: make(chan struct{}, 1),
	}
}

// zone returns the zone named name, or nil.
func (m *Manager) zone(name string) *zoneState {
	m.zmu.RLock()
	defer m.zmu.RUnlock()
	return m.zones[dns.CanonicalName(name)]
}

// Start serves every zone that has an unexpired copy on disk (OnZone is
// called before Start returns), then starts the per-zone goroutines, which
// refresh in the background. Stop ends them.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("xfr: manager already started")
	}
	m.started = true
	m.zmu.RLock()
	order := m.order
	m.zmu.RUnlock()
	// Reading and decoding the saved copies, independent per zone, runs on
	// every CPU; serving them (OnZone) stays in order, one at a time.
	loaded := make([]*diskZone, len(order))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(order)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(order) {
					return
				}
				loaded[i] = order[i].readDisk()
			}
		}()
	}
	wg.Wait()
	for i, zs := range order {
		zs.serveDisk(loaded[i])
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	for _, zs := range order {
		m.startZone(zs)
	}
	return nil
}

// startZone starts the zone's goroutine. With m.mu held.
func (m *Manager) startZone(zs *zoneState) {
	ctx, cancel := context.WithCancel(m.ctx)
	done := make(chan struct{})
	zs.cancel, zs.done = cancel, done
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(done)
		zs.run(ctx)
	}()
}

// stopZone ends the zone's goroutine and waits for it: after it returns the
// zone publishes nothing more. A transfer in flight is abandoned. With m.mu
// held.
func (m *Manager) stopZone(zs *zoneState) {
	if zs.cancel == nil {
		return // never started
	}
	zs.cancel()
	<-zs.done
	zs.cancel, zs.done = nil, nil
}

// Stop ends all work and waits for it. Transfers in flight are abandoned;
// the zones on disk stay as they were.
func (m *Manager) Stop() {
	m.mu.Lock()
	cancel := m.cancel
	m.stopped = true
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
}

// Refresh asks for an SOA check of the zone now (like a NOTIFY would).
func (m *Manager) Refresh(name string) error {
	zs := m.zone(name)
	if zs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownZone, name)
	}
	zs.trigger()
	return nil
}

// Retransfer asks for a full transfer of the zone now, whatever the serials
// say.
func (m *Manager) Retransfer(name string) error {
	zs := m.zone(name)
	if zs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownZone, name)
	}
	zs.mu.Lock()
	zs.force = true
	zs.mu.Unlock()
	zs.trigger()
	return nil
}

// Snapshot returns the zone as last published, the IXFR history that ends
// at its serial (oldest first; empty after a full transfer) and whether it
// has expired. z is nil when the zone has never been loaded. This is what an
// outgoing AXFR/IXFR serves.
func (m *Manager) Snapshot(name string) (z *zone.Zone, journal []Diff, expired bool, err error) {
	zs := m.zone(name)
	if zs == nil {
		return nil, nil, false, fmt.Errorf("%w: %s", ErrUnknownZone, name)
	}
	zs.mu.Lock()
	defer zs.mu.Unlock()
	return zs.z, zs.diffs, zs.expired, nil
}

// State summarises a zone's condition.
type State string

const (
	// StateLoading: no copy yet; transfers are being tried.
	StateLoading State = "loading"
	// StateOK: served, last refresh succeeded.
	StateOK State = "ok"
	// StateRetrying: served, but the last refresh failed.
	StateRetrying State = "retrying"
	// StateExpired: expire passed without a successful refresh: SERVFAIL.
	StateExpired State = "expired"
)

// Counters count what happened to a zone since Start.
type Counters struct {
	SOAQueries   uint64 // SOA queries sent (each primary tried counts)
	Incremental  uint64 // IXFRs applied as differences
	Full         uint64 // full transfers: AXFR, or IXFR answered with a full zone
	UpToDate     uint64 // checks that found the primary at our serial
	Failures     uint64 // checks that failed on every primary
	Notifies     uint64 // NOTIFYs accepted
	NotifyDenied uint64 // NOTIFYs refused (unknown source, bad TSIG)
}

// ZoneStatus is a zone's state for status displays and tests.
type ZoneStatus struct {
	Name        string
	State       State
	Serial      uint32 // meaningful when State != StateLoading
	Source      string // primary of the last transfer
	FromDisk    bool   // the copy served was loaded at Start
	LastRefresh time.Time
	NextCheck   time.Time
	ExpireAt    time.Time
	LastError   string // of the last failed check; empty after a success
	Counters    Counters
}

// Status returns every zone's state, in configuration order.
func (m *Manager) Status() []ZoneStatus {
	m.zmu.RLock()
	order := m.order
	m.zmu.RUnlock()
	out := make([]ZoneStatus, 0, len(order))
	for _, zs := range order {
		out = append(out, zs.status())
	}
	return out
}

// ZoneStatus returns one zone's state.
func (m *Manager) ZoneStatus(name string) (ZoneStatus, error) {
	zs := m.zone(name)
	if zs == nil {
		return ZoneStatus{}, fmt.Errorf("%w: %s", ErrUnknownZone, name)
	}
	return zs.status(), nil
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// zoneState is one zone's state machine. Its goroutine (run) is the only
// writer of the zone and its timers; mu lets Status, Snapshot and NOTIFY
// read them. cfg changes only while the goroutine is stopped (Reconfigure),
// under mu: the goroutine reads it freely, others under mu.
type zoneState struct {
	m    *Manager
	cfg  Zone
	log  *slog.Logger
	kick chan struct{} // a check is wanted now; capacity 1 coalesces

	// The goroutine's cancel and end; nil while it is not running. Used
	// with m.mu held.
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	z         *zone.Zone
	diffs     []Diff
	tm        timerState
	expired   bool
	force     bool // next check transfers in full
	fromDisk  bool
	journaled int         // records appended to the journal file since the snapshot
	hint      *notifyHint // the serial the last NOTIFY announced, until a check uses it
	failures  int         // consecutive failed checks
	lastErr   string
	stats     Counters
}

func (zs *zoneState) trigger() {
	select {
	case zs.kick <- struct{}{}:
	default: // a check is already pending: coalesce
	}
}

func (zs *zoneState) status() ZoneStatus {
	zs.mu.Lock()
	defer zs.mu.Unlock()
	st := ZoneStatus{
		Name: zs.cfg.Name, Source: zs.tm.Source, FromDisk: zs.fromDisk,
		LastRefresh: zs.tm.LastRefresh, NextCheck: zs.tm.NextCheck, ExpireAt: zs.tm.ExpireAt,
		LastError: zs.lastErr, Counters: zs.stats,
	}
	switch {
	case zs.z == nil:
		st.State = StateLoading
	case zs.expired:
		st.State = StateExpired
	case zs.lastErr != "":
		st.State = StateRetrying
	default:
		st.State = StateOK
	}
	if zs.z != nil {
		st.Serial = zs.z.Serial()
	}
	return st
}

// loadFromDisk serves the zone's saved copy, if there is a sound one.
func (zs *zoneState) loadFromDisk() { zs.serveDisk(zs.readDisk()) }

// diskZone is a saved copy read by readDisk, for serveDisk.
type diskZone struct {
	z     *zone.Zone
	diffs []Diff
	tm    timerState
	err   error
}

// readDisk reads and decodes the zone's saved copy: nil when there is none.
// It touches nothing shared, so zones are read in parallel.
func (zs *zoneState) readDisk() *diskZone {
	st := zs.m.store
	if st == nil {
		return nil
	}
	origin := zs.cfg.Name
	z, diffs, tm, err := st.loadZone(origin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w %s: %v", ErrCorrupt, st.zonePath(origin), err)
	}
	return &diskZone{z: z, diffs: diffs, tm: tm, err: err}
}

// serveDisk serves what readDisk read (nil: nothing saved), or sets the
// damaged copy aside.
func (zs *zoneState) serveDisk(d *diskZone) {
	now := time.Now()
	zs.mu.Lock()
	zs.tm.NextCheck = now
	zs.mu.Unlock()
	st := zs.m.store
	if st == nil || d == nil {
		return
	}
	origin := zs.cfg.Name
	z, diffs, tm, err := d.z, d.diffs, d.tm, d.err
	if err != nil {
		zs.log.Error("saved zone unusable, transferring it again", "err", err)
		zs.mu.Lock()
		zs.lastErr = err.Error()
		zs.mu.Unlock()
		if qerr := quarantine(st.zonePath(origin)); qerr != nil {
			zs.log.Error("cannot move damaged zone file aside", "err", qerr)
		}
		return
	}
	// The journal holds the IXFRs applied since the snapshot was written.
	if z, diffs, tm, err = zs.replayJournal(z, diffs, tm); err != nil {
		zs.log.Warn("journal unusable; serving the snapshot, a refresh will catch up", "err", err)
	}
	// The timers file is newer than the zone file's copy when refreshes
	// succeeded since the zone last changed.
	if t2, err := st.loadTimers(origin); err == nil && t2.Serial == tm.Serial && !t2.LastRefresh.Before(tm.LastRefresh) {
		tm = t2
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		zs.log.Warn("timers file unusable, using the zone file's", "err", err)
	}
	expired := !now.Before(tm.ExpireAt)
	if expired || tm.NextCheck.IsZero() {
		tm.NextCheck = now
	}
	zs.mu.Lock()
	zs.z, zs.diffs, zs.tm, zs.fromDisk, zs.expired = z, diffs, tm, true, expired
	zs.mu.Unlock()
	zs.log.Info("zone loaded from disk", "serial", z.Serial(), "records", z.RecordCount(),
		"expired", expired, "next_check", tm.NextCheck.Format(time.RFC3339Nano))
	zs.publish(z)
	if expired {
		zs.setExpired(true)
	}
}

// replayJournal applies the journal's differences to the snapshot's zone.
// Differences the snapshot already holds are skipped (a crash between writing
// a snapshot and removing the journal); replay stops at a gap or a torn tail.
func (zs *zoneState) replayJournal(z *zone.Zone, history []Diff, tm timerState) (*zone.Zone, []Diff, timerState, error) {
	jd, torn, err := zs.m.store.loadJournal(zs.cfg.Name)
	if err != nil {
		return z, history, tm, err
	}
	if torn {
		zs.log.Warn("journal ends in a torn write (a crash while appending?); its last change is dropped")
	}
	var applied []Diff
	for _, d := range jd {
		if d.From != z.Serial() {
			if o := CompareSerial(d.To, z.Serial()); o == Lower || o == Equal {
				continue // already in the snapshot
			}
			err = fmt.Errorf("journal jumps from serial %d to %d", z.Serial(), d.From)
			break
		}
		nz, aerr := applyDiffs(z, []Diff{d})
		if aerr != nil {
			err = aerr
			break
		}
		z = nz
		applied = append(applied, d)
		zs.journaled += d.Len()
	}
	if len(applied) > 0 {
		history = trimJournal(append(history, applied...), zs.journalMax(z))
		tm.Serial = z.Serial()
		zs.log.Info("journal replayed", "changes", len(applied), "serial", z.Serial())
	}
	return z, history, tm, err
}

func (zs *zoneState) publish(z *zone.Zone) {
	if f := zs.m.cfg.OnZone; f != nil {
		f(z)
	}
}

func (zs *zoneState) setExpired(v bool) {
	if f := zs.m.cfg.OnExpire; f != nil {
		f(zs.cfg.Name, v)
	}
}

// run is the zone's state machine: wait for the next check, the expire
// deadline or a kick (NOTIFY, Refresh), act, repeat.
func (zs *zoneState) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		zs.mu.Lock()
		next, expireAt := zs.tm.NextCheck, time.Time{}
		if zs.z != nil && !zs.expired {
			expireAt = zs.tm.ExpireAt
		}
		zs.mu.Unlock()
		wake := next
		if !expireAt.IsZero() && expireAt.Before(wake) {
			wake = expireAt
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return
		case <-zs.kick:
			timer.Stop()
			zs.check(ctx)
		case <-timer.C:
			now := time.Now()
			if !expireAt.IsZero() && !now.Before(expireAt) {
				zs.expire()
			}
			if !now.Before(next) {
				zs.check(ctx)
			}
		}
	}
}

// expire tells the server first, then marks the zone: a status that says
// expired means the zone already answers SERVFAIL.
func (zs *zoneState) expire() {
	zs.mu.Lock()
	serial := zs.z.Serial()
	zs.mu.Unlock()
	zs.log.Warn("zone expired: no successful refresh within expire, answering SERVFAIL", "serial", serial)
	zs.setExpired(true)
	zs.mu.Lock()
	zs.expired = true
	zs.mu.Unlock()
}

// outcome is a successful check.
type outcome struct {
	z      *zone.Zone // the new zone; nil when ours is current
	diffs  []Diff     // the differences applied, for an incremental transfer
	full   bool       // z came from a full transfer
	source Primary
	expire *uint32 // EDNS EXPIRE from the primary
}

// check runs one refresh and sets the timers from its result.
func (zs *zoneState) check(ctx context.Context) {
	zs.mu.Lock()
	cur, force, hint := zs.z, zs.force, zs.hint
	zs.force, zs.hint = false, nil
	zs.mu.Unlock()

	start := time.Now()
	out, err := zs.fromNotify(ctx, cur, force, hint)
	if out == nil && err == nil {
		out, err = zs.refresh(ctx, cur, force)
	}
	if ctx.Err() != nil {
		// Stopping (Stop, or Reconfigure): keep the state as it was,
		// and what this check was asked for, for the next run.
		zs.mu.Lock()
		zs.force = zs.force || force
		if zs.hint == nil {
			zs.hint = hint
		}
		zs.mu.Unlock()
		return
	}
	now := time.Now()
	tmr := zs.cfg.Timers
	if err != nil {
		zs.mu.Lock()
		zs.failures++
		wait := tmr.bootstrapIn(zs.failures)
		if cur != nil {
			wait = tmr.retryIn(cur.SOA.Retry)
		}
		zs.tm.NextCheck = now.Add(tmr.jitter(wait))
		zs.lastErr = err.Error()
		zs.stats.Failures++
		zs.force = zs.force || force
		tm := zs.tm
		zs.mu.Unlock()
		zs.log.Warn("refresh failed", "err", err, "next_check", tm.NextCheck.Format(time.RFC3339Nano))
		if cur != nil {
			zs.saveTimers(tm)
		}
		return
	}

	z := cur
	if out.z != nil {
		z = out.z
	}
	soa := z.SOA
	expireIn := tmr.expireIn(soa.Expire, soa.Refresh)
	if out.expire != nil && secs(*out.expire) < expireIn {
		// RFC 7314: a primary that is itself a secondary tells us how long
		// its copy stays valid; ours must not outlive it.
		expireIn = secs(*out.expire)
	}
	zs.mu.Lock()
	zs.failures = 0
	zs.lastErr = ""
	wasExpired := zs.expired
	zs.expired = false
	zs.tm.LastRefresh = now
	nextIn := tmr.jitter(tmr.refreshIn(soa.Refresh))
	if expireIn < nextIn {
		// Only the primary's EXPIRE can make this so (expireIn is never
		// below the refresh otherwise): its copy, or BIND's idea of it
		// (BIND sends a primary zone's SOA expire), lapses before our next
		// refresh. Ask again before ours lapses: it may be fresh by then.
		nextIn = tmr.jitter(max(expireIn*9/10, tmr.RefreshMin))
	}
	zs.tm.NextCheck = now.Add(nextIn)
	zs.tm.ExpireAt = now.Add(expireIn)
	switch {
	case out.z == nil:
		zs.stats.UpToDate++
	case out.full:
		zs.z, zs.diffs = out.z, nil
		zs.tm.Serial, zs.tm.Source = out.z.Serial(), out.source.String()
		zs.stats.Full++
	default:
		zs.z = out.z
		zs.diffs = trimJournal(append(append([]Diff(nil), zs.diffs...), out.diffs...), zs.journalMax(out.z))
		zs.tm.Serial, zs.tm.Source = out.z.Serial(), out.source.String()
		zs.stats.Incremental++
	}
	tm, diffs := zs.tm, zs.diffs
	zs.mu.Unlock()

	if out.z != nil {
		old := uint32(0)
		if cur != nil {
			old = cur.Serial()
		}
		kind := "IXFR"
		if out.full {
			kind = "AXFR"
		}
		zs.log.Info("zone updated", "serial", out.z.Serial(), "from_serial", old, "kind", kind,
			"primary", out.source.String(), "took", time.Since(start).Round(time.Microsecond))
		zs.publish(out.z)
	}
	if wasExpired {
		zs.log.Info("zone refreshed after expiry, serving again", "serial", z.Serial())
		zs.setExpired(false)
	}
	if out.z != nil {
		zs.persist(out, diffs, tm)
	} else {
		zs.saveTimers(tm)
	}
}

// persist saves a changed zone: an IXFR appends its differences to the
// journal file (cost: the change); a full transfer, or a journal grown past
// the zone's size, rewrites the snapshot and empties the journal.
func (zs *zoneState) persist(out *outcome, history []Diff, tm timerState) {
	st := zs.m.store
	if st == nil {
		return
	}
	n := 0
	for _, d := range out.diffs {
		n += d.Len()
	}
	if !out.full && zs.journaled+n <= zs.journalMax(out.z) {
		start := time.Now()
		err := st.appendDiffs(zs.cfg.Name, out.diffs)
		if err == nil {
			zs.journaled += n
			zs.saveTimers(tm)
			zs.log.Debug("journal appended", "serial", out.z.Serial(), "records", n, "took", time.Since(start).Round(time.Microsecond))
			return
		}
		zs.log.Error("cannot append to the journal; writing the whole zone", "err", err)
	}
	zs.saveZone(out.z, history, tm)
	if err := st.removeJournal(zs.cfg.Name); err != nil {
		zs.log.Error("cannot remove the journal", "err", err)
	}
	zs.journaled = 0
}

func (zs *zoneState) journalMax(z *zone.Zone) int {
	if n := zs.m.cfg.Limits.JournalRecords; n > 0 {
		return n
	}
	return max(z.Len(), 1024)
}

func (zs *zoneState) saveZone(z *zone.Zone, diffs []Diff, tm timerState) {
	st := zs.m.store
	if st == nil {
		return
	}
	// The zone file carries the timers too. The timers file is left as it
	// is: at load it only wins when it has the same serial and a later
	// refresh.
	start := time.Now()
	if err := st.saveZone(zs.cfg.Name, z, diffs, tm); err != nil {
		zs.log.Error("cannot save zone", "err", err)
		return
	}
	zs.log.Debug("zone saved", "serial", z.Serial(), "took", time.Since(start).Round(time.Microsecond))
}

func (zs *zoneState) saveTimers(tm timerState) {
	if st := zs.m.store; st != nil {
		if err := st.saveTimers(zs.cfg.Name, tm); err != nil {
			zs.log.Error("cannot save timers", "err", err)
		}
	}
}

// refresh asks the primaries in order for their SOA and, when one is newer
// (or force), transfers from it. The first primary that answers decides:
// equal means up to date; a failed transfer moves on to the next primary.
func (zs *zoneState) refresh(ctx context.Context, cur *zone.Zone, force bool) (*outcome, error) {
	var errs []error
	for _, p := range zs.cfg.Primaries {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ans, err := zs.querySOA(ctx, p)
		if refusedSOA(err) {
			// Knot 3.2 answers a query for a catalog zone it generates
			// (or interprets) with REFUSED, yet transfers it: ask by
			// transfer instead. IXFR with our serial answers "current"
			// with one SOA (RFC 1995 §2); with nothing held, AXFR.
			zs.log.Debug("SOA query refused; asking by transfer", "primary", p.String())
			ans = soaAnswer{soa: &dns.SOA{}, unannounced: true}
			if cur != nil {
				ans.soa.Serial = cur.Serial()
			}
			out, terr := zs.transfer(ctx, p, cur, ans, force)
			if terr == nil {
				return out, nil
			}
			errs = append(errs, fmt.Errorf("primary %s: SOA query refused, then %w", p, terr))
			zs.log.Warn("transfer failed", "primary", p.String(), "err", terr)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("primary %s: %w", p, err))
			if reason, ok := xot.Refusal(err); ok {
				// Not a primary that is down: one we will not talk
				// to until its certificate (or our configuration) is
				// fixed. The served zone is left as it is.
				zs.log.Warn("TLS: primary refused", "primary", p.String(), "reason", reason)
			} else {
				zs.log.Debug("SOA query failed", "primary", p.String(), "err", err)
			}
			continue
		}
		if cur != nil && !force {
			switch o := CompareSerial(ans.soa.Serial, cur.Serial()); o {
			case Equal:
				return &outcome{source: p, expire: ans.expire}, nil
			case Lower:
				errs = append(errs, fmt.Errorf("primary %s: %w: its serial %d is behind ours (%d)", p, errNotNewer, ans.soa.Serial, cur.Serial()))
				continue
			case Incomparable:
				errs = append(errs, fmt.Errorf("primary %s: %w: its serial %d is 2^31 from ours (%d), incomparable (RFC 1982)", p, errNotNewer, ans.soa.Serial, cur.Serial()))
				continue
			}
		}
		out, err := zs.transfer(ctx, p, cur, ans, force)
		if err == nil {
			return out, nil
		}
		errs = append(errs, fmt.Errorf("primary %s: %w", p, err))
		zs.log.Warn("transfer failed", "primary", p.String(), "err", err)
	}
	return nil, errors.Join(errs...)
}

// refusedSOA reports whether err is a primary's REFUSED to our SOA query
// (not a timeout, not TLS, not another rcode).
func refusedSOA(err error) bool {
	var rc errRcode
	return errors.As(err, &rc) && rc.rcode == dns.RcodeRefused
}

// notifyHint is what a NOTIFY said: the new serial and who sent it.
type notifyHint struct {
	serial uint32
	from   netip.Addr
}

// fromNotify transfers straight from the primary that sent a NOTIFY carrying
// a serial newer than ours, without asking for its SOA first: NOTIFY already
// told us (RFC 1996 §3.11), and the round trip is a third of a change's
// propagation on a quiet network. (nil, nil) means: do the usual check.
func (zs *zoneState) fromNotify(ctx context.Context, cur *zone.Zone, force bool, h *notifyHint) (*outcome, error) {
	if h == nil || cur == nil || force || CompareSerial(h.serial, cur.Serial()) != Greater {
		return nil, nil
	}
	for _, p := range zs.cfg.Primaries {
		if p.Addr.Addr().Unmap() != h.from {
			continue
		}
		out, err := zs.transfer(ctx, p, cur, soaAnswer{soa: &dns.SOA{Serial: h.serial}}, false)
		if err != nil {
			zs.log.Info("transfer on NOTIFY failed; checking the primaries in order", "primary", p.String(), "err", err)
			return nil, nil
		}
		return out, nil
	}
	return nil, nil // an allow-notify source, not a primary: ask the primaries
}

func (zs *zoneState) querySOA(ctx context.Context, p Primary) (soaAnswer, error) {
	if err := acquire(ctx, zs.m.querySem); err != nil {
		return soaAnswer{}, err
	}
	defer func() { <-zs.m.querySem }()
	zs.mu.Lock()
	zs.stats.SOAQueries++
	zs.mu.Unlock()
	return querySOA(ctx, p, zs.cfg.Name, zs.m.cfg.Timeouts.Query)
}

// transfer gets the zone from p: IXFR when we hold a copy (falling back to
// AXFR on anything but a TSIG failure), else AXFR.
func (zs *zoneState) transfer(ctx context.Context, p Primary, cur *zone.Zone, ans soaAnswer, force bool) (*outcome, error) {
	if err := acquire(ctx, zs.m.xfrSem); err != nil {
		return nil, err
	}
	defer func() { <-zs.m.xfrSem }()
	if cur != nil && !force && !zs.cfg.AXFROnly {
		out, err := zs.ixfr(ctx, p, cur, ans)
		if err == nil {
			return out, nil
		}
		if errors.Is(err, ErrTSIG) || ctx.Err() != nil {
			return nil, fmt.Errorf("IXFR: %w", err)
		}
		zs.log.Info("IXFR failed, falling back to AXFR", "primary", p.String(), "err", err)
	}
	return zs.axfr(ctx, p, cur, ans, force)
}

func (zs *zoneState) ixfr(ctx context.Context, p Primary, cur *zone.Zone, ans soaAnswer) (*outcome, error) {
	cfg := &zs.m.cfg
	s, expire, err := xfrIn(ctx, p, zs.cfg.Name, dns.TypeIXFR, cur.SOA, cfg.Timeouts, cfg.Limits)
	if err != nil {
		return nil, err
	}
	if expire == nil {
		expire = ans.expire
	}
	if s.upToDate {
		if s.first.Serial != cur.Serial() {
			return nil, fmt.Errorf("IXFR answered with serial %d only, %s than ours (%d) after its SOA said %d",
				s.first.Serial, CompareSerial(s.first.Serial, cur.Serial()), cur.Serial(), ans.soa.Serial)
		}
		zs.log.Info("IXFR: primary says we are current after all", "primary", p.String(), "serial", cur.Serial())
		return &outcome{source: p, expire: expire}, nil
	}
	if s.full != nil {
		zs.log.Info("IXFR answered with the full zone", "primary", p.String(), "serial", s.first.Serial)
		z, err := zs.candidate(s.full, ans, cur, false)
		if err != nil {
			return nil, err
		}
		return &outcome{z: z, full: true, source: p, expire: expire}, nil
	}
	z, err := zs.applyIXFR(cur, s.diffs, ans)
	if err != nil {
		return nil, err
	}
	return &outcome{z: z, diffs: s.diffs, source: p, expire: expire}, nil
}

// applyIXFR applies the differences to the served zone with zone.ApplyDiffs:
// the new version shares all it did not change, and records what did, so
// the compiled answers are updated rather than redone. The same rules as for
// a full transfer apply (candidate); a difference that does not fit our copy
// wraps ErrInconsistent, which makes the caller fall back to AXFR.
func (zs *zoneState) applyIXFR(cur *zone.Zone, diffs []Diff, ans soaAnswer) (*zone.Zone, error) {
	if err := zs.checkSerial(diffs[len(diffs)-1].To, ans, cur, false); err != nil {
		return nil, err
	}
	return applyDiffs(cur, diffs)
}

// checkSerial: the serial is the one the primary announced (or newer, if it
// changed meanwhile) and newer than ours.
func (zs *zoneState) checkSerial(serial uint32, ans soaAnswer, cur *zone.Zone, force bool) error {
	if o := CompareSerial(serial, ans.soa.Serial); !ans.unannounced && (o == Lower || o == Incomparable) {
		return fmt.Errorf("transfer has serial %d, the primary announced %d", serial, ans.soa.Serial)
	}
	if cur != nil && !force && !newer(serial, cur.Serial()) {
		return fmt.Errorf("transfer has serial %d, not newer than ours (%d)", serial, cur.Serial())
	}
	return nil
}

func (zs *zoneState) axfr(ctx context.Context, p Primary, cur *zone.Zone, ans soaAnswer, force bool) (*outcome, error) {
	cfg := &zs.m.cfg
	s, expire, err := xfrIn(ctx, p, zs.cfg.Name, dns.TypeAXFR, nil, cfg.Timeouts, cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("AXFR: %w", err)
	}
	if expire == nil {
		expire = ans.expire
	}
	z, err := zs.candidate(s.full, ans, cur, force)
	if err != nil {
		return nil, fmt.Errorf("AXFR: %w", err)
	}
	return &outcome{z: z, full: true, source: p, expire: expire}, nil
}

// candidate validates the records of a transfer (SOA first) and builds the
// zone: the serial is the one the primary announced (or newer, if it
// changed meanwhile) and newer than ours, and zone.New accepts it (one SOA,
// apex NS, no CNAME beside data; the stream already checked names and
// sizes).
func (zs *zoneState) candidate(rrs []dns.RR, ans soaAnswer, cur *zone.Zone, force bool) (*zone.Zone, error) {
	soa := rrs[0].(*dns.SOA)
	if err := zs.checkSerial(soa.Serial, ans, cur, force); err != nil {
		return nil, err
	}
	z, warns, err := zone.New(zs.cfg.Name, rrs, zone.Options{RequireNS: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid zone at serial %d: %w", soa.Serial, err)
	}
	for _, w := range warns {
		zs.log.Warn("transferred zone", "serial", soa.Serial, "warning", w.Error())
	}
	return z, nil
}

// notifySource reports whether a NOTIFY from addr is acceptable for the
// zone, and which keys may sign it: the keys of the primaries at that
// address, or every primary's key for a source allowed by AllowNotify.
func (zs *zoneState) notifySource(addr netip.Addr) (keys []*Key, ok bool) {
	zs.mu.Lock()
	cfg := zs.cfg
	zs.mu.Unlock()
	for _, p := range cfg.Primaries {
		if p.Addr.Addr().Unmap() == addr {
			ok = true
			if p.Key != nil {
				keys = append(keys, p.Key)
			}
		}
	}
	if ok {
		return keys, true
	}
	for _, pfx := range cfg.AllowNotify {
		if pfx.Contains(addr) {
			for _, p := range cfg.Primaries {
				if p.Key != nil {
					keys = append(keys, p.Key)
				}
			}
			return keys, true
		}
	}
	return nil, false
}
