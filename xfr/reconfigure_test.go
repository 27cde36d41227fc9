package xfr

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// multiPrimary is an in-process primary on 127.0.0.1 serving a small zone
// for any name it is asked about, counting what each zone gets. A zone can
// be held in the middle of its AXFR, and a key can be required.
type multiPrimary struct {
	addr netip.AddrPort

	mu      sync.Mutex
	serial  map[string]uint32     // per zone; 1 when unset
	bulk    map[string]int        // extra A records per zone
	need    map[string]string     // the key a zone's queries must be signed with
	hold    map[string]*holdPoint // the next AXFR of the zone stops halfway
	holds   []*holdPoint          // every hold, released at cleanup
	soas    map[string]int        // SOA queries per zone
	xfrs    map[string]int        // transfers (AXFR or IXFR) per zone
	xfrKeys map[string][]string   // the key of each transfer ("" unsigned)
}

// startMulti starts a multiPrimary that knows keys (name → secret,
// hmac-sha256).
func startMulti(t testing.TB, keys map[string]string) *multiPrimary {
	t.Helper()
	p := &multiPrimary{
		serial: map[string]uint32{}, bulk: map[string]int{}, need: map[string]string{},
		hold: map[string]*holdPoint{},
		soas: map[string]int{}, xfrs: map[string]int{}, xfrKeys: map[string][]string{},
	}
	p.addr = testenv.ServeDNS(t, dns.HandlerFunc(p.serve), keys)
	// Registered after the servers' shutdown, so it runs first: a held
	// transfer must let go before the servers can stop.
	t.Cleanup(func() {
		p.mu.Lock()
		holds := p.holds
		p.mu.Unlock()
		for _, h := range holds {
			h.release()
		}
	})
	return p
}

// holdAXFR makes the next AXFR of name stop halfway until release is
// called; started is closed when it gets there.
func (p *multiPrimary) holdAXFR(name string) (started <-chan struct{}, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := &holdPoint{reached: make(chan struct{}), go_: make(chan struct{})}
	p.hold[name] = h
	p.holds = append(p.holds, h)
	return h.reached, h.release
}

// holdPoint stops a transfer until released.
type holdPoint struct {
	reached chan struct{} // closed when the transfer gets there
	go_     chan struct{} // closed by release
	once    sync.Once
}

func (h *holdPoint) release() { h.once.Do(func() { close(h.go_) }) }

func (p *multiPrimary) set(name string, f func(p *multiPrimary)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *multiPrimary) counts(name string) (soas, xfrs int, keys []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.soas[name], p.xfrs[name], slices.Clone(p.xfrKeys[name])
}

func (p *multiPrimary) records(name string, serial uint32, bulk int) []dns.RR {
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns: "ns." + name, Mbox: "h." + name, Serial: serial, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60}
	out := []dns.RR{soa,
		&dns.NS{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 300}, Ns: "ns." + name},
		&dns.A{Hdr: dns.RR_Header{Name: "ns." + name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(198, 18, 9, 1)},
	}
	for i := range bulk {
		out = append(out, &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("b%d.%s", i, name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(198, 18, byte(i>>8), byte(i))})
	}
	return out
}

func (p *multiPrimary) serve(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		return
	}
	name := dns.CanonicalName(q.Question[0].Name)
	qt := q.Question[0].Qtype
	key := ""
	if t := q.IsTsig(); t != nil && w.TsigStatus() == nil {
		key = dns.CanonicalName(t.Hdr.Name)
	}
	p.mu.Lock()
	serial, bulk, need := p.serial[name], p.bulk[name], p.need[name]
	if serial == 0 {
		serial = 1
	}
	var hold *holdPoint
	switch qt {
	case dns.TypeSOA:
		p.soas[name]++
	case dns.TypeAXFR, dns.TypeIXFR:
		p.xfrs[name]++
		p.xfrKeys[name] = append(p.xfrKeys[name], key)
		hold = p.hold[name]
		delete(p.hold, name)
	}
	p.mu.Unlock()

	reply := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if key != "" {
			m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
		}
		return m
	}
	m := reply()
	if key != need {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	rrs := p.records(name, serial, bulk)
	switch qt {
	case dns.TypeSOA:
		m.Answer = rrs[:1]
		_ = w.WriteMsg(m)
	case dns.TypeAXFR, dns.TypeIXFR:
		if _, ok := w.RemoteAddr().(*net.TCPAddr); !ok {
			m.Rcode = dns.RcodeRefused
			_ = w.WriteMsg(m)
			return
		}
		// A full zone (an IXFR too: AXFR-style); one message when signed,
		// so no TSIG chaining is needed.
		rrs = append(rrs, rrs[0])
		per := len(rrs)
		if key == "" {
			per = 100
		}
		for i := 0; i < len(rrs); i += per {
			if hold != nil && i >= len(rrs)/2 {
				close(hold.reached)
				<-hold.go_
				hold = nil
			}
			m := reply()
			m.Answer = rrs[i:min(i+per, len(rrs))]
			if err := w.WriteMsg(m); err != nil {
				return
			}
		}
	default:
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
	}
}

// recorder counts OnZone calls per zone and keeps their serials.
type recorder struct {
	mu        sync.Mutex
	published map[string][]uint32
	changed   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{published: map[string][]uint32{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) onZone(z *zone.Zone) {
	r.mu.Lock()
	r.published[z.Origin] = append(r.published[z.Origin], z.Serial())
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) serials(name string) []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.published[name])
}

// wait polls until name has been published with serial.
func (r *recorder) wait(t *testing.T, name string, serial uint32) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !slices.Contains(r.serials(name), serial) {
		select {
		case <-r.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s never published at serial %d; published %v", name, serial, r.serials(name))
		}
	}
}

// startManager starts a Manager publishing into rec, stopped at cleanup
// (which fails the test when its goroutines do not end).
func startManager(t *testing.T, cfg Config, rec *recorder) (*Manager, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.OnZone = rec.onZone
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopWithin(t, m, 5*time.Second)
		if t.Failed() {
			t.Logf("secondary log:\n%s", lb.String())
		}
	})
	return m, lb
}

// stopWithin stops m and fails when its goroutines are not all gone in d.
func stopWithin(t *testing.T, m *Manager, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { m.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("Stop did not return within %v: a zone goroutine is left", d)
	}
}

func zoneOf(name string, p *multiPrimary) Zone {
	return Zone{Name: name, Primaries: []Primary{{Addr: p.addr}}}
}

// Adding a zone republishes no other zone and leaves a transfer in flight
// alone: it completes, once.
func TestReconfigureAdd(t *testing.T) {
	t.Parallel()
	p := startMulti(t, nil)
	const big = "big.test."
	p.set(big, func(p *multiPrimary) { p.bulk[big] = 3000 })
	started, release := p.holdAXFR(big)
	rec := newRecorder()
	cfg := Config{StateDir: t.TempDir(), Timeouts: Timeouts{Read: 10 * time.Second},
		Zones: []Zone{zoneOf(big, p), zoneOf("a.test.", p)}}
	m, _ := startManager(t, cfg, rec)
	rec.wait(t, "a.test.", 1)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the AXFR of big.test. never started")
	}

	cfg.Zones = append(cfg.Zones, zoneOf("c.test.", p))
	ch, err := m.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Added, []string{"c.test."}) || len(ch.Removed)+len(ch.Changed) != 0 || ch.Kept != 2 {
		t.Errorf("changes %+v", ch)
	}
	rec.wait(t, "c.test.", 1)
	if st, _ := m.ZoneStatus(big); st.State != StateLoading {
		t.Errorf("big.test. before its AXFR ends: %+v", st)
	}
	release()
	rec.wait(t, big, 1)
	for _, name := range []string{big, "a.test.", "c.test."} {
		if got := rec.serials(name); len(got) != 1 {
			t.Errorf("%s published %v, want once", name, got)
		}
	}
	if _, xfrs, _ := p.counts(big); xfrs != 1 {
		t.Errorf("%d transfers of big.test., want 1 (the one in flight during the reload)", xfrs)
	}
	st, err := m.ZoneStatus(big)
	if err != nil || st.Counters.Full != 1 || st.State != StateOK {
		t.Errorf("big.test.: %+v %v", st, err)
	}
	if names := statusNames(m); !slices.Equal(names, []string{big, "a.test.", "c.test."}) {
		t.Errorf("Status lists %v", names)
	}
}

func statusNames(m *Manager) []string {
	var out []string
	for _, st := range m.Status() {
		out = append(out, st.Name)
	}
	return out
}

// An added zone with a copy on disk is served from it, before Reconfigure
// returns, as Start does.
func TestReconfigureAddFromDisk(t *testing.T) {
	t.Parallel()
	p := startMulti(t, nil)
	dir := t.TempDir()
	rec := newRecorder()
	m1, _ := startManager(t, Config{StateDir: dir, Zones: []Zone{zoneOf("d.test.", p)}}, rec)
	rec.wait(t, "d.test.", 1)
	stopWithin(t, m1, 5*time.Second)

	p.set("d.test.", func(p *multiPrimary) { p.serial["d.test."] = 2 })
	rec2 := newRecorder()
	cfg := Config{StateDir: dir, Zones: []Zone{zoneOf("a.test.", p)}}
	m, _ := startManager(t, cfg, rec2)
	cfg.Zones = append(cfg.Zones, zoneOf("d.test.", p))
	if _, err := m.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if got := rec2.serials("d.test."); len(got) == 0 || got[0] != 1 {
		t.Errorf("d.test. published %v when Reconfigure returned, want the disk copy (1) first", got)
	}
	// Its timers came from disk too: the next check is in an hour.
	if err := m.Refresh("d.test."); err != nil {
		t.Fatal(err)
	}
	rec2.wait(t, "d.test.", 2)
}

// A removed zone's goroutine ends: its primary sees no SOA query after,
// NOTIFY and the zone commands no longer know it, and Stop drains.
func TestReconfigureRemove(t *testing.T) {
	t.Parallel()
	p := startMulti(t, nil)
	fast := Timers{RefreshMin: 50 * time.Millisecond, RefreshMax: 100 * time.Millisecond, Jitter: -1}
	rec := newRecorder()
	a, b := zoneOf("a.test.", p), zoneOf("b.test.", p)
	a.Timers, b.Timers = fast, fast
	cfg := Config{Zones: []Zone{a, b}}
	m, _ := startManager(t, cfg, rec)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if soas, _, _ := p.counts("b.test."); soas >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b.test. is not checked every 100ms")
		}
	}

	cfg.Zones = []Zone{a}
	ch, err := m.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Removed, []string{"b.test."}) || ch.Kept != 1 {
		t.Errorf("changes %+v", ch)
	}
	bBefore, _, _ := p.counts("b.test.")
	aBefore, _, _ := p.counts("a.test.")
	// A few refresh intervals: a.test. keeps being checked, b.test. not.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if soas, _, _ := p.counts("a.test."); soas >= aBefore+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a.test. stopped being checked")
		}
	}
	if soas, _, _ := p.counts("b.test."); soas != bBefore {
		t.Errorf("b.test.: %d SOA queries after its removal", soas-bBefore)
	}
	if err := m.Refresh("b.test."); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("Refresh of a removed zone: %v", err)
	}
	if _, _, _, err := m.Snapshot("b.test."); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("Snapshot of a removed zone: %v", err)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(m.HandleNotify(packMsg(t, notifyMsg("b.test.", 9)), loopback)); err != nil || resp.Rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY for a removed zone: %v %v", resp, err)
	}
	if names := statusNames(m); !slices.Equal(names, []string{"a.test."}) {
		t.Errorf("Status lists %v", names)
	}
	stopWithin(t, m, 5*time.Second)
}

// A change of primary and of key takes effect at once (the next transfer
// goes to the new primary, with the new key) while the zone held keeps
// serving; the old primary hears nothing more.
func TestReconfigureChangePrimaryAndKey(t *testing.T) {
	t.Parallel()
	s1, s2, s3 := secret(t), secret(t), secret(t)
	p1 := startMulti(t, map[string]string{"k1.": s1})
	p2 := startMulti(t, map[string]string{"k2.": s2, "k3.": s3})
	const name = "z.test."
	p1.set(name, func(p *multiPrimary) { p.need[name] = "k1." })
	p2.set(name, func(p *multiPrimary) { p.need[name], p.serial[name] = "k2.", 2 })
	key := func(n, s string) *Key { return &Key{Name: n, Algorithm: "hmac-sha256", Secret: s} }
	rec := newRecorder()
	cfg := Config{Zones: []Zone{{Name: name, Primaries: []Primary{{Addr: p1.addr, Key: key("k1.", s1)}}}}}
	m, _ := startManager(t, cfg, rec)
	rec.wait(t, name, 1)

	// The new primary, with its key.
	cfg.Zones[0].Primaries = []Primary{{Addr: p2.addr, Key: key("k2.", s2)}}
	ch, err := m.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Changed, []string{name}) || ch.Kept != 0 {
		t.Errorf("changes %+v", ch)
	}
	p1SOA, p1XFR, _ := p1.counts(name)
	// The zone held is still there for outgoing transfers while the new
	// primary is asked.
	if z, _, _, err := m.Snapshot(name); err != nil || z == nil {
		t.Fatalf("snapshot after the change: %v %v", z, err)
	}
	rec.wait(t, name, 2)
	if got := rec.serials(name); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("published %v, want [1 2]: the old copy must not be published again", got)
	}
	st, _ := m.ZoneStatus(name)
	if st.Source != p2.addr.String() || st.Counters.Full != 2 {
		t.Errorf("after the change: source %s, counters %+v", st.Source, st.Counters)
	}
	if _, _, keys := p2.counts(name); !slices.Equal(keys, []string{"k2."}) {
		t.Errorf("transfers from the new primary signed with %q", keys)
	}

	// The key alone.
	p2.set(name, func(p *multiPrimary) { p.need[name], p.serial[name] = "k3.", 3 })
	cfg.Zones[0].Primaries[0].Key = key("k3.", s3)
	if _, err := m.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, name, 3)
	if _, _, keys := p2.counts(name); !slices.Equal(keys, []string{"k2.", "k3."}) {
		t.Errorf("transfers signed with %q, want k2 then k3", keys)
	}
	if soas, xfrs, _ := p1.counts(name); soas != p1SOA || xfrs != p1XFR {
		t.Errorf("the old primary got %d SOA queries and %d transfers after the change", soas-p1SOA, xfrs-p1XFR)
	}
}

// Unchanged zones are not touched; shared settings cannot change in place;
// an invalid configuration changes nothing.
func TestReconfigureRefuses(t *testing.T) {
	t.Parallel()
	p := startMulti(t, nil)
	rec := newRecorder()
	cfg := Config{StateDir: t.TempDir(), Zones: []Zone{zoneOf("a.test.", p)}}
	m, _ := startManager(t, cfg, rec)
	rec.wait(t, "a.test.", 1)

	ch, err := m.Reconfigure(cfg)
	if err != nil || ch.Kept != 1 || len(ch.Added)+len(ch.Removed)+len(ch.Changed) != 0 {
		t.Errorf("same configuration: %+v %v", ch, err)
	}
	for what, f := range map[string]func(c *Config){
		"state directory": func(c *Config) { c.StateDir = t.TempDir() },
		"max transfers":   func(c *Config) { c.MaxTransfers = 3 },
		"limits":          func(c *Config) { c.Limits.MaxRecords = 10 },
		"timeouts":        func(c *Config) { c.Timeouts.Transfer = time.Minute },
	} {
		c := cfg
		c.Zones = append([]Zone{zoneOf("new.test.", p)}, cfg.Zones...)
		f(&c)
		if _, err := m.Reconfigure(c); !errors.Is(err, ErrRestart) {
			t.Errorf("%s changed: %v, want ErrRestart", what, err)
		} else {
			t.Logf("%s changed: %v", what, err)
		}
	}
	bad := cfg
	bad.Zones = append([]Zone{{Name: "nope.test."}}, cfg.Zones...)
	if _, err := m.Reconfigure(bad); !errors.Is(err, ErrConfig) {
		t.Errorf("zone without primaries: %v", err)
	}
	if names := statusNames(m); !slices.Equal(names, []string{"a.test."}) {
		t.Errorf("after refused changes, Status lists %v", names)
	}
	if got := rec.serials("a.test."); len(got) != 1 {
		t.Errorf("a.test. published %v", got)
	}
	stopWithin(t, m, 5*time.Second)
	if _, err := m.Reconfigure(cfg); !errors.Is(err, ErrStopped) {
		t.Errorf("after Stop: %v", err)
	}
}

// NOTIFY, Status, Snapshot, Refresh and Retransfer stay safe while zones
// come and go (run with -race).
func TestReconfigureConcurrent(t *testing.T) {
	t.Parallel()
	p := startMulti(t, nil)
	rec := newRecorder()
	base := []Zone{zoneOf("a.test.", p)}
	m, _ := startManager(t, Config{Zones: base}, rec)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d.test.", i%2)
			pkt := packMsg(t, notifyMsg(name, 5))
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = m.HandleNotify(pkt, p.addr.Addr())
				_ = m.Status()
				_, _, _, _ = m.Snapshot(name)
				_ = m.Refresh(name)
				_ = m.Retransfer("a.test.")
				_, _ = m.ZoneStatus(name)
			}
		}()
	}
	for i := range 50 {
		zones := slices.Clone(base)
		if i%2 == 0 {
			zones = append(zones, zoneOf("c0.test.", p), zoneOf("c1.test.", p))
		}
		if i%3 == 0 {
			zones[0].AllowNotify = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}
		}
		if _, err := m.Reconfigure(Config{Zones: zones}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// BenchmarkReload compares, for 1,000 zones held on disk, what a reload
// that adds one zone costs: a new Manager (every zone read from disk and
// published again) against Reconfigure (one zone added).
func BenchmarkReload(b *testing.B) {
	const zones = 1000
	p := startMulti(b, nil)
	dir := b.TempDir()
	cfg := Config{StateDir: dir, Timeouts: Timeouts{Query: time.Second}}
	for i := range zones {
		cfg.Zones = append(cfg.Zones, zoneOf(fmt.Sprintf("z%d.test.", i), p))
	}
	var mu sync.Mutex
	published := 0
	all := make(chan struct{})
	cfg.OnZone = func(*zone.Zone) {
		mu.Lock()
		defer mu.Unlock()
		if published++; published == zones {
			close(all)
		}
	}
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	<-all
	m.Stop()
	cfg.OnZone = func(*zone.Zone) {}

	b.Run("restart", func(b *testing.B) {
		m, _ := New(cfg)
		_ = m.Start(b.Context())
		for b.Loop() {
			m.Stop()
			m, _ = New(cfg)
			if err := m.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
		m.Stop()
	})
	b.Run("reconfigure", func(b *testing.B) {
		m, _ := New(cfg)
		_ = m.Start(b.Context())
		plus := cfg
		plus.Zones = append(slices.Clone(cfg.Zones), zoneOf("extra.test.", p))
		i := 0
		for b.Loop() {
			c := cfg
			if i++; i%2 == 1 {
				c = plus
			}
			if _, err := m.Reconfigure(c); err != nil {
				b.Fatal(err)
			}
		}
		m.Stop()
	})
}
