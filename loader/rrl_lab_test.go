package loader

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/rrl"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TestRRLLab: the flood of userspace/rrl's TestFloodLoopback (2000 q/s for
// 2 s against 50/s, window 4 s, slip 2) on the veth lab with native XDP:
// a name XDP answers from one client, a name only Go answers (NXDOMAIN
// below a CNAME owner) from the other: both cut to the same figures, XDP
// by itself, Go through the shared map; then Go's answers to the client
// XDP limited are limited too (one budget).
func TestRRLLab(t *testing.T) {
	l := newLab(t)
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	resp := responder.New(responder.Config{})
	resp.SetZones([]*zone.Zone{z})
	x, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if _, err := x.LoadZones(z); err != nil {
		t.Fatal(err)
	}
	const rate, qps, count = 50, 2000, 4000
	cfg := rrl.Config{ResponsesPerSecond: rate, NXDomainsPerSecond: rate, Window: 4 * time.Second, Slip: 2}
	if err := x.SetRRL(cfg); err != nil {
		t.Fatal(err)
	}
	lim := rrl.New(cfg, x.RRLTable(nil))
	var srv *server.Server
	l.inServer(func() error {
		srv = server.New(server.Config{
			Listen:     []string{netip.AddrPortFrom(l.server4, 53).String(), netip.AddrPortFrom(l.server6, 53).String()},
			UDPSockets: 1, RRL: lim,
		}, resp, nil)
		return srv.Start()
	})
	t.Cleanup(func() { srv.Close() })
	l.attach(x, ModeNative)

	model := func(elapsed time.Duration) float64 { return rate*4 + rate*elapsed.Seconds() }
	check := func(who string, r testenv.FloodResult) {
		t.Helper()
		t.Logf("%s: %+v (model %.0f answered)", who, r, model(r.Elapsed))
		if want := model(r.Elapsed); math.Abs(float64(r.Answered)-want) > 0.1*want {
			t.Errorf("%s: answered %d, want %.0f ±10%%", who, r.Answered, want)
		}
		if half := float64(r.Sent-r.Answered) / 2; math.Abs(float64(r.Truncated)-half) > 0.05*half {
			t.Errorf("%s: slipped %d, want about %.0f", who, r.Truncated, half)
		}
	}
	pack := func(name string, qtype uint16) []byte {
		return packQuery(t, 0, name, qtype, edns)
	}

	// An answer too large for the veth frame (pass__no_room): XDP gives
	// back what it charged, Go charges once. 150 of a burst of 200 all
	// answered (charged twice, the last 50 would be limited).
	x0, _ := x.Stats()
	big := testenv.Flood(l.dial("udp", netip.AddrPortFrom(l.server6, 53)), pack("mid.xdp.test.", dns.TypeTXT), 150, 2000, 300*time.Millisecond)
	t.Logf("Go, a TXT XDP has no room for: %+v", big)
	if x1, _ := x.Stats(); x1.Sub(x0).Get("pass__no_room") != 150 {
		t.Errorf("XDP counters for the large answers: %v", x1.Sub(x0).NonZero())
	}
	if big.Answered != 150 {
		t.Errorf("large answers: %d of 150 answered (charged twice?)", big.Answered)
	}

	st0, _ := x.RRLStats()
	udp0 := srv.Stats.UDPQueries.Load()
	r := testenv.Flood(l.dial("udp", netip.AddrPortFrom(l.server4, 53)), pack("short.xdp.test.", dns.TypeA), count, qps, 500*time.Millisecond)
	check("XDP, 198.18.0.2", r)
	st1, _ := x.RRLStats()
	if n := srv.Stats.UDPQueries.Load() - udp0; n > 10 {
		t.Errorf("the Go server saw %d of the XDP flood", n)
	}
	if d := st1["rrl__slipped"] - st0["rrl__slipped"]; int(d) != r.Truncated {
		t.Errorf("rrl__slipped %d, client saw %d", d, r.Truncated)
	}
	if d := st1["rrl__sent"] - st0["rrl__sent"]; int(d) != r.Answered {
		t.Errorf("rrl__sent %d, client saw %d", d, r.Answered)
	}

	// Go answers ANY (XDP passes it): the budget XDP spent is Go's too.
	anyq := testenv.Flood(l.dial("udp", netip.AddrPortFrom(l.server4, 53)), pack("short.xdp.test.", dns.TypeANY), 100, 2000, 300*time.Millisecond)
	t.Logf("Go, ANY from the flooded client: %+v", anyq)
	if anyq.Answered > 3*rate/2 || anyq.Answered+anyq.Truncated == 0 {
		t.Errorf("Go answered %d of 100 to the client XDP limited", anyq.Answered)
	}

	// A flood only Go answers, from the other client (its own /56).
	g0 := lim.Stats.Slipped.Load()
	r = testenv.Flood(l.dial("udp", netip.AddrPortFrom(l.server6, 53)), pack("nope.x.xdp.test.", dns.TypeA), count, qps, 500*time.Millisecond)
	check("Go, 2001:2::2, NXDOMAIN", r)
	if d := lim.Stats.Slipped.Load() - g0; int(d) != r.Truncated {
		t.Errorf("Go slipped %d, client saw %d", d, r.Truncated)
	}
}
