package xfr

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/xfr/internal/peer"
)

// bindPrimary starts named serving testZone, notifying notifyPort (0: no
// NOTIFY).
func bindPrimary(t *testing.T, text string, notifyPort int) *peer.Named {
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

// Issue 3, test 2: an update at the primary reaches the secondary by
// NOTIFY and IXFR, and is answered within a second.
func TestBINDNotifyIXFR(t *testing.T) {
	t.Parallel()
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(1, 3600, 600, 86400), port(nl))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nl)
	s.waitSerial(1, 5*time.Second)

	start := time.Now()
	named.Update(testZone, func(m *dns.Msg) {
		m.Insert([]dns.RR{rr(t, "new.example.test. 300 IN A 198.18.1.1")})
	})
	for {
		if m := s.query("new.example.test.", dns.TypeA); m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("change not served within 1s; status %+v", s.status(testZone))
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("update → served: %v", time.Since(start))
	st := s.status(testZone)
	if st.Counters.Incremental != 1 || st.Counters.Full != 1 || st.Counters.Notifies == 0 {
		t.Errorf("counters %+v: want the change by NOTIFY and IXFR", st.Counters)
	}
	sameZone(t, named.AXFR(testZone, nil), s.served())
	_, journal, _, _ := s.m.Snapshot(testZone)
	if len(journal) != 1 || journal[0].From != 1 || journal[0].To != st.Serial {
		t.Errorf("journal %v, want one difference 1→%d", journal, st.Serial)
	}
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

var _ = os.Remove
var _ = filepath.Join
