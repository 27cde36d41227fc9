package loader

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
)

// TestZoneAnswers: XDP counts its answers per zone (exact hits, NXDOMAIN,
// referrals, whatever the path), a zone keeps its counter across loads
// and updates, and a zone that leaves the maps gives its slot back zeroed.
func TestZoneAnswers(t *testing.T) {
	a := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	b := loadZone(t, "testdata/example.net.zone", "example.net.")
	e := newEnv(t, Config{}, responder.Config{}, a, b)
	ask := func(name string, qt uint16, reason string, n int) {
		t.Helper()
		for range n {
			ret, _, st := e.query(t, frame{}.build(q(t, name, qt, edns)))
			if ret != xdpTx || st[reason] != 1 {
				t.Fatalf("%s: verdict %d %v, want %s", name, ret, st, reason)
			}
		}
	}
	ask("short.xdp.test.", dns.TypeA, "tx__answer", 3)
	ask("nope.xdp.test.", dns.TypeA, "tx__nxdomain", 2)
	ask("web.example.net.", dns.TypeA, "tx__answer", 1)
	ask("a.sub.example.net.", dns.TypeA, "tx__referral", 4)
	want := func(wa, wb uint64) {
		t.Helper()
		got, err := e.x.ZoneAnswers()
		if err != nil {
			t.Fatal(err)
		}
		if got["xdp.test."] != wa || got["example.net."] != wb || got[""] != 0 {
			t.Fatalf("zone answers %v, want xdp.test. %d, example.net. %d", got, wa, wb)
		}
	}
	want(5, 5)
	// A new generation with the same zones: the counters go on.
	if _, err := e.x.LoadZones(a, b); err != nil {
		t.Fatal(err)
	}
	ask("short.xdp.test.", dns.TypeA, "tx__answer", 1)
	want(6, 5)
	// example.net. leaves: its slot is zeroed and free; back, from 0.
	if _, err := e.x.LoadZones(a); err != nil {
		t.Fatal(err)
	}
	got, _ := e.x.ZoneAnswers()
	if _, ok := got["example.net."]; ok || got["xdp.test."] != 6 {
		t.Fatalf("after removal: %v", got)
	}
	if _, err := e.x.LoadZones(a, b); err != nil {
		t.Fatal(err)
	}
	ask("web.example.net.", dns.TypeA, "tx__answer", 2)
	want(6, 2)
}
