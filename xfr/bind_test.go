package xfr

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv/peer"
)

// bindPrimary starts named serving testZone, notifying notifyPort (0: no
// NOTIFY).
func bindPrimary(t testing.TB, text string, notifyPort int) *peer.Named {
	t.Helper()
	return peer.StartNamed(t, peer.NamedConfig{
		Zones:      []peer.Zone{{Name: testZone, Text: text}},
		NotifyPort: notifyPort,
	})
}

// Issue 3, test 1: the first transfer is an AXFR and the served zone equals
// the primary's.
func TestBINDInitialAXFR(t *testing.T) {
	t.Parallel()
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(2024010101, 3600, 600, 86400), port(nl))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nl)
	st := s.waitSerial(2024010101, 5*time.Second)
	if st.Counters.Full != 1 || st.Counters.Incremental != 0 {
		t.Errorf("counters %+v: want one full transfer", st.Counters)
	}
	if st.Source != named.Addr().String() || st.State != StateOK {
		t.Errorf("status %+v", st)
	}
	sameZone(t, named.AXFR(testZone, nil), s.served())
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || !m.Authoritative {
		t.Errorf("www A: %v", m)
	}
}

// Issue 3, test 2: a change made at the primary with nsupdate reaches the
// secondary by NOTIFY and IXFR (not AXFR), and is answered within a second
// of the moment nsupdate was started.
func TestBINDNotifyIXFR(t *testing.T) {
	t.Parallel()
	peer.Need(t, "nsupdate")
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(1, 3600, 600, 86400), port(nl))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nl)
	s.waitSerial(1, 5*time.Second)

	start := time.Now()
	named.Nsupdate(testZone, "update add new.example.test. 300 IN A 198.18.1.1")
	updated := time.Since(start)
	for {
		if m := s.query("new.example.test.", dns.TypeA); m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("change not served within 1s; status %+v", s.status(testZone))
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("nsupdate started → served: %v (nsupdate itself took %v)", time.Since(start), updated)
	st := s.status(testZone)
	if st.Counters.Incremental != 1 || st.Counters.Full != 1 || st.Counters.Notifies == 0 {
		t.Errorf("counters %+v: want the change by NOTIFY and IXFR", st.Counters)
	}
	if st.Serial != 2 || named.Serial(testZone) != 2 {
		t.Errorf("serial %d here, %d at the primary; want 2 (one update)", st.Serial, named.Serial(testZone))
	}
	// named's side of it (read before our reference AXFR below): it served
	// the first AXFR, then an IXFR.
	if log := named.Log(); !strings.Contains(log, "IXFR started (serial 1 -> 2)") || strings.Count(log, "AXFR started") != 1 {
		t.Errorf("named did not log one AXFR then an IXFR:\n%s", transferLines(log))
	}
	sameZone(t, named.AXFR(testZone, nil), s.served())
	_, journal, _, _ := s.m.Snapshot(testZone)
	if len(journal) != 1 || journal[0].From != 1 || journal[0].To != st.Serial {
		t.Errorf("journal %v, want one difference 1→%d", journal, st.Serial)
	}
}

// transferLines are named's log lines about outgoing transfers.
func transferLines(log string) string {
	return strings.Join(logLines(log, "transfer of"), "\n")
}

// Issue 3, test 3: random updates in a row; after each the served zone
// equals the primary's, and every change came by IXFR.
func TestBINDRandomUpdates(t *testing.T) {
	t.Parallel()
	updates := 200
	if testing.Short() {
		updates = 50
	}
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(1, 3600, 600, 86400), port(nl))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nl)
	s.waitSerial(1, 5*time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for i := range updates {
		named.Update(testZone, func(m *dns.Msg) { randomUpdate(t, rng, m, s.served().Records()) })
		serial := named.Serial(testZone)
		s.waitSerial(serial, 3*time.Second)
		sameZone(t, named.AXFR(testZone, nil), s.served())
		if t.Failed() {
			t.Fatalf("after update %d", i)
		}
	}
	st := s.status(testZone)
	t.Logf("%d updates in %v; counters %+v", updates, time.Since(start), st.Counters)
	if st.Counters.Full != 1 || st.Counters.Incremental != uint64(updates) {
		t.Errorf("counters %+v: want 1 full and %d incremental transfers", st.Counters, updates)
	}
}

// randomUpdate fills m with one random change: add an address, TXT or MX,
// delete a record or an RRset, change a TTL.
func randomUpdate(t *testing.T, rng *rand.Rand, m *dns.Msg, cur []dns.RR) {
	name := fmt.Sprintf("h%d.example.test.", rng.IntN(40))
	var deletable []dns.RR
	for _, r := range cur {
		h := r.Header()
		if strings.HasPrefix(h.Name, "h") && h.Rrtype != dns.TypeSOA {
			deletable = append(deletable, r)
		}
	}
	switch op := rng.IntN(6); {
	case op == 0 && len(deletable) > 0:
		m.Remove([]dns.RR{dns.Copy(deletable[rng.IntN(len(deletable))])}) // Remove rewrites the record
	case op == 1 && len(deletable) > 0:
		d := deletable[rng.IntN(len(deletable))]
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: d.Header().Name, Rrtype: d.Header().Rrtype, Class: dns.ClassINET}}})
	case op == 2 && len(deletable) > 0:
		d := dns.Copy(deletable[rng.IntN(len(deletable))])
		d.Header().Ttl = uint32(60 + rng.IntN(3600))
		m.Insert([]dns.RR{d})
	case op == 3:
		m.Insert([]dns.RR{rr(t, fmt.Sprintf("%s %d IN TXT \"v=%d\" \"r%d\"", name, 60+rng.IntN(600), rng.IntN(1000), rng.IntN(1000)))})
	case op == 4:
		m.Insert([]dns.RR{rr(t, fmt.Sprintf("%s 300 IN MX %d mx%d.example.test.", name, rng.IntN(50), rng.IntN(5)))})
	default:
		m.Insert([]dns.RR{rr(t, fmt.Sprintf("%s 300 IN A 198.18.%d.%d", name, rng.IntN(256), rng.IntN(256)))})
		if rng.IntN(2) == 0 {
			m.Insert([]dns.RR{rr(t, fmt.Sprintf("%s 300 IN AAAA 2001:2::%x", name, rng.IntN(65536)))})
		}
	}
}

// Issue 3, test 4: the primary lost its journal, as an operator loses it:
// `rndc sync -clean` folds the journal into the zone file and deletes it,
// then the zone file is edited by hand between `rndc freeze` and `rndc
// thaw` with a serial bump. No journal covers our serial, so named answers
// our IXFR with the full zone, which replaces ours.
func TestBINDJournalGone(t *testing.T) {
	t.Parallel()
	peer.Need(t, "nsupdate", "rndc")
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(1, 3600, 600, 86400), port(nl))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nl)
	s.waitSerial(1, 5*time.Second)
	named.Nsupdate(testZone, "update add a.example.test. 300 IN A 198.18.2.1")
	s.waitSerial(named.Serial(testZone), 3*time.Second)

	file := named.ZoneFile(testZone)
	jnl := file + ".jnl"
	if _, err := os.Stat(jnl); err != nil {
		t.Fatalf("named wrote no journal: %v", err)
	}
	named.Rndc("sync", "-clean", testZone)
	if _, err := os.Stat(jnl); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("journal still there after rndc sync -clean (%v)", err)
	}
	// named writes the file in the background (to a temporary file that it
	// renames): the edit below must not race with that dump.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err == nil && strings.Contains(string(b), "198.18.2.1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rndc sync did not write the update into %s (%v):\n%s", file, err, b)
		}
	}
	named.Rndc("freeze", testZone)
	text := zoneText(10, 3600, 600, 86400) + "b IN A 198.18.2.2\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// named reloads on thaw only a file newer than its last load; a hand
	// edit comes seconds after the dump, ours milliseconds, within the
	// file system's coarse timestamps.
	if later := time.Now().Add(time.Second); os.Chtimes(file, later, later) != nil {
		t.Fatal("cannot set the zone file's time")
	}
	named.Rndc("thaw", testZone) // named loads the file and NOTIFYs
	st := s.waitSerial(10, 3*time.Second)
	if st.Counters.Full != 2 || st.Counters.Incremental != 1 {
		t.Errorf("counters %+v: want the journal-less change as a full transfer", st.Counters)
	}
	sameZone(t, named.AXFR(testZone, nil), s.served())
	if _, journal, _, _ := s.m.Snapshot(testZone); len(journal) != 0 {
		t.Errorf("journal after a full transfer: %v, want empty", journal)
	}
	// We asked for IXFR (we hold serial 2); named had no journal for it.
	if !strings.Contains(named.Log(), "AXFR-style IXFR started") {
		t.Errorf("named did not answer an IXFR with the full zone:\n%s", transferLines(named.Log()))
	}
}

// Issue 3, test 5: without NOTIFY the refresh timer finds the change.
func TestBINDRefreshTimer(t *testing.T) {
	t.Parallel()
	named := bindPrimary(t, zoneText(1, 1, 1, 86400), 0)
	s := startSecondary(t, Config{Timers: fastTimers, Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nil)
	s.waitSerial(1, 5*time.Second)
	named.Update(testZone, func(m *dns.Msg) {
		m.Insert([]dns.RR{rr(t, "late.example.test. 300 IN A 198.18.3.1")})
	})
	start := time.Now()
	st := s.waitSerial(named.Serial(testZone), 3*time.Second)
	t.Logf("refresh timer picked the change up after %v", time.Since(start))
	if st.Counters.Notifies != 0 || st.Counters.Incremental != 1 {
		t.Errorf("counters %+v: want one IXFR and no NOTIFY", st.Counters)
	}
	sameZone(t, named.AXFR(testZone, nil), s.served())
}

// Issue 3, test 6: the primary goes away: retries, then past expire the
// zone answers SERVFAIL; the primary comes back and the zone recovers.
func TestBINDExpiry(t *testing.T) {
	t.Parallel()
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(7, 1, 1, 2), port(nl))
	s := startSecondary(t, Config{
		Timers:   fastTimers,
		Timeouts: Timeouts{Query: 200 * time.Millisecond},
		Zones:    []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}},
	}, nl)
	s.waitSerial(7, 5*time.Second)
	named.Stop()
	down := time.Now()
	s.waitFor("retrying", 3*time.Second, func(st ZoneStatus) bool { return st.State == StateRetrying })
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("before expire: rcode %s, want NOERROR", dns.RcodeToString[m.Rcode])
	}
	st := s.waitFor("expired", 4*time.Second, func(st ZoneStatus) bool { return st.State == StateExpired })
	t.Logf("expired %v after the primary stopped; %d failed checks", time.Since(down), st.Counters.Failures)
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("expired: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if st.Counters.Failures < 1 {
		t.Errorf("counters %+v: want failed checks before expiry", st.Counters)
	}

	named.Start()
	named.WaitZone(testZone)
	s.waitFor("recovered", 3*time.Second, func(st ZoneStatus) bool { return st.State == StateOK })
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("recovered: %v", m)
	}
	if _, exp := s.events(); len(exp) != 2 || !exp[0] || exp[1] {
		t.Errorf("OnExpire calls %v, want [true false]", exp)
	}
}

// Issue 3, test 7: the first primaries do not answer (one drops packets,
// one has nothing listening); the last one serves the transfer.
func TestBINDFailover(t *testing.T) {
	t.Parallel()
	named := bindPrimary(t, zoneText(3, 3600, 600, 86400), 0)
	blackhole, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close()
	closed := peer.FreePort(t)
	s := startSecondary(t, Config{
		Timeouts: Timeouts{Query: 300 * time.Millisecond},
		Zones: []Zone{{Name: testZone, Primaries: []Primary{
			{Addr: netip.AddrPortFrom(loopback, uint16(blackhole.LocalAddr().(*net.UDPAddr).Port))},
			{Addr: netip.AddrPortFrom(loopback, uint16(closed))},
			primaryOf(named),
		}}},
	}, nil)
	start := time.Now()
	st := s.waitSerial(3, 3*time.Second)
	t.Logf("served from the third primary after %v", time.Since(start))
	if st.Source != named.Addr().String() {
		t.Errorf("source %s, want %s", st.Source, named.Addr())
	}
	sameZone(t, named.AXFR(testZone, nil), s.served())
}

// TestBINDIXFRFallbackSecondPrimary: a primary whose transfer fails is left
// for the next one in the same check.
func TestBINDTransferFailover(t *testing.T) {
	t.Parallel()
	refusing := peer.StartNamed(t, peer.NamedConfig{Zones: []peer.Zone{{Name: testZone, Text: zoneText(5, 3600, 600, 86400), AllowTransfer: "none;"}}})
	named := bindPrimary(t, zoneText(5, 3600, 600, 86400), 0)
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(refusing), primaryOf(named)}}}}, nil)
	st := s.waitSerial(5, 3*time.Second)
	if st.Source != named.Addr().String() {
		t.Errorf("source %s, want %s", st.Source, named.Addr())
	}
	if !strings.Contains(s.log.String(), "REFUSED") {
		t.Errorf("the refused transfer is not logged")
	}
}

// RFC 7314 with a real primary: BIND 9.18 answers the EXPIRE option of an
// SOA query for a zone it is primary for, with the SOA's expire (it adds
// none to AXFR or IXFR answers). xdpns takes that value: the clamp
// ExpireMin 2h raises the SOA's 1200 s expire to 2 h, so only the option
// can bring the deadline to 1200 s after the refresh. That BIND sent the
// option at all also shows we asked for it: it answers it only when the
// query carries one.
func TestBINDEDNSExpire(t *testing.T) {
	t.Parallel()
	named := bindPrimary(t, zoneText(4, 600, 60, 1200), 0)
	s := startSecondary(t, Config{
		Timers: Timers{ExpireMin: 2 * time.Hour},
		Zones:  []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}},
	}, nil)
	st := s.waitSerial(4, 5*time.Second)
	if got := st.ExpireAt.Sub(st.LastRefresh); got != 1200*time.Second {
		t.Errorf("expire deadline %v after the refresh, want BIND's EXPIRE 1200s (the clamped SOA says 2h)", got)
	}
	if err := s.m.Refresh(testZone); err != nil {
		t.Fatal(err)
	}
	st = s.waitFor("an up-to-date check", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.UpToDate == 1 })
	if got := st.ExpireAt.Sub(st.LastRefresh); got != 1200*time.Second {
		t.Errorf("after an SOA check: expire deadline %v after it, want 1200s", got)
	}
}
