package loader

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TestNSGlue: the answer to an apex NS query carries the in-zone name
// servers' addresses, from XDP byte for byte as from Go (DO=0 and DO=1,
// signed and unsigned). Over the client's limit the addresses are optional:
// XDP passes (pass__oversize) and Go sends the NS RRset alone, TC=0, as
// NSD and Knot do.
func TestNSGlue(t *testing.T) {
	var b strings.Builder
	b.WriteString("$TTL 300\n@ SOA ns1 h 1 2 3 4 60\n")
	for i := 1; i <= 14; i++ {
		fmt.Fprintf(&b, "@ NS ns%d\nns%d A 198.18.0.%d\nns%d AAAA 2001:2::%d\n", i, i, i, i, i)
	}
	b.WriteString("@ NS ns.elsewhere.test.\n")
	many, _, err := zone.Parse(strings.NewReader(b.String()), "many", "many.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	signed := loadZone(t, "testdata/example.net.zone", "example.net.")
	e := newEnv(t, Config{}, responder.Config{}, many, z, signed)
	for _, c := range []struct {
		name  string
		frame frame
		dns   []byte
	}{
		{"many, edns", frame{}, q(t, "many.test.", dns.TypeNS, edns)},
		{"many, edns, 0x20, ipv6", frame{v6: true}, q(t, "MaNy.TeSt.", dns.TypeNS, ednsDO)},
		{"xdp.test", frame{}, q(t, "xdp.test.", dns.TypeNS, noEDNS)},
		{"signed, do", frame{vlans: 1}, q(t, "example.net.", dns.TypeNS, ednsDO)},
		{"signed, no do", frame{}, q(t, "example.net.", dns.TypeNS, edns)},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkAnswer(t, e, c.frame, c.dns, "tx__answer")
			var m dns.Msg
			if err := m.Unpack(e.resp.Respond(&responder.Scratch{}, nil, c.dns, false)); err != nil {
				t.Fatal(err)
			}
			addrs := 0
			for _, rr := range m.Extra {
				if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
					addrs++
				}
			}
			if addrs == 0 {
				t.Errorf("no addresses in the additional section:\n%v", &m)
			}
		})
	}

	// Without EDNS (512 bytes) the 28 addresses do not fit.
	query := q(t, "many.test.", dns.TypeNS, noEDNS)
	ret, _, st := e.query(t, frame{}.build(query))
	if ret != xdpPass || st["pass__oversize"] != 1 {
		t.Fatalf("verdict %d, counters %v; want pass__oversize", ret, st)
	}
	var m dns.Msg
	if err := m.Unpack(e.resp.Respond(&responder.Scratch{}, nil, query, false)); err != nil {
		t.Fatal(err)
	}
	if m.Truncated || len(m.Answer) != 15 || len(m.Extra) != 0 {
		t.Errorf("Go without EDNS: TC %v, %d answers, %d additional; want the 15 NS alone", m.Truncated, len(m.Answer), len(m.Extra))
	}
}
