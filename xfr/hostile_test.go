package xfr

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// fakePrimary is an in-process primary on 127.0.0.1 (UDP and TCP on one
// port) whose answers a test scripts: it can be as wrong as a test needs.
type fakePrimary struct {
	addr netip.AddrPort

	mu     sync.Mutex
	serial uint32                                 // SOA queries answer this serial
	xfr    func(w dns.ResponseWriter, q *dns.Msg) // AXFR and IXFR queries
	xfrs   int                                    // transfer queries received
	nonAA  bool                                   // SOA answers without AA
	refuse bool                                   // SOA queries answered REFUSED (Knot 3.2 with catalogs)
	expire *uint32                                // EDNS EXPIRE in SOA answers, when asked for
	seen   []seenQuery                            // every query, in order
}

// seenQuery is what the fake primary noted about a query.
type seenQuery struct {
	qtype uint16
	// expire: the query carried an EDNS EXPIRE option; expireEmpty: with
	// no value, as a query's must be (RFC 7314 §2).
	expire, expireEmpty bool
}

// askedExpire says whether q carries an EDNS EXPIRE option and whether it
// is empty.
func askedExpire(q *dns.Msg) (asked, empty bool) {
	opt := q.IsEdns0()
	if opt == nil {
		return false, false
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EXPIRE); ok {
			return true, e.Empty
		}
	}
	return false, false
}

// queries returns the queries received so far.
func (f *fakePrimary) queries() []seenQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenQuery(nil), f.seen...)
}

func startFake(t *testing.T) *fakePrimary {
	t.Helper()
	f := &fakePrimary{}
	f.addr = testenv.ServeDNS(t, dns.HandlerFunc(f.serve), nil)
	return f
}

func (f *fakePrimary) set(serial uint32, xfr func(w dns.ResponseWriter, q *dns.Msg)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serial, f.xfr = serial, xfr
}

func (f *fakePrimary) serve(w dns.ResponseWriter, q *dns.Msg) {
	f.mu.Lock()
	serial, xfr, nonAA, expire, refuse := f.serial, f.xfr, f.nonAA, f.expire, f.refuse
	if len(q.Question) == 1 && (q.Question[0].Qtype == dns.TypeAXFR || q.Question[0].Qtype == dns.TypeIXFR) {
		f.xfrs++
	}
	asked, empty := askedExpire(q)
	if len(q.Question) == 1 {
		f.seen = append(f.seen, seenQuery{qtype: q.Question[0].Qtype, expire: asked, expireEmpty: empty})
	}
	f.mu.Unlock()
	if len(q.Question) != 1 {
		return
	}
	switch q.Question[0].Qtype {
	case dns.TypeSOA:
		m := new(dns.Msg)
		m.SetReply(q)
		if refuse {
			m.Rcode = dns.RcodeRefused
			_ = w.WriteMsg(m)
			return
		}
		m.Authoritative = !nonAA
		m.Answer = []dns.RR{soaRR(serial)}
		if expire != nil && asked {
			// Only when asked, as BIND does.
			m.SetEdns0(1232, false)
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Expire: *expire})
		}
		_ = w.WriteMsg(m)
	case dns.TypeAXFR, dns.TypeIXFR:
		if _, ok := w.RemoteAddr().(*net.TCPAddr); !ok {
			return
		}
		xfr(w, q)
	}
}

func soaRR(serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: testZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns:  "ns1.example.test.", Mbox: "hostmaster.example.test.",
		Serial: serial, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
	}
}

// zoneRRs is zoneText's zone at serial, SOA first, no closing SOA.
func zoneRRs(t testing.TB, serial uint32) []dns.RR {
	zp := dns.NewZoneParser(strings.NewReader(zoneText(serial, 3600, 600, 86400)), testZone, "")
	var out []dns.RR
	for r, ok := zp.Next(); ok; r, ok = zp.Next() {
		out = append(out, r)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// send writes the records in messages of at most per records.
func send(w dns.ResponseWriter, q *dns.Msg, rrs []dns.RR, per int) {
	for len(rrs) > 0 {
		n := min(per, len(rrs))
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.Answer = rrs[:n]
		if err := w.WriteMsg(m); err != nil {
			return
		}
		rrs = rrs[n:]
	}
}

// axfrOf answers every transfer with these records (closing SOA added).
func axfrOf(rrs []dns.RR) func(w dns.ResponseWriter, q *dns.Msg) {
	return func(w dns.ResponseWriter, q *dns.Msg) {
		send(w, q, append(append([]dns.RR(nil), rrs...), rrs[0]), 4)
	}
}

// Issue 3, test 10: a hostile primary cannot make the secondary serve
// anything but the last good zone.
func TestHostilePrimary(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	good := zoneRRs(t, 10)
	f.set(10, axfrOf(good))
	s := startSecondary(t, Config{
		Limits:   Limits{MaxRecords: 1000},
		Timeouts: Timeouts{Read: 300 * time.Millisecond},
		Zones:    []Zone{{Name: testZone, Primaries: []Primary{{Addr: f.addr}}}},
	}, nil)
	s.waitSerial(10, 3*time.Second)
	want := s.served().Records()

	with := func(serial uint32, edit func(rrs []dns.RR) []dns.RR) func(w dns.ResponseWriter, q *dns.Msg) {
		rrs := zoneRRs(t, serial)
		return axfrOf(edit(rrs))
	}
	bigTXT := &dns.TXT{Hdr: dns.RR_Header{Name: "big.example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
	for range 80 {
		bigTXT.Txt = append(bigTXT.Txt, strings.Repeat("x", 250))
	}
	cases := []struct {
		name   string
		serial uint32 // announced by the SOA query
		xfr    func(w dns.ResponseWriter, q *dns.Msg)
		want   string // in the status's last error
	}{
		{"wrong zone", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			other := zoneRRs(t, 11)
			for _, r := range other {
				h := r.Header()
				h.Name = strings.Replace(h.Name, "example.test.", "other.test.", 1)
			}
			send(w, q, append(other, other[0]), 4)
		}, "wrong zone: transfer starts with the SOA of other.test."},
		{"serial going backwards", 9, axfrOf(zoneRRs(t, 9)), "its serial 9 is behind ours (10)"},
		{"serial 2^31 away", 10 + 1<<31, axfrOf(zoneRRs(t, 10+1<<31)), "incomparable (RFC 1982)"},
		{"transfer older than announced", 12, axfrOf(zoneRRs(t, 11)), "the primary announced 12"},
		{"stream cut mid-AXFR", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			send(w, q, zoneRRs(t, 11)[:6], 3)
			w.Close()
		}, "connection closed"},
		{"stream stalls", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			send(w, q, zoneRRs(t, 11)[:6], 3)
			time.Sleep(time.Second)
		}, "timeout"},
		{"record outside the zone", 11, with(11, func(rrs []dns.RR) []dns.RR {
			return append(rrs, rr(t, "evil.other.test. 300 IN A 198.18.6.6"))
		}), "record outside the zone: evil.other.test."},
		{"glue outside the zone", 11, with(11, func(rrs []dns.RR) []dns.RR {
			return append(rrs, rr(t, "ns.other.test. 300 IN A 198.18.6.6"), rr(t, "example.test. 300 IN NS ns.other.test."))
		}), "record outside the zone: ns.other.test."},
		{"oversized record", 11, with(11, func(rrs []dns.RR) []dns.RR {
			return append(rrs, bigTXT)
		}), "exceeds the limit"},
		{"too many records", 11, with(11, func(rrs []dns.RR) []dns.RR {
			for i := range 1000 {
				rrs = append(rrs, rr(t, fmt.Sprintf("n%d.example.test. 300 IN A 198.18.7.1", i)))
			}
			return rrs
		}), "exceeds 1000 records"},
		{"no apex NS", 11, with(11, func(rrs []dns.RR) []dns.RR {
			var out []dns.RR
			for _, r := range rrs {
				if r.Header().Rrtype != dns.TypeNS || r.Header().Name != testZone {
					out = append(out, r)
				}
			}
			return out
		}), "no NS at the apex"},
		{"CNAME beside data", 11, with(11, func(rrs []dns.RR) []dns.RR {
			return append(rrs, rr(t, "www.example.test. 300 IN CNAME mx.example.test."))
		}), "CNAME beside other data"},
		{"SOA inside the zone", 11, with(11, func(rrs []dns.RR) []dns.RR {
			return append(rrs[:5:5], append([]dns.RR{soaRR(5)}, rrs[5:]...)...)
		}), "closing SOA has serial 5"},
		{"SOA not at the apex", 11, with(11, func(rrs []dns.RR) []dns.RR {
			s := soaRR(11)
			s.Hdr.Name = "www.example.test."
			return append(rrs, s)
		}), "SOA not at the apex"},
		{"records after the closing SOA", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			rrs := zoneRRs(t, 11)
			send(w, q, append(append(rrs, rrs[0]), rr(t, "late.example.test. 300 IN A 198.18.6.7")), 100)
		}, "after the closing SOA"},
		{"not starting with SOA", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			rrs := zoneRRs(t, 11)
			send(w, q, append(rrs[1:], rrs[0]), 4)
		}, "does not start with the SOA"},
		{"garbage", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			b := make([]byte, 40)
			copy(b, []byte{byte(q.Id >> 8), byte(q.Id), 0x84, 0, 0, 1, 0, 9})
			_, _ = w.Write(b)
		}, "malformed"},
		{"wrong ID", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			m.Id++
			m.Answer = zoneRRs(t, 11)
			_ = w.WriteMsg(m)
		}, "answer ID"},
		{"wrong question", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			m.Question[0].Name = "other.test."
			m.Answer = zoneRRs(t, 11)
			_ = w.WriteMsg(m)
		}, "answer is for other.test."},
		{"error rcode", 11, func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}, "primary answered SERVFAIL"},
		{"record without data", 11, with(11, func(rrs []dns.RR) []dns.RR {
			// An A with RDLENGTH 0 unpacks (dynamic update style); the
			// zone must refuse it rather than serve an empty address.
			return append(rrs, &dns.A{Hdr: dns.RR_Header{Name: "empty.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}})
		}), "record without data"},
		{"class CH record", 11, with(11, func(rrs []dns.RR) []dns.RR {
			r := rr(t, "ch.example.test. 300 CH TXT x")
			return append(rrs, r)
		}), "record of class CH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.status(testZone).Counters.Failures
			f.set(tc.serial, tc.xfr)
			if err := s.m.Refresh(testZone); err != nil {
				t.Fatal(err)
			}
			st := s.waitFor("the check to fail", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.Failures > before })
			if z := s.served(); z.Serial() != 10 {
				t.Fatalf("serving serial %d after a hostile transfer", z.Serial())
			}
			sameZone(t, want, s.served())
			if st.State != StateRetrying || !strings.Contains(st.LastError, tc.want) {
				t.Errorf("state %s, last error %q: want it to say %q", st.State, st.LastError, tc.want)
			}
			t.Logf("%s", st.LastError)
		})
	}
	// After all that, an honest transfer still works.
	f.set(11, axfrOf(zoneRRs(t, 11)))
	_ = s.m.Refresh(testZone)
	s.waitSerial(11, 3*time.Second)
}

// A non-authoritative SOA answer (a server that is not a primary for the
// zone) does not count as the primary's serial.
func TestFakeSOANotAuthoritative(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	f.mu.Lock()
	f.nonAA = true
	f.mu.Unlock()
	f.set(10, axfrOf(zoneRRs(t, 10)))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: f.addr}}}}}, nil)
	st := s.waitFor("a failed check", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.Failures > 0 })
	f.mu.Lock()
	xfrs := f.xfrs
	f.mu.Unlock()
	if !strings.Contains(st.LastError, "not authoritative") || xfrs != 0 {
		t.Errorf("last error %q, %d transfers", st.LastError, xfrs)
	}
}

// A primary that refuses our SOA query but transfers (Knot 3.2 serving a
// catalog it generates) is asked by transfer instead: AXFR while nothing
// is held, then IXFR with our serial, whose single-SOA answer means up to
// date; a newer zone arrives by that IXFR, and a broken one leaves the
// old zone served.
func TestFakeSOARefused(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	f.mu.Lock()
	f.refuse = true
	f.mu.Unlock()
	// The transfers asked since the last call (the fake notes every query).
	seen := 0
	asked := func() []uint16 {
		qs := f.queries()
		var out []uint16
		for _, q := range qs[seen:] {
			if q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR {
				out = append(out, q.qtype)
			}
		}
		seen = len(qs)
		return out
	}
	z10 := zoneRRs(t, 10)
	f.set(10, axfrOf(z10))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: f.addr}}}}}, nil)
	s.waitSerial(10, 3*time.Second)
	sameZone(t, z10, s.served())
	if q := asked(); len(q) != 1 || q[0] != dns.TypeAXFR {
		t.Errorf("first transfer asked %v, want one AXFR", q)
	}

	// Nothing new: IXFR with serial 10 answered by one SOA 10.
	f.set(10, func(w dns.ResponseWriter, q *dns.Msg) {
		if q.Question[0].Qtype != dns.TypeIXFR || len(q.Ns) != 1 || q.Ns[0].(*dns.SOA).Serial != 10 {
			t.Errorf("refresh asked %v, want IXFR with our SOA 10", q)
		}
		send(w, q, []dns.RR{soaRR(10)}, 1)
	})
	_ = s.m.Refresh(testZone)
	st := s.waitFor("a check", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.UpToDate > 0 })
	if st.Serial != 10 || st.LastError != "" || st.Counters.Full != 1 {
		t.Errorf("after an up-to-date IXFR: %+v", st)
	}
	if q := asked(); len(q) != 1 || q[0] != dns.TypeIXFR {
		t.Errorf("refresh asked %v, want one IXFR", q)
	}

	// A newer zone, by IXFR.
	diffs := []Diff{{From: 10, To: 11,
		Deleted: []dns.RR{soaRR(10)},
		Added:   []dns.RR{soaRR(11), rr(t, "n.example.test. 300 IN A 198.18.8.1")}}}
	z11 := append([]dns.RR{soaRR(11)}, z10[1:]...)
	z11 = append(z11, rr(t, "n.example.test. 300 IN A 198.18.8.1"))
	f.set(11, ixfrOf(t, 11, z11, diffs))
	_ = s.m.Refresh(testZone)
	st = s.waitSerial(11, 3*time.Second)
	sameZone(t, z11, s.served())
	if st.Counters.Incremental != 1 {
		t.Errorf("counters %+v: want one IXFR", st.Counters)
	}
	asked()

	// A transfer cut short: the failure is named, serial 11 still served.
	f.set(12, func(w dns.ResponseWriter, q *dns.Msg) {
		// A record outside the zone: refused at once, IXFR and AXFR.
		send(w, q, []dns.RR{soaRR(12), rr(t, "x.other.test. 300 IN A 198.18.8.9"), soaRR(12)}, 3)
	})
	fails := st.Counters.Failures
	_ = s.m.Refresh(testZone)
	st = s.waitFor("a failed check", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.Failures > fails })
	if st.Serial != 11 || !strings.Contains(st.LastError, "SOA query refused, then") {
		t.Errorf("after a broken transfer: serial %d, last error %q", st.Serial, st.LastError)
	}
	sameZone(t, z11, s.served())
}

// ixfrOf answers IXFR with these differences (RFC 1995 §4 layout) and AXFR
// with the full zone.
func ixfrOf(t *testing.T, serial uint32, full []dns.RR, diffs []Diff) func(w dns.ResponseWriter, q *dns.Msg) {
	return func(w dns.ResponseWriter, q *dns.Msg) {
		if q.Question[0].Qtype == dns.TypeAXFR {
			send(w, q, append(append([]dns.RR(nil), full...), full[0]), 4)
			return
		}
		out := []dns.RR{soaRR(serial)}
		for _, d := range diffs {
			out = append(out, d.Deleted...)
			out = append(out, d.Added...)
		}
		out = append(out, soaRR(serial))
		send(w, q, out, 3)
	}
}

// The differences of an IXFR apply in order, across messages; a
// difference that does not fit our zone falls back to AXFR.
func TestFakeIXFR(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	f.set(10, axfrOf(zoneRRs(t, 10)))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: f.addr}}}}}, nil)
	s.waitSerial(10, 3*time.Second)

	// Two differences in one answer: 10→11 adds a name, 11→13 changes it
	// and deletes www's AAAA.
	diffs := []Diff{
		{From: 10, To: 11,
			Deleted: []dns.RR{soaRR(10)},
			Added:   []dns.RR{soaRR(11), rr(t, "n.example.test. 300 IN A 198.18.8.1")}},
		{From: 11, To: 13,
			Deleted: []dns.RR{soaRR(11), rr(t, "N.example.test. 300 IN A 198.18.8.1"), rr(t, "www.example.test. 300 IN AAAA 2001:2::10")},
			Added:   []dns.RR{soaRR(13), rr(t, "n.example.test. 300 IN A 198.18.8.2")}},
	}
	want := zoneRRs(t, 13)
	var kept []dns.RR
	for _, r := range want {
		if r.Header().Rrtype != dns.TypeAAAA {
			kept = append(kept, r)
		}
	}
	want = append(kept, rr(t, "n.example.test. 300 IN A 198.18.8.2"))
	f.set(13, ixfrOf(t, 13, want, diffs))
	_ = s.m.Refresh(testZone)
	st := s.waitSerial(13, 3*time.Second)
	sameZone(t, want, s.served())
	if st.Counters.Incremental != 1 || st.Counters.Full != 1 {
		t.Errorf("counters %+v: want one IXFR", st.Counters)
	}
	_, journal, _, _ := s.m.Snapshot(testZone)
	if len(journal) != 2 || journal[0].From != 10 || journal[1].To != 13 {
		t.Errorf("journal %v", journal)
	}

	// 13→14 deletes a record we do not have: AXFR instead.
	bad := []Diff{{From: 13, To: 14,
		Deleted: []dns.RR{soaRR(13), rr(t, "ghost.example.test. 300 IN A 198.18.8.3")},
		Added:   []dns.RR{soaRR(14)}}}
	full14 := append([]dns.RR{soaRR(14)}, want[1:]...)
	f.set(14, ixfrOf(t, 14, full14, bad))
	_ = s.m.Refresh(testZone)
	st = s.waitSerial(14, 3*time.Second)
	sameZone(t, full14, s.served())
	if st.Counters.Full != 2 || !strings.Contains(s.log.String(), "deleted record not in the zone: ghost.example.test.") {
		t.Errorf("counters %+v: want a logged fallback to AXFR", st.Counters)
	}
	if _, journal, _, _ := s.m.Snapshot(testZone); len(journal) != 0 {
		t.Errorf("journal after AXFR: %v", journal)
	}

	// IXFR answered with the single SOA of our serial: nothing to do.
	f.set(15, func(w dns.ResponseWriter, q *dns.Msg) { send(w, q, []dns.RR{soaRR(14)}, 1) })
	_ = s.m.Refresh(testZone)
	st = s.waitFor("a check", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.UpToDate > 0 })
	if st.Serial != 14 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
}

// Retransfer forces an AXFR at the same serial; AXFROnly never asks IXFR;
// Stop abandons a stalled transfer promptly.
func TestFakeControls(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	var mu sync.Mutex
	var qtypes []uint16
	record := func(next func(w dns.ResponseWriter, q *dns.Msg)) func(w dns.ResponseWriter, q *dns.Msg) {
		return func(w dns.ResponseWriter, q *dns.Msg) {
			mu.Lock()
			qtypes = append(qtypes, q.Question[0].Qtype)
			mu.Unlock()
			next(w, q)
		}
	}
	f.set(10, record(axfrOf(zoneRRs(t, 10))))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, AXFROnly: true, Primaries: []Primary{{Addr: f.addr}}}}}, nil)
	s.waitSerial(10, 3*time.Second)

	if err := s.m.Retransfer(testZone); err != nil {
		t.Fatal(err)
	}
	st := s.waitFor("a second full transfer", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.Full == 2 })
	if st.Serial != 10 || st.State != StateOK {
		t.Errorf("after Retransfer: %+v", st)
	}

	f.set(11, record(axfrOf(zoneRRs(t, 11))))
	_ = s.m.Refresh(testZone)
	s.waitSerial(11, 3*time.Second)
	mu.Lock()
	for _, qt := range qtypes {
		if qt != dns.TypeAXFR {
			t.Errorf("AXFROnly zone sent %s", dns.TypeToString[qt])
		}
	}
	mu.Unlock()

	// A primary that stalls mid-transfer does not hold up Stop.
	f.set(12, func(w dns.ResponseWriter, q *dns.Msg) {
		send(w, q, zoneRRs(t, 12)[:3], 3)
		time.Sleep(time.Second) // longer than Stop may take
	})
	_ = s.m.Refresh(testZone)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	s.m.Stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Stop took %v with a stalled transfer", d)
	}
	if z := s.served(); z.Serial() != 11 {
		t.Errorf("serving %d after Stop", z.Serial())
	}
}
