package rrl

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/wire"
)

// fakeClock steps by a fixed interval on every reading.
type fakeClock struct{ now, step uint64 }

func (c *fakeClock) read() uint64 { c.now += c.step; return c.now }

// flood sends n responses of kind to addr at qps, returns sent/slipped/dropped.
func flood(l *Limiter, c *fakeClock, addr netip.Addr, kind Kind, n int) (sent, slipped, dropped int) {
	for range n {
		switch l.Check(addr, kind) {
		case Send:
			sent++
		case Slip:
			slipped++
		case Drop:
			dropped++
		}
	}
	return
}

func TestFlood(t *testing.T) {
	cases := []struct {
		name                   string
		cfg                    Config
		kind                   Kind
		qps, seconds           int
		sent, slipped, dropped int
	}{
		// 1000 qps for 10 s against 100/s: a burst of 100 (one window),
		// then 100 a second: 1100 less the one the first interval owes;
		// the other 8901 split by slip 2.
		{"answers slip 2", Config{ResponsesPerSecond: 100, Slip: 2}, KindAnswer, 1000, 10, 1099, 4450, 4451},
		{"slip 0 drops all", Config{ResponsesPerSecond: 100}, KindAnswer, 1000, 10, 1099, 0, 8901},
		{"slip 1 truncates all", Config{ResponsesPerSecond: 100, Slip: 1}, KindAnswer, 1000, 10, 1099, 8901, 0},
		{"window 4: a burst of 4 s", Config{ResponsesPerSecond: 100, Window: 4 * time.Second, Slip: 3}, KindAnswer, 1000, 10, 1399, 2867, 5734},
		{"nxdomain budget", Config{ResponsesPerSecond: 1000, NXDomainsPerSecond: 10, Slip: 2}, KindNXDomain, 100, 10, 109, 445, 446},
		{"errors unlimited", Config{ResponsesPerSecond: 10}, KindError, 100, 10, 1000, 0, 0},
		{"under the limit", Config{ResponsesPerSecond: 200, Slip: 2}, KindAnswer, 100, 10, 1000, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &fakeClock{now: 1e12, step: uint64(time.Second) / uint64(c.qps)}
			l := New(c.cfg, nil)
			l.Now = clk.read
			a := netip.MustParseAddr("198.18.5.7")
			sent, slipped, dropped := flood(l, clk, a, c.kind, c.qps*c.seconds)
			// One interval of slack for where the first query falls.
			if abs(sent-c.sent) > 2 || abs(slipped-c.slipped) > 2 || abs(dropped-c.dropped) > 2 {
				t.Errorf("sent/slipped/dropped %d/%d/%d, want %d/%d/%d", sent, slipped, dropped, c.sent, c.slipped, c.dropped)
			}
			if got := l.Stats.Sent.Load() + l.Stats.Slipped.Load() + l.Stats.Dropped.Load(); got != uint64(c.qps*c.seconds) && c.kind != KindError {
				t.Errorf("counters sum to %d", got)
			}
		})
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// A flood from one /24 does not touch another /24, nor another budget of
// the flooded one; the whole /24 shares one budget; exempt networks pass.
func TestNetworks(t *testing.T) {
	clk := &fakeClock{now: 1e12, step: uint64(time.Millisecond)}
	l := New(Config{ResponsesPerSecond: 10, NXDomainsPerSecond: 10, Slip: 2,
		Exempt: []netip.Prefix{netip.MustParsePrefix("198.19.9.0/24")}}, nil)
	l.Now = clk.read
	for i := range 2000 { // 2 s from 256 addresses of one /24
		l.Check(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), KindAnswer)
	}
	if s := l.Stats.Sent.Load(); s > 32 {
		t.Errorf("one /24 got %d answers in 2 s at 10/s", s)
	}
	for _, c := range []struct {
		addr string
		kind Kind
	}{{"198.18.2.1", KindAnswer}, {"198.18.1.9", KindNXDomain}, {"198.19.9.1", KindAnswer},
		{"2001:2:0:1::1", KindAnswer}, {"2001:2:0:1:ffff::1", KindAnswer}} {
		if d := l.Check(netip.MustParseAddr(c.addr), c.kind); d != Send {
			t.Errorf("%s %s: %s after another network's flood", c.addr, c.kind, d)
		}
	}
	// /56: 2001:2:0:1::/56 and 2001:2:0:1ff::/56 differ; 2001:2:0:100::
	// and 2001:2:0:1ff:: do not.
	p := l.Params()
	k := func(s string) Key { return p.KeyOf(netip.MustParseAddr(s), KindAnswer) }
	if k("2001:2:0:100::1") != k("2001:2:0:1ff:ffff::") || k("2001:2:0:100::1") == k("2001:2:0:200::1") {
		t.Error("IPv6 keys are not /56")
	}
	if k("198.18.1.1") != k("::ffff:198.18.1.200") || k("198.18.1.1") == k("198.18.2.1") {
		t.Error("IPv4 keys are not /24")
	}
	if got := l.Stats.Exempt.Load(); got != 1 {
		t.Errorf("exempt %d", got)
	}
}

// The table stays bounded.
func TestTableBound(t *testing.T) {
	tb := NewTable(160).(*memTable)
	for i := range 10000 {
		k := Key{Net: [16]byte{byte(i), byte(i >> 8)}}
		tb.Store(&k, &Entry{TAT: 1})
	}
	n := 0
	for i := range tb.shards {
		n += len(tb.shards[i].m)
	}
	if n > 160+shards {
		t.Errorf("%d buckets in a table of 160", n)
	}
}

// Slipped is wire.Compose's truncated response, byte for byte.
func TestSlipped(t *testing.T) {
	a := &dns.A{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{198, 18, 0, 1}}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 1}
	for _, c := range []struct {
		name   string
		edns   bool
		rcode  int
		ans    []dns.RR
		ns     []dns.RR
		opts   []byte
		extRC  uint8
		wantRC int
	}{
		{name: "answer, no edns", ans: []dns.RR{a}},
		{name: "answer, edns", edns: true, ans: []dns.RR{a, a}, ns: []dns.RR{soa}},
		{name: "nxdomain, edns with nsid", edns: true, rcode: 3, ns: []dns.RR{soa}, opts: wire.AppendOption(nil, 3, []byte("x1")), wantRC: 3},
		{name: "badvers", edns: true, rcode: 16, extRC: 1, wantRC: 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("WwW.example.", dns.TypeA)
			m.Id = 0x1234
			m.RecursionDesired = true
			if c.edns {
				m.SetEdns0(1232, true)
			}
			pkt, _ := m.Pack()
			var q wire.Query
			if err := wire.ParseQuery(pkt, &q); err != nil && c.rcode != 16 {
				t.Fatal(err)
			}
			b, err := wire.Encode("www.example.", dns.TypeA, c.rcode&0xf, true, c.ans, c.ns, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := wire.Response{Payload: 1232, Limit: 65535, ExtRcode: c.extRC, Options: c.opts}
			full := wire.Compose(nil, &q, &b, &r)
			r.Limit = 0
			want := wire.Compose(nil, &q, &b, &r)
			got, err := Slipped(nil, full)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("slipped\n%x\nwant\n%x", got, want)
			}
			// In place, as the server does it.
			inPlace, _ := Slipped(full[:0], full)
			if !bytes.Equal(inPlace, want) {
				t.Errorf("in place\n%x\nwant\n%x", inPlace, want)
			}
			if rc := Rcode(want); rc != c.wantRC {
				t.Errorf("rcode %d, want %d", rc, c.wantRC)
			}
		})
	}
}
