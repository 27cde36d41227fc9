package answer_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

func parseZone(t *testing.T, origin, text string) *zone.Zone {
	t.Helper()
	z, _, err := zone.Parse(strings.NewReader(text), origin, origin, zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		out = append(out, fmt.Sprintf("%s %s", h.Name, dns.TypeToString[h.Rrtype]))
	}
	return out
}

// TestNSAnswerGlue: an answer to an NS query carries the addresses of the
// name servers inside the zone (A then AAAA per target; targets below a cut
// too, as sibling glue), none for targets outside it, marked optional; a
// referral's glue is not optional. With DO=1 the addresses come with their
// RRSIGs, as NSD and Knot send them.
func TestNSAnswerGlue(t *testing.T) {
	z := parseZone(t, "glue.test.", `$TTL 300
@ SOA ns1 h 1 2 3 4 60
@ NS ns1
@ NS ns2.other.net.
@ NS ns.sub
ns1 A 198.18.0.1
ns1 AAAA 2001:2::1
ns1 TXT "not glue"
sub NS ns.sub
ns.sub A 198.18.0.2
alias CNAME @
`)
	cases := []struct {
		qname    string
		kind     answer.Kind
		answer   []string
		extra    []string
		optional bool
	}{
		{"glue.test.", answer.Success, []string{"glue.test. NS", "glue.test. NS", "glue.test. NS"},
			[]string{"ns1.glue.test. A", "ns1.glue.test. AAAA", "ns.sub.glue.test. A"}, true},
		{"alias.glue.test.", answer.Success, []string{"alias.glue.test. CNAME", "glue.test. NS", "glue.test. NS", "glue.test. NS"},
			[]string{"ns1.glue.test. A", "ns1.glue.test. AAAA", "ns.sub.glue.test. A"}, true},
		{"sub.glue.test.", answer.Referral, nil, []string{"ns.sub.glue.test. A"}, false},
		{"ns1.glue.test.", answer.NoData, nil, nil, false},
	}
	for _, tc := range cases {
		res := answer.Lookup(z, answer.Query{Name: tc.qname, Type: dns.TypeNS})
		if res.Kind != tc.kind {
			t.Errorf("%s NS: kind %v, want %v", tc.qname, res.Kind, tc.kind)
		}
		if got, want := strings.Join(rrStrings(res.Answer), ","), strings.Join(tc.answer, ","); got != want {
			t.Errorf("%s NS: answer %s, want %s", tc.qname, got, want)
		}
		if got, want := strings.Join(rrStrings(res.Extra), ","), strings.Join(tc.extra, ","); got != want {
			t.Errorf("%s NS: additional %s, want %s", tc.qname, got, want)
		}
		if res.ExtraOptional != tc.optional {
			t.Errorf("%s NS: ExtraOptional %v, want %v", tc.qname, res.ExtraOptional, tc.optional)
		}
	}

	signed, _, err := zone.Load("../nsddiff/testdata/chain.test.zone.signed", "chain.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := answer.Lookup(signed, answer.Query{Name: "chain.test.", Type: dns.TypeNS, DO: true})
	if got, want := strings.Join(rrStrings(res.Extra), ","), "ns1.chain.test. A,ns1.chain.test. RRSIG"; got != want {
		t.Errorf("signed apex NS DO=1: additional %s, want %s", got, want)
	}
	res = answer.Lookup(signed, answer.Query{Name: "chain.test.", Type: dns.TypeNS})
	if got, want := strings.Join(rrStrings(res.Extra), ","), "ns1.chain.test. A"; got != want {
		t.Errorf("signed apex NS DO=0: additional %s, want %s", got, want)
	}
}

// TestNSAnswerGlueDropped: an NS answer whose addresses do not fit the
// client's limit is sent without them (ARCOUNT 0, TC=0), as NSD and Knot
// do; one that does not fit even without them is truncated. The compiled
// table carries the same cut point, so it composes the same bytes.
func TestNSAnswerGlueDropped(t *testing.T) {
	var b strings.Builder
	b.WriteString("$TTL 300\n@ SOA ns1 h 1 2 3 4 60\n")
	for i := 1; i <= 14; i++ {
		fmt.Fprintf(&b, "@ NS ns%d\nns%d A 198.18.0.%d\nns%d AAAA 2001:2::%d\n", i, i, i, i, i)
	}
	b.WriteString("big NS x\n") // a delegation, so "big" has a name of its own
	z := parseZone(t, "many.test.", b.String())
	tab, err := compile.Build(z)
	if err != nil {
		t.Fatal(err)
	}
	res := answer.Lookup(z, answer.Query{Name: "many.test.", Type: dns.TypeNS})
	body, err := wire.EncodeOpt("many.test.", dns.TypeNS, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra, res.ExtraOptional)
	if err != nil {
		t.Fatal(err)
	}
	if body.ExtraOff == 0 || int(body.ExtraOff) >= len(body.Bytes) {
		t.Fatalf("ExtraOff %d, body %d bytes", body.ExtraOff, len(body.Bytes))
	}
	for _, tc := range []struct {
		edns   bool
		size   uint16
		ar, an int
		tc     bool
	}{
		{edns: false, an: 14, ar: 0},             // 512: the NS RRset fits, the addresses do not
		{edns: true, size: 1232, an: 14, ar: 29}, // everything fits (the OPT counted)
		{edns: true, size: 600, an: 14, ar: 1},   // OPT only
	} {
		m := new(dns.Msg)
		m.SetQuestion("many.test.", dns.TypeNS)
		if tc.edns {
			m.SetEdns0(tc.size, false)
		}
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var q wire.Query
		if err := wire.ParseQuery(pkt, &q); err != nil {
			t.Fatal(err)
		}
		r := wire.Response{Payload: 1232, Limit: q.UDPLimit(1232)}
		out := wire.Compose(nil, &q, &body, &r)
		tb, ok := tab.Lookup(q.Key, false)
		if !ok {
			t.Fatal("no table entry for the apex NS")
		}
		if fromTable := wire.Compose(nil, &q, &tb, &r); string(fromTable) != string(out) {
			t.Errorf("EDNS %v size %d: table and engine bytes differ", tc.edns, tc.size)
		}
		var resp dns.Msg
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("EDNS %v size %d: %v", tc.edns, tc.size, err)
		}
		if len(out) > r.Limit || resp.Truncated != tc.tc || len(resp.Answer) != tc.an || len(resp.Extra) != tc.ar {
			t.Errorf("EDNS %v size %d: %d bytes (limit %d) TC %v, %d answers, %d additional; want TC %v, %d, %d",
				tc.edns, tc.size, len(out), r.Limit, resp.Truncated, len(resp.Answer), len(resp.Extra), tc.tc, tc.an, tc.ar)
		}
	}

	// Without room for the NS RRset itself: TC=1, nothing else.
	long := strings.Repeat("n", 60)
	b.Reset()
	b.WriteString("$TTL 300\n@ SOA ns1 h 1 2 3 4 60\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "@ NS %s%d.other.net.\n@ NS ns%d\nns%d A 198.18.0.%d\n", long, i, i, i, i)
	}
	z = parseZone(t, "huge.test.", b.String())
	res = answer.Lookup(z, answer.Query{Name: "huge.test.", Type: dns.TypeNS})
	body, err = wire.EncodeOpt("huge.test.", dns.TypeNS, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra, res.ExtraOptional)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("huge.test.", dns.TypeNS)
	pkt, _ := m.Pack()
	var q wire.Query
	if err := wire.ParseQuery(pkt, &q); err != nil {
		t.Fatal(err)
	}
	r := wire.Response{Payload: 1232, Limit: q.UDPLimit(1232)}
	var resp dns.Msg
	if err := resp.Unpack(wire.Compose(nil, &q, &body, &r)); err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated || len(resp.Answer)+len(resp.Extra) != 0 {
		t.Errorf("huge NS answer: TC %v, %d answers, %d additional; want TC and nothing", resp.Truncated, len(resp.Answer), len(resp.Extra))
	}
}
