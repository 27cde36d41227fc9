package rrl_test

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/rrl"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
	"github.com/xdpns/xdpns/userspace/zone"
)

const floodZone = `$ORIGIN flood.test.
$TTL 300
@	SOA ns hostmaster 1 3600 600 86400 300
@	NS ns
ns	A 198.18.0.1
www	A 198.18.0.10
`

// The flood: 2000 queries a second for 2 s from 127.0.0.1 for one name,
// against 50 responses a second, a window of 4 s (knotd's fixed bucket
// capacity), slip 2.
const (
	floodRate   = 50
	floodWindow = 4 * time.Second
	floodQPS    = 2000
	floodCount  = 4000
)

// expectedAnswers is what a GCRA bucket lets through during a flood that
// lasted elapsed: a window's burst, then the rate.
func expectedAnswers(elapsed time.Duration) float64 {
	return floodRate*floodWindow.Seconds() + floodRate*elapsed.Seconds()
}

func within(got int, want, tol float64) bool {
	return math.Abs(float64(got)-want) <= tol*want
}

func dialFrom(t *testing.T, from string, to netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("udp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func query(t *testing.T, name string) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runFlood floods target from 127.0.0.1, then asks from another /24
// (127.0.1.1) and another address of the flooded one (127.0.0.2).
func runFlood(t *testing.T, who string, target netip.AddrPort) (flood, other, same testenv.FloodResult) {
	q := query(t, "www.flood.test.")
	// Warm up the path (ARP-free loopback, but the first packet of a
	// socket is slow) without spending budget: from an unrelated /24.
	testenv.Flood(dialFrom(t, "127.0.9.1", target), q, 1, 1, 500*time.Millisecond)
	flood = testenv.Flood(dialFrom(t, "127.0.0.1", target), q, floodCount, floodQPS, 500*time.Millisecond)
	other = testenv.Flood(dialFrom(t, "127.0.1.1", target), q, 20, 200, 500*time.Millisecond)
	// The flooded /24 has earned some credit since (about 0.6 s of its
	// rate here, up to a second's in knotd, which refills once a second):
	// 100 more queries at once are limited again.
	same = testenv.Flood(dialFrom(t, "127.0.0.2", target), q, 100, 2000, 500*time.Millisecond)
	t.Logf("%s: flood %+v; other /24 %+v; same /24 %+v", who, flood, other, same)
	return
}

// TestFloodLoopback: the Go server with server.rrl and knotd with mod-rrl
// (a real peer) get the same flood in one run: each cuts it to about the
// budget (burst + rate), half the rest slipped, the other /24 untouched,
// the rest of the flooded /24 limited too.
func TestFloodLoopback(t *testing.T) {
	z, _, err := zone.Parse(strings.NewReader(floodZone), "flood.zone", "flood.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp := responder.New(responder.Config{})
	resp.SetZones([]*zone.Zone{z})
	lim := rrl.New(rrl.Config{ResponsesPerSecond: floodRate, Window: floodWindow, Slip: 2}, nil)
	port := testenv.FreePort(t)
	srv := server.New(server.Config{Listen: []string{fmt.Sprintf("127.0.0.1:%d", port)}, UDPSockets: 1, RRL: lim}, resp, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ours := netip.MustParseAddrPort(srv.Addrs()[0])

	flood, other, same := runFlood(t, "xdpns", ours)
	want := expectedAnswers(flood.Elapsed)
	if !within(flood.Answered, want, 0.1) {
		t.Errorf("xdpns answered %d of the flood, want %.0f ±10%%", flood.Answered, want)
	}
	limited := float64(flood.Sent - flood.Answered)
	if !within(flood.Truncated, limited/2, 0.05) {
		t.Errorf("xdpns slipped %d, want half of %0.f", flood.Truncated, limited)
	}
	if other.Answered != other.Sent {
		t.Errorf("xdpns: the other /24 got %d answers of %d", other.Answered, other.Sent)
	}
	if same.Answered > 3*floodRate/2 {
		t.Errorf("xdpns: the flooded /24 got %d answers of %d more", same.Answered, same.Sent)
	}
	if s := lim.Stats.Sent.Load() + lim.Stats.Slipped.Load() + lim.Stats.Dropped.Load(); s != uint64(flood.Sent+other.Sent+same.Sent+1) {
		t.Errorf("limiter decided %d responses, %d queries sent", s, flood.Sent+other.Sent+same.Sent+1)
	}

	testenv.RequireBinary(t, "knotd")
	k := peer.StartKnot(t, peer.KnotConfig{
		Zones:        []peer.Zone{{Name: "flood.test.", Text: floodZone}},
		Modules:      fmt.Sprintf("mod-rrl:\n  - id: flood\n    rate-limit: %d\n    slip: 2\n", floodRate),
		GlobalModule: "mod-rrl/flood",
	})
	kf, kother, ksame := runFlood(t, "knotd", k.Addr())
	// knotd: a bucket of 4 s at start, refilled once a second (so up to a
	// second's rate more), slips at random with probability 1/slip.
	if !within(kf.Answered, want, 0.35) {
		t.Errorf("knotd answered %d of the flood, xdpns %d, model %.0f", kf.Answered, flood.Answered, want)
	}
	if !within(kf.Truncated, float64(flood.Truncated), 0.2) {
		t.Errorf("knotd slipped %d, xdpns %d", kf.Truncated, flood.Truncated)
	}
	if kother.Answered != kother.Sent || other.Answered != kother.Answered {
		t.Errorf("other /24: knotd %d, xdpns %d answers of %d", kother.Answered, other.Answered, kother.Sent)
	}
	if ksame.Answered > 3*floodRate/2 {
		// Not ours to require: knotd's buckets are refilled per second
		// and its "leaves limiting" can fall between the flood and this
		// burst on a busy machine (seen in CI: 100 of 100 answered).
		t.Logf("knotd: the flooded /24 got %d answers of %d more (xdpns %d): knotd had left limiting", ksame.Answered, ksame.Sent, same.Answered)
	}
}
