package xfr

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// anyZonePrimary serves a small zone for every name it is asked about and
// records how many transfers run at once.
type anyZonePrimary struct {
	addr           netip.AddrPort
	inFlight, peak atomic.Int64
	transfers      atomic.Int64
}

func startAnyZone(t *testing.T) *anyZonePrimary {
	t.Helper()
	p := &anyZonePrimary{}
	p.addr = testenv.ServeDNS(t, dns.HandlerFunc(p.serve), nil)
	return p
}

func (p *anyZonePrimary) serve(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		return
	}
	name := q.Question[0].Name
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns: "ns." + name, Mbox: "h." + name, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	switch q.Question[0].Qtype {
	case dns.TypeSOA:
		m.Answer = []dns.RR{soa}
	case dns.TypeAXFR:
		// In flight from here to just before the answer is written: the
		// client cannot finish (and free its slot) before that.
		n := p.inFlight.Add(1)
		for {
			old := p.peak.Load()
			if n <= old || p.peak.CompareAndSwap(old, n) {
				break
			}
		}
		p.transfers.Add(1)
		time.Sleep(2 * time.Millisecond) // let transfers overlap
		ns, _ := dns.NewRR(fmt.Sprintf("%s 300 IN NS ns.%s", name, name))
		a, _ := dns.NewRR(fmt.Sprintf("ns.%s 300 IN A 198.18.9.1", name))
		m.Answer = []dns.RR{soa, ns, a, soa}
		p.inFlight.Add(-1)
	default:
		m.Rcode = dns.RcodeRefused
	}
	_ = w.WriteMsg(m)
}

// Many zones converge, and never more transfers run at once than allowed.
func TestManyZones(t *testing.T) {
	t.Parallel()
	const zones, maxXfr = 1000, 4
	p := startAnyZone(t)
	cfg := Config{MaxTransfers: maxXfr, StateDir: t.TempDir()}
	for i := range zones {
		cfg.Zones = append(cfg.Zones, Zone{Name: fmt.Sprintf("z%d.test.", i), Primaries: []Primary{{Addr: p.addr}}})
	}
	var mu sync.Mutex
	got := map[string]bool{}
	done := make(chan struct{})
	cfg.OnZone = func(z *zone.Zone) {
		mu.Lock()
		defer mu.Unlock()
		got[z.Origin] = true
		if len(got) == zones {
			close(done)
		}
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		t.Fatalf("%d of %d zones after 20s", len(got), zones)
	}
	t.Logf("%d zones converged in %v; peak %d concurrent transfers", zones, time.Since(start), p.peak.Load())
	if pk := p.peak.Load(); pk > maxXfr || pk < 2 {
		t.Errorf("peak concurrent transfers %d, want 2..%d", pk, maxXfr)
	}
	if n := p.transfers.Load(); n != zones {
		t.Errorf("%d transfers for %d zones", n, zones)
	}
	for _, st := range m.Status() {
		if st.State != StateOK || !strings.HasPrefix(st.Name, "z") {
			t.Fatalf("zone %s: %+v", st.Name, st)
		}
	}
}

// RFC 7314: every query to the primary (SOA, AXFR, IXFR) asks for its
// remaining expire with an empty EXPIRE option, and a primary that reports
// less than the SOA's makes our copy expire that much sooner. The fake
// answers the option only when asked; a transfer's value is preferred to
// the SOA answer's.
func TestEDNSExpire(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	one := uint32(1)
	f.mu.Lock()
	f.expire = &one
	f.mu.Unlock()
	f.set(10, axfrOf(zoneRRs(t, 10))) // SOA expire 86400, refresh 3600
	s := startSecondary(t, Config{Timers: fastTimers, Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: f.addr}}}}}, nil)
	st := s.waitSerial(10, 3*time.Second)
	if d := time.Until(st.ExpireAt); d > time.Second {
		t.Errorf("expires in %v, want at most the primary's 1s", d)
	}
	if !st.NextCheck.Before(st.ExpireAt) {
		t.Errorf("next check %v not before the expiry %v", st.NextCheck, st.ExpireAt)
	}
	// The primary keeps saying 1 s (its own copy is refreshed): ours is
	// checked again before it lapses and never expires.
	soaBefore := st.Counters.SOAQueries
	time.Sleep(2500 * time.Millisecond)
	st = s.status(testZone)
	if st.State != StateOK || st.Counters.SOAQueries < soaBefore+2 {
		t.Errorf("after 2.5 s of 1 s EXPIREs: state %s, %d SOA checks (were %d); want ok, checked again before each expiry",
			st.State, st.Counters.SOAQueries, soaBefore)
	}
	if _, expiries := s.events(); len(expiries) > 0 {
		t.Errorf("expired meanwhile: OnExpire calls %v", expiries)
	}
	// Now the primary's copy has lapsed (0 s left): ours expires with it.
	zero := uint32(0)
	f.mu.Lock()
	f.expire = &zero
	f.mu.Unlock()
	s.waitFor("expiry", 3*time.Second, func(st ZoneStatus) bool { return st.State == StateExpired })
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}

	// Serial 11: the SOA answer says 7200 s are left, the IXFR's first
	// message 3600 s; the SOA's own expire is 86400.
	soaLeft, xfrLeft := uint32(7200), uint32(3600)
	f.mu.Lock()
	f.expire = &soaLeft
	f.mu.Unlock()
	rrs11 := zoneRRs(t, 11)
	f.set(11, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.Answer = append(append([]dns.RR(nil), rrs11...), rrs11[0])
		if asked, _ := askedExpire(q); asked {
			m.SetEdns0(1232, false)
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Expire: xfrLeft})
		}
		_ = w.WriteMsg(m)
	})
	if err := s.m.Refresh(testZone); err != nil {
		t.Fatal(err)
	}
	st = s.waitFor("serial 11 answered again", 3*time.Second, func(st ZoneStatus) bool {
		return st.State == StateOK && st.Serial == 11 && s.query("www.example.test.", dns.TypeA).Rcode == dns.RcodeSuccess
	})
	if got := st.ExpireAt.Sub(st.LastRefresh); got != secs(xfrLeft) {
		t.Errorf("expire deadline %v after the refresh, want the transfer's %ds", got, xfrLeft)
	}

	kinds := map[uint16]int{}
	for i, q := range f.queries() {
		kinds[q.qtype]++
		if !q.expire || !q.expireEmpty {
			t.Errorf("query %d (%s): EXPIRE option %v, empty %v; want an empty one", i+1, dns.TypeToString[q.qtype], q.expire, q.expireEmpty)
		}
	}
	if kinds[dns.TypeSOA] < 2 || kinds[dns.TypeAXFR] != 1 || kinds[dns.TypeIXFR] != 1 {
		t.Errorf("queries by type %v: want SOA checks, one AXFR, one IXFR", kinds)
	}
}
