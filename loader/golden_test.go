package loader

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
)

// longName is the 255-byte name of testdata/xdp.test.zone.
var longName = "l" + strings.Repeat("x", 62) + ".m" + strings.Repeat("y", 62) + ".n" +
	strings.Repeat("z", 62) + ".o" + strings.Repeat("w", 51) + ".xdp.test."

func q(t testing.TB, name string, qtype uint16, v variant) []byte {
	return packQuery(t, 0x4242, name, qtype, v)
}

var (
	noEDNS = variant{}
	edns   = variant{edns: true, size: 1232}
	ednsDO = variant{edns: true, do: true, size: 1232}
)

// patch returns a copy of b with f applied.
func patch(b []byte, f func([]byte) []byte) []byte {
	return f(append([]byte{}, b...))
}

// fixIPv4 recomputes the IPv4 header checksum of an untagged frame.
func fixIPv4(p []byte) []byte {
	ihl := int(p[14]&0xf) * 4
	p[24], p[25] = 0, 0
	binary.BigEndian.PutUint16(p[24:], ^fold(sum16(p[14:14+ihl])))
	return p
}

type golden struct {
	name    string
	frame   frame
	pkt     []byte // the frame; nil: frame.build(dns)
	dns     []byte // the DNS query
	verdict uint32
	reason  string // the counter that must move
}

func TestGoldenPass(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	signed := loadZone(t, "testdata/example.net.zone", "example.net.")
	e := newEnv(t, Config{}, responder.Config{NSID: "xdp-test"}, z, signed)
	base := q(t, "short.xdp.test.", dns.TypeA, edns)
	v4 := frame{}.build(base)
	setDNS := func(off int, v ...byte) []byte {
		return patch(base, func(b []byte) []byte { copy(b[off:], v); return b })
	}
	nameEnd := 12 + len("short.xdp.test.") + 1
	cases := []golden{
		{name: "arp", pkt: patch(v4, func(p []byte) []byte { p[12], p[13] = 0x08, 0x06; return p }), reason: "pass__not_ip"},
		{name: "three vlan tags", pkt: patch(frame{vlans: 2}.build(base), func(p []byte) []byte {
			return append(p[:12:12], append([]byte{0x81, 0x00, 0, 7}, p[12:]...)...)
		}), reason: "pass__not_ip"},
		{name: "ipv4 options", pkt: patch(v4, func(p []byte) []byte {
			p = append(p[:34:34], append([]byte{1, 1, 1, 1}, p[34:]...)...)
			p[14] = 0x46
			binary.BigEndian.PutUint16(p[16:], binary.BigEndian.Uint16(p[16:])+4)
			return fixIPv4(p)
		}), reason: "pass__ip_options"},
		{name: "ipv4 more fragments", pkt: patch(v4, func(p []byte) []byte { p[20] = 0x20; return fixIPv4(p) }), reason: "pass__fragment"},
		{name: "ipv4 fragment offset", pkt: patch(v4, func(p []byte) []byte { p[21] = 0x10; return fixIPv4(p) }), reason: "pass__fragment"},
		{name: "ipv4 bad header checksum", pkt: patch(v4, func(p []byte) []byte { p[24] ^= 0xff; return p }), reason: "pass__malformed"},
		{name: "ipv6 hop-by-hop", pkt: patch(frame{v6: true}.build(base), func(p []byte) []byte { p[20] = 0; return p }), reason: "pass__ip_options"},
		{name: "ipv6 fragment header", pkt: patch(frame{v6: true}.build(base), func(p []byte) []byte { p[20] = 44; return p }), reason: "pass__fragment"},
		{name: "tcp", pkt: patch(v4, func(p []byte) []byte { p[23] = 6; return fixIPv4(p) }), reason: "pass__not_udp"},
		{name: "other port", frame: frame{dport: 5353}, dns: base, reason: "pass__not_ours"},
		{name: "frame cut in dns header", pkt: v4[:14+20+8+6], reason: "pass__malformed"},
		{name: "frame cut in question", pkt: v4[:len(v4)-15], reason: "pass__malformed"},
		{name: "udp length short of ip", pkt: patch(v4, func(p []byte) []byte { p[39] -= 1; return p }), reason: "pass__malformed"},
		{name: "qr", dns: setDNS(2, 0x80), reason: "pass__qr"},
		{name: "opcode notify", dns: setDNS(2, 4<<3), reason: "pass__opcode"},
		{name: "qdcount 2", dns: setDNS(4, 0, 2), reason: "pass__counts"},
		{name: "qdcount 0", dns: setDNS(4, 0, 0), reason: "pass__counts"},
		{name: "ancount 1", dns: setDNS(6, 0, 1), reason: "pass__counts"},
		{name: "nscount 1", dns: setDNS(8, 0, 1), reason: "pass__counts"},
		{name: "arcount 2", dns: setDNS(10, 0, 2), reason: "pass__counts"},
		{name: "compression in question", dns: append(append([]byte{}, base[:12]...), 0xc0, 0x0c, 0, 1, 0, 1), reason: "pass__name"},
		{name: "label of 64", dns: append(append(append([]byte{}, base[:12]...), 64), append(make([]byte, 64), 0, 0, 1, 0, 1)...), reason: "pass__name"},
		{name: "name of 256", dns: func() []byte {
			b := append([]byte{}, base[:10]...)
			b = append(b, 0, 0)
			for range 4 {
				b = append(b, 63)
				b = append(b, make([]byte, 63)...)
			}
			return append(b, 0, 0, 1, 0, 1) // 4*64+1 = 257 bytes
		}(), reason: "pass__name"},
		{name: "question cut", dns: append(append([]byte{}, base[:12]...), 5, 's', 'h'), reason: "pass__name"},
		{name: "qtype cut", dns: patch(base[:nameEnd+2], func(b []byte) []byte { b[11] = 0; return b }), reason: "pass__name"},
		{name: "class chaos", dns: setDNS(nameEnd+2, 0, 3), reason: "pass__class"},
		{name: "qtype any", dns: q(t, "short.xdp.test.", dns.TypeANY, edns), reason: "pass__qtype"},
		{name: "qtype axfr", dns: q(t, "xdp.test.", dns.TypeAXFR, noEDNS), reason: "pass__qtype"},
		{name: "qtype ixfr", dns: q(t, "xdp.test.", dns.TypeIXFR, noEDNS), reason: "pass__qtype"},
		{name: "qtype opt", dns: q(t, "short.xdp.test.", dns.TypeOPT, noEDNS), reason: "pass__qtype"},
		{name: "additional not opt", dns: func() []byte {
			m := new(dns.Msg)
			m.SetQuestion("short.xdp.test.", dns.TypeA)
			m.Extra = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}}
			b, _ := m.Pack()
			return b
		}(), reason: "pass__additional"},
		{name: "opt owner not root", dns: patch(base, func(b []byte) []byte {
			opt := nameEnd + 4
			return append(b[:opt:opt], append([]byte{1, 'x', 0}, b[opt+1:]...)...)
		}), reason: "pass__additional"},
		{name: "opt rdata cut", dns: patch(base, func(b []byte) []byte { b[len(b)-1] = 4; return b }), reason: "pass__additional"},
		{name: "option overruns", dns: patch(q(t, "short.xdp.test.", dns.TypeA, variant{edns: true, size: 1232,
			options: []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}}), func(b []byte) []byte {
			b[len(b)-9] = 12 // option length 12 in an RDATA of 12
			return b
		}), reason: "pass__additional"},
		{name: "edns version 1", dns: setDNS(nameEnd+4+6, 1), reason: "pass__edns_version"},
		{name: "nsid while configured", dns: q(t, "short.xdp.test.", dns.TypeA, variant{edns: true, size: 1232,
			options: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}), reason: "pass__nsid"},
		{name: "edns expire (a secondary asking)", dns: q(t, "xdp.test.", dns.TypeSOA, variant{edns: true, size: 1232,
			options: []dns.EDNS0{&dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true}}}), reason: "pass__expire"},
		{name: "trailing bytes, no opt", dns: append(q(t, "short.xdp.test.", dns.TypeA, noEDNS), 0), reason: "pass__trailing"},
		{name: "trailing bytes after opt", dns: append(append([]byte{}, base...), 0, 0), reason: "pass__trailing"},
		{name: "no such name below a cname", dns: q(t, "nope.x.xdp.test.", dns.TypeA, edns), reason: "pass__no_entry"},
		{name: "no such name, deeper than the walk", dns: q(t, "a.b.c.d.e.f.g.h.i.nope.xdp.test.", dns.TypeA, edns), reason: "pass__no_entry"},
		{name: "ds has no default", dns: q(t, "short.xdp.test.", dns.TypeDS, edns), reason: "pass__no_entry"},
		{name: "outside the zone", dns: q(t, "example.com.", dns.TypeA, edns), reason: "pass__no_entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkt := c.pkt
			if pkt == nil {
				pkt = c.frame.build(c.dns)
			}
			ret, out, st := e.query(t, pkt)
			if ret != xdpPass || st[c.reason] != 1 || len(st) != 1 {
				t.Fatalf("verdict %d, counters %v; want pass with %s", ret, st, c.reason)
			}
			if string(out[:len(pkt)]) != string(pkt) {
				t.Errorf("passed packet modified:\n%s", hexDiff(out[:len(pkt)], pkt))
			}
		})
	}
}

// TestGoldenAnswer checks answered frames byte for byte against the Go
// responder's payload in the expected headers.
func TestGoldenAnswer(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	signed := loadZone(t, "testdata/example.net.zone", "example.net.")
	e := newEnv(t, Config{}, responder.Config{}, z, signed)
	cookie := variant{edns: true, size: 1232, options: []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}}
	bigPad := variant{edns: true, size: 1232, options: []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, 400)}}}
	cases := []struct {
		name   string
		frame  frame
		dns    []byte
		reason string
	}{
		{"ipv4", frame{}, q(t, "short.xdp.test.", dns.TypeA, noEDNS), "tx__answer"},
		{"ipv6", frame{v6: true}, q(t, "short.xdp.test.", dns.TypeAAAA, noEDNS), "tx__answer"},
		{"vlan", frame{vlans: 1}, q(t, "short.xdp.test.", dns.TypeA, edns), "tx__answer"},
		{"qinq ipv6", frame{vlans: 2, v6: true}, q(t, "short.xdp.test.", dns.TypeA, edns), "tx__answer"},
		{"edns without do", frame{}, q(t, "www.example.net.", dns.TypeA, edns), "tx__answer"},
		{"edns with do, signed", frame{v6: true}, q(t, "www.example.net.", dns.TypeA, ednsDO), "tx__answer"},
		{"do on unsigned zone", frame{}, q(t, "short.xdp.test.", dns.TypeA, ednsDO), "tx__answer"},
		{"0x20 mixed case", frame{}, q(t, "sHoRt.XdP.tEsT.", dns.TypeA, edns), "tx__answer"},
		{"255-byte name", frame{}, q(t, longName, dns.TypeA, ednsDO), "tx__answer"},
		{"255-byte name, upper case, ipv6", frame{v6: true, vlans: 2}, q(t, strings.ToUpper(longName), dns.TypeAAAA, edns), "tx__answer"},
		{"default entry (nodata)", frame{}, q(t, "short.xdp.test.", dns.TypeMX, edns), "tx__answer"},
		{"cname chain", frame{}, q(t, "x.xdp.test.", dns.TypeA, edns), "tx__answer"},
		{"cookie option", frame{}, q(t, "short.xdp.test.", dns.TypeA, cookie), "tx__answer"},
		{"large padding: frame shrinks", frame{}, q(t, "short.xdp.test.", dns.TypeA, bigPad), "tx__answer"},
		{"over 512 without edns: tc", frame{}, q(t, "mid.xdp.test.", dns.TypeTXT, noEDNS), "tx__truncated"},
		{"over the store's bodies: tc", frame{}, q(t, "big.xdp.test.", dns.TypeTXT, edns), "tx__truncated"},
		{"ethernet padding", frame{pad: 20}, q(t, "x.xdp.test.", dns.TypeA, noEDNS), "tx__answer"},
		{"partial checksum (local socket)", frame{partial: true}, q(t, "short.xdp.test.", dns.TypeA, edns), "tx__answer"},
		{"nsid not configured: ignored", frame{}, q(t, "short.xdp.test.", dns.TypeA, variant{edns: true, size: 1232,
			options: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}), "tx__answer"},
		{"no such name: nxdomain", frame{}, q(t, "nope.xdp.test.", dns.TypeA, edns), "tx__nxdomain"},
		{"no such name, 0x20, do, ipv6", frame{v6: true}, q(t, "NoPe.xDp.TEST.", dns.TypeAAAA, ednsDO), "tx__nxdomain"},
		{"no such name, ds, no edns", frame{vlans: 1}, q(t, "nope.xdp.test.", dns.TypeDS, noEDNS), "tx__nxdomain"},
		{"no such name, 8 labels deep", frame{}, q(t, "a.b.c.d.e.f.g.nope.short.xdp.test.", dns.TypeMX, edns), "tx__nxdomain"},
		{"no such name below a 255-byte name's parent", frame{}, q(t, "q"+longName[strings.Index(longName, "."):], dns.TypeA, edns), "tx__nxdomain"},
		{"no such name, signed zone without do", frame{}, q(t, "nope.example.net.", dns.TypeA, edns), "tx__nxdomain"},
		{"no such name, nsec zone, do: proofs", frame{}, q(t, "nope.example.net.", dns.TypeA, ednsDO), "tx__nxdomain"},
		{"no such name, nsec zone, do, 0x20, ipv6, long label", frame{v6: true}, q(t, "ThisLabelIsLongerThanNineteen.WWW.example.NET.", dns.TypeMX, ednsDO), "tx__nxdomain"},
		{"no such name, nsec zone, do, before every name", frame{}, q(t, "0.example.net.", dns.TypeTXT, ednsDO), "tx__nxdomain"},
		{"no such name, nsec zone, do, after every name", frame{}, q(t, "zzzz.example.net.", dns.TypeA, ednsDO), "tx__nxdomain"},
		{"no such name below a wildcard, signed zone without do", frame{}, q(t, "a.b.wild.example.net.", dns.TypeA, edns), "tx__wildcard"},
		{"below a wildcard, signed, do: answer and proof", frame{}, q(t, "a.b.wild.example.net.", dns.TypeA, ednsDO), "tx__wildcard"},
		{"below a wildcard, signed, do, 0x20, ipv6, long label", frame{v6: true}, q(t, "ThisLabelIsLongerThanNineteen.WILD.example.net.", dns.TypeA, ednsDO), "tx__wildcard"},
		{"wildcard nodata, signed zone without do", frame{}, q(t, "a.b.wild.example.net.", dns.TypeMX, edns), "tx__wildcard"},
		{"wildcard nodata, no edns, 0x20, ipv6, odd shift", frame{v6: true}, q(t, "Ab.WILD.example.net.", dns.TypeTXT, noEDNS), "tx__wildcard"},
		{"wildcard nodata, nsec zone, do: the nxdomain's pieces, rcode 0", frame{}, q(t, "a.b.wild.example.net.", dns.TypeMX, ednsDO), "tx__wildcard"},
		{"wildcard nodata, nsec zone, do, 0x20, ipv6, long label", frame{v6: true}, q(t, "ThisLabelIsLongerThanNineteen.WILD.example.net.", dns.TypeTXT, ednsDO), "tx__wildcard"},
		{"wildcard nodata, same length as the wildcard, vlan", frame{vlans: 1}, q(t, "x.wild.example.net.", dns.TypeSRV, edns), "tx__wildcard"},
		{"below a delegation: referral", frame{}, q(t, "a.sub.example.net.", dns.TypeA, edns), "tx__referral"},
		{"below a delegation, do, ipv6: signed referral", frame{v6: true}, q(t, "x.y.sub.example.net.", dns.TypeAAAA, ednsDO), "tx__referral"},
		{"below a delegation, ds, no edns, vlan", frame{vlans: 1}, q(t, "A.b.C.sub.example.net.", dns.TypeDS, noEDNS), "tx__referral"},
		{"below a delegation, odd shift", frame{}, q(t, "ab.sub.example.net.", dns.TypeMX, edns), "tx__referral"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkAnswer(t, e, c.frame, c.dns, c.reason)
		})
	}
}

func checkAnswer(t *testing.T, e *env, f frame, query []byte, reason string) {
	t.Helper()
	want := f.response(e.resp.Respond(&responder.Scratch{}, nil, query, false))
	ret, out, st := e.query(t, f.build(query))
	if ret != xdpTx || st[reason] != 1 || len(st) != 1 {
		t.Fatalf("verdict %d, counters %v; want tx with %s", ret, st, reason)
	}
	if string(out) != string(want) {
		t.Fatalf("frame differs:\n%s", hexDiff(out, want))
	}
	checkChecksums(t, out)
}

// TestHeadGrowth: when the tail cannot grow, the frame grows at the head;
// when neither can, the query is passed untouched.
func TestHeadGrowth(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	e := newEnv(t, Config{NoTailGrow: true}, responder.Config{}, z)
	for _, f := range []frame{{}, {v6: true, vlans: 2}} {
		checkAnswer(t, e, f, q(t, "short.xdp.test.", dns.TypeA, ednsDO), "tx__answer")
		checkAnswer(t, e, f, q(t, longName, dns.TypeAAAA, ednsDO), "tx__answer")
		pkt := f.build(q(t, "mid.xdp.test.", dns.TypeTXT, edns)) // ~730 bytes more: over the headroom
		ret, out, st := e.query(t, pkt)
		if ret != xdpPass || st["pass__no_room"] != 1 {
			t.Fatalf("verdict %d, counters %v; want pass__no_room", ret, st)
		}
		if string(out[:len(pkt)]) != string(pkt) {
			t.Errorf("passed packet modified:\n%s", hexDiff(out[:len(pkt)], pkt))
		}
	}
}

// TestOversize: a body larger than the store's largest is answered with
// TC=1 when over the client's limit and passed when it would go whole.
func TestOversize(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	e := newEnv(t, Config{MaxDNS: 4096}, responder.Config{UDPPayload: 4096}, z)
	checkAnswer(t, e, frame{}, q(t, "big.xdp.test.", dns.TypeTXT, noEDNS), "tx__truncated")
	ret, _, st := e.query(t, frame{}.build(q(t, "big.xdp.test.", dns.TypeTXT, variant{edns: true, size: 4096})))
	if ret != xdpPass || st["pass__oversize"] != 1 {
		t.Fatalf("verdict %d, counters %v; want pass__oversize", ret, st)
	}
	// Whole answers above MaxDNS (the MTU bound) are passed too.
	e = newEnv(t, Config{MaxDNS: 600}, responder.Config{UDPPayload: 4096}, z)
	ret, _, st = e.query(t, frame{}.build(q(t, "mid.xdp.test.", dns.TypeTXT, variant{edns: true, size: 4096})))
	if ret != xdpPass || st["pass__oversize"] != 1 {
		t.Fatalf("verdict %d, counters %v; want pass__oversize", ret, st)
	}
}

// TestServiceAddrs: with service addresses configured, only queries to
// them are answered.
func TestServiceAddrs(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	e := newEnv(t, Config{ServiceAddrs: []netip.Addr{server6, netip.MustParseAddr("198.18.0.9")}}, responder.Config{}, z)
	query := q(t, "short.xdp.test.", dns.TypeA, edns)
	checkAnswer(t, e, frame{v6: true}, query, "tx__answer")
	ret, _, st := e.query(t, frame{}.build(query)) // to 198.18.0.1
	if ret != xdpPass || st["pass__not_ours"] != 1 {
		t.Fatalf("verdict %d, counters %v; want pass__not_ours", ret, st)
	}
	// A wildcard of one family (the server listens on 0.0.0.0 or [::]
	// and on some addresses of the other family).
	for _, v6 := range []bool{false, true} {
		any, other := netip.IPv4Unspecified(), netip.MustParseAddr("2001:2::9")
		if v6 {
			any, other = netip.IPv6Unspecified(), netip.MustParseAddr("198.18.0.9")
		}
		e := newEnv(t, Config{ServiceAddrs: []netip.Addr{any, other}}, responder.Config{}, z)
		checkAnswer(t, e, frame{v6: v6}, query, "tx__answer")
		ret, _, st := e.query(t, frame{v6: !v6}.build(query))
		if ret != xdpPass || st["pass__not_ours"] != 1 {
			t.Fatalf("wildcard %s: verdict %d, counters %v; want pass__not_ours", any, ret, st)
		}
	}
}

// TestCollision: an index hit whose record is for another name is passed.
func TestCollision(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	e := newEnv(t, Config{}, responder.Config{}, z)
	short, _ := wireName("short.xdp.test.")
	evil, _ := wireName("evil.xdp.test.")
	ix := e.x.gens[e.x.active].ix
	val, ok := ix.lookup(keyHash(short, dns.TypeA))
	if !ok {
		t.Fatal("short A not in the index")
	}
	// As if evil's key hashed like short's: the records say otherwise.
	if err := ix.put(keyHash(evil, dns.TypeA), val); err != nil {
		t.Fatal(err)
	}
	ret, _, st := e.query(t, frame{}.build(q(t, "evil.xdp.test.", dns.TypeA, edns)))
	if ret != xdpPass || st["pass__collision"] != 1 {
		t.Fatalf("verdict %d, counters %v; want pass__collision", ret, st)
	}
	// Same name, another type pointing at the A record.
	if err := ix.put(keyHash(short, dns.TypeTXT), val); err != nil {
		t.Fatal(err)
	}
	ret, _, st = e.query(t, frame{}.build(q(t, "short.xdp.test.", dns.TypeTXT, edns)))
	if ret != xdpPass || st["pass__collision"] != 1 {
		t.Fatalf("verdict %d, counters %v; want pass__collision", ret, st)
	}
}
