package loader

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/rrl"
)

const xdpDrop = 1

// rrlFrame is a query frame from src.
func rrlFrame(src netip.Addr, payload []byte) []byte {
	f := frame{v6: src.Is6()}
	sp, dp := f.ports()
	return buildFrame(f.l2(), f.v6, false, src, serverAddr(f.v6), sp, dp, payload, 0, false, false)
}

// TestRRL: a flood from one /24 through BPF_PROG_RUN is cut to the burst,
// then every other response slips (TC=1, the bytes the Go server sends
// for a slip) and the rest are dropped; another /24 and another budget
// are untouched; the Go limiter on the same map sees the same budget; the
// Go limiter on its own table makes the same decisions for the same
// sequence; exempt networks are answered.
func TestRRL(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	e := newEnv(t, Config{}, responder.Config{}, z)
	// 5 a second: the flood below (well under 200 ms) earns no new credit.
	cfg := rrl.Config{ResponsesPerSecond: 5, NXDomainsPerSecond: 3, Slip: 2, Window: time.Second,
		Exempt: []netip.Prefix{netip.MustParsePrefix("198.18.9.0/24"), netip.MustParsePrefix("2001:2:0:9::/64")}}
	if err := e.x.SetRRL(cfg); err != nil {
		t.Fatal(err)
	}
	goLimiter := rrl.New(cfg, nil) // userspace mode: its own table, same sequence
	shared := rrl.New(cfg, e.x.RRLTable(nil))

	var scratch responder.Scratch
	type result struct{ sent, slipped, dropped int }
	floodOne := func(src netip.Addr, name string, n int, v variant) (result, []rrl.Decision) {
		var r result
		var ds []rrl.Decision
		for i := range n {
			qry := packQuery(t, uint16(i), name, dns.TypeA, v)
			full := e.resp.Respond(&scratch, nil, qry, false)
			ret, out := run(t, e.x.Program(), rrlFrame(src, qry))
			switch ret {
			case xdpTx:
				checkChecksums(t, out)
				got := dnsPayload(out)
				if got[2]&0x02 != 0 && full[2]&0x02 == 0 {
					r.slipped++
					want, err := rrl.Slipped(nil, full)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("slip %d: XDP is not Go's slip:\n%s", i, hexDiff(got, want))
					}
					ds = append(ds, rrl.Slip)
				} else {
					r.sent++
					if !bytes.Equal(got, full) {
						t.Fatalf("answer %d: XDP is not Go's:\n%s", i, hexDiff(got, full))
					}
					ds = append(ds, rrl.Send)
				}
			case xdpDrop:
				r.dropped++
				ds = append(ds, rrl.Drop)
			default:
				t.Fatalf("query %d: verdict %d", i, ret)
			}
		}
		return r, ds
	}

	before, _ := e.x.RRLStats()
	a := netip.MustParseAddr("198.18.0.2")
	got, ds := floodOne(a, "short.xdp.test.", 40, edns)
	if want := (result{5, 17, 18}); got != want {
		t.Errorf("flood of 40 at 5/s, slip 2: %+v, want %+v", got, want)
	}
	after, _ := e.x.RRLStats()
	if d := after["rrl__slipped"] - before["rrl__slipped"]; d != 17 {
		t.Errorf("rrl__slipped moved by %d", d)
	}
	if d := after["rrl__dropped"] - before["rrl__dropped"]; d != 18 {
		t.Errorf("rrl__dropped moved by %d", d)
	}
	// The same sequence through the Go limiter, its own table.
	for i, want := range ds {
		if d := goLimiter.Check(a, rrl.KindAnswer); d != want {
			t.Errorf("query %d: Go decides %s, XDP %s", i, d, want)
		}
	}
	// Shared map: Go sees the /24's spent budget, not another's.
	if d := shared.Check(netip.MustParseAddr("198.18.0.77"), rrl.KindAnswer); d == rrl.Send {
		t.Error("Go sends to the flooded /24 from the shared map")
	}
	if d := shared.Check(netip.MustParseAddr("198.18.1.1"), rrl.KindAnswer); d != rrl.Send {
		t.Errorf("Go: another /24 got %s", d)
	}
	// Another /24, no EDNS, and IPv6: untouched.
	for _, src := range []string{"198.18.1.2", "2001:2::2"} {
		if got, _ := floodOne(netip.MustParseAddr(src), "short.xdp.test.", 4, noEDNS); got.sent != 4 {
			t.Errorf("%s: %+v, want 4 answers", src, got)
		}
	}
	// Go spends the budget of 198.18.3.0/24: XDP sees it.
	for range 5 {
		shared.Check(netip.MustParseAddr("198.18.3.200"), rrl.KindAnswer)
	}
	if got, _ := floodOne(netip.MustParseAddr("198.18.3.1"), "short.xdp.test.", 2, edns); got.sent != 0 {
		t.Errorf("after Go spent the budget, XDP sent %d", got.sent)
	}
	// NXDOMAIN: its own budget (3) in the flooded /24.
	if got, _ := floodOne(a, "nope.xdp.test.", 7, edns); got != (result{3, 2, 2}) {
		t.Errorf("nxdomain flood: %+v", got)
	}
	// Exempt networks.
	for _, src := range []string{"198.18.9.1", "2001:2:0:9::5"} {
		if got, _ := floodOne(netip.MustParseAddr(src), "short.xdp.test.", 10, edns); got.sent != 10 {
			t.Errorf("exempt %s: %+v", src, got)
		}
	}
	// Off: everything answered again.
	if err := e.x.SetRRL(rrl.Config{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := floodOne(a, "short.xdp.test.", 5, edns); got.sent != 5 {
		t.Errorf("rrl off: %+v", got)
	}
}
