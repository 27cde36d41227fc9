package responder

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

func loadZone(t testing.TB, file, origin string) *zone.Zone {
	t.Helper()
	z, _, err := zone.Load(file, origin, zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func newResponder(t testing.TB) *Responder {
	r := New(Config{NSID: "test-1", Identity: "edge-1", Version: "xdpns-test"})
	r.SetZones([]*zone.Zone{loadZone(t, "testdata/example.com.zone", "example.com.")})
	return r
}

func ask(t testing.TB, r *Responder, m *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := r.Respond(&Scratch{}, nil, pkt, tcp)
	if out == nil {
		return nil
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		t.Fatalf("unpack response: %v", err)
	}
	return resp
}

func query(name string, t uint16, edns bool, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.RecursionDesired = false
	if edns {
		m.SetEdns0(1232, do)
	}
	return m
}

func TestResponses(t *testing.T) {
	r := newResponder(t)
	cases := []struct {
		name   string
		qtype  uint16
		rcode  int
		aa     bool
		answer int
		ns     int
		extra  int // OPT not counted
	}{
		{"www.example.com.", dns.TypeA, dns.RcodeSuccess, true, 2, 0, 0},
		{"WwW.ExAmPlE.cOm.", dns.TypeAAAA, dns.RcodeSuccess, true, 2, 0, 0},
		{"alias.example.com.", dns.TypeA, dns.RcodeSuccess, true, 3, 0, 0},
		{"out.example.com.", dns.TypeA, dns.RcodeSuccess, true, 1, 0, 0},
		{"x.wild.example.com.", dns.TypeA, dns.RcodeSuccess, true, 1, 0, 0},
		{"x.wild.example.com.", dns.TypeMX, dns.RcodeSuccess, true, 0, 1, 0},
		{"nope.example.com.", dns.TypeA, dns.RcodeNameError, true, 0, 1, 0},
		{"b.ent.example.com.", dns.TypeA, dns.RcodeSuccess, true, 0, 1, 0},
		{"www.sub.example.com.", dns.TypeA, dns.RcodeSuccess, false, 0, 2, 3},
		{"sub.example.com.", dns.TypeDS, dns.RcodeSuccess, true, 0, 1, 0},
		{"x.dn.example.com.", dns.TypeA, dns.RcodeSuccess, true, 2, 0, 0},
		{"www.example.org.", dns.TypeA, dns.RcodeRefused, false, 0, 0, 0},
		{"example.com.", dns.TypeANY, dns.RcodeSuccess, true, 1, 0, 0},
	}
	for _, c := range cases {
		resp := ask(t, r, query(c.name, c.qtype, true, false), false)
		if resp.Rcode != c.rcode || resp.Authoritative != c.aa || len(resp.Answer) != c.answer || len(resp.Ns) != c.ns || len(resp.Extra)-1 != c.extra {
			t.Errorf("%s/%s: got rcode %s aa %v sections %d/%d/%d\n%v", c.name, dns.TypeToString[c.qtype],
				dns.RcodeToString[resp.Rcode], resp.Authoritative, len(resp.Answer), len(resp.Ns), len(resp.Extra)-1, resp)
		}
		if resp.Question[0].Name != c.name {
			t.Errorf("question case not echoed: %s", resp.Question[0].Name)
		}
	}
}

func TestErrors(t *testing.T) {
	r := newResponder(t)
	// BADVERS
	m := query("www.example.com.", dns.TypeA, true, false)
	m.IsEdns0().SetVersion(1)
	if resp := ask(t, r, m, false); resp.Rcode != dns.RcodeBadVers || resp.IsEdns0() == nil || resp.IsEdns0().Version() != 0 {
		t.Errorf("BADVERS: %v", resp)
	}
	// NOTIMP for an unknown opcode
	m = query("www.example.com.", dns.TypeA, false, false)
	m.Opcode = 3
	if resp := ask(t, r, m, false); resp.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIMP: %v", resp)
	}
	// FORMERR for QDCOUNT=2
	m = query("www.example.com.", dns.TypeA, false, false)
	m.Question = append(m.Question, m.Question[0])
	if resp := ask(t, r, m, false); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("FORMERR: %v", resp)
	}
	// A response is never answered.
	m = query("www.example.com.", dns.TypeA, false, false)
	m.Response = true
	if resp := ask(t, r, m, false); resp != nil {
		t.Errorf("answered a response: %v", resp)
	}
	// REFUSED carries EDE 20 with EDNS.
	resp := ask(t, r, query("example.org.", dns.TypeA, true, false), false)
	ede := false
	for _, o := range resp.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == 20 {
			ede = true
		}
	}
	if resp.Rcode != dns.RcodeRefused || !ede {
		t.Errorf("REFUSED+EDE: %v", resp)
	}
}

func TestChaosAndNSID(t *testing.T) {
	r := newResponder(t)
	m := query("version.bind.", dns.TypeTXT, false, false)
	m.Question[0].Qclass = dns.ClassCHAOS
	resp := ask(t, r, m, false)
	if len(resp.Answer) != 1 || !strings.Contains(resp.Answer[0].String(), "xdpns-test") {
		t.Errorf("version.bind: %v", resp)
	}
	m = query("www.example.com.", dns.TypeA, true, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	resp = ask(t, r, m, false)
	found := false
	for _, o := range resp.IsEdns0().Option {
		if n, ok := o.(*dns.EDNS0_NSID); ok && n.Nsid == "746573742d31" {
			found = true
		}
	}
	if !found {
		t.Errorf("NSID missing: %v", resp)
	}
}

func TestTruncation(t *testing.T) {
	r := New(Config{})
	var b strings.Builder
	b.WriteString("$ORIGIN big.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n")
	for i := 0; i < 40; i++ {
		b.WriteString("many 300 IN TXT \"" + strings.Repeat("x", 40) + "\"\n")
		b.WriteString("many 300 IN TXT \"" + strings.Repeat("y", 39) + string(rune('a'+i%26)) + "\"\n")
	}
	z, _, err := zone.Parse(strings.NewReader(b.String()), "big", "big.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetZones([]*zone.Zone{z})
	resp := ask(t, r, query("many.big.test.", dns.TypeTXT, false, false), false)
	if !resp.Truncated || len(resp.Answer) != 0 || len(resp.Question) != 1 {
		t.Errorf("not truncated: %v", resp)
	}
	resp = ask(t, r, query("many.big.test.", dns.TypeTXT, false, false), true)
	if resp.Truncated || len(resp.Answer) == 0 {
		t.Errorf("TCP truncated: %v", resp.MsgHdr)
	}
}

// TestTableMatchesEngine checks that every compiled answer, and the default
// entry for random ordinary types, is what the engine gives on its own.
func TestTableMatchesEngine(t *testing.T) {
	z := loadZone(t, "testdata/example.com.zone", "example.com.")
	tab, err := compile.Build(z)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for _, name := range z.Names() {
		types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeCNAME, dns.TypeNS, dns.TypeSOA, dns.TypeDS, dns.TypeDNAME, dns.TypeHTTPS, dns.TypeSRV}
		for i := 0; i < 5; i++ {
			types = append(types, uint16(rng.IntN(65535)+1))
		}
		for _, qt := range types {
			var key []byte
			wn := make([]byte, 256)
			l, _ := dns.PackDomainName(name, wn, 0, nil, false)
			key = append(wn[:l], byte(qt>>8), byte(qt))
			b, ok := tab.Lookup(key, false)
			if !ok {
				continue
			}
			res := answer.Lookup(z, answer.Query{Name: name, Type: qt})
			want, err := wire.Encode(name, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
			if err != nil {
				t.Fatal(err)
			}
			if string(want.Bytes) != string(b.Bytes) || want.An != b.An || want.Ns != b.Ns || want.Ar != b.Ar || want.AA != b.AA || want.Rcode != b.Rcode {
				t.Errorf("%s/%s: table differs from engine", name, dns.TypeToString[qt])
			}
			n++
		}
	}
	if n < 50 {
		t.Errorf("only %d table hits checked", n)
	}
}

func TestPendingZoneIsServfail(t *testing.T) {
	r := newResponder(t)
	r.Put(Pending("Secondary.Example."))
	resp := ask(t, r, query("www.secondary.example.", dns.TypeA, false, false), false)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("pending zone: %v", resp)
	}
	if r.Zone("secondary.example.") == nil {
		t.Error("placeholder not found by origin")
	}
}

func TestEDNSExpire(t *testing.T) {
	r := newResponder(t)
	m := query("example.com.", dns.TypeSOA, true, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
	resp := ask(t, r, m, false)
	var got *dns.EDNS0_EXPIRE
	for _, o := range resp.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EXPIRE); ok {
			got = e
		}
	}
	if got == nil || got.Expire != 1209600 {
		t.Errorf("file zone: EXPIRE %v, want the SOA expire 1209600", got)
	}
	r2 := New(Config{Expire: func(string) (uint32, bool) { return 77, true }})
	r2.SetZones([]*zone.Zone{loadZone(t, "testdata/example.com.zone", "example.com.")})
	resp = ask(t, r2, m, false)
	for _, o := range resp.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EXPIRE); ok {
			got = e
		}
	}
	if got.Expire != 77 {
		t.Errorf("secondary: EXPIRE %d, want 77", got.Expire)
	}
	// Not for other types.
	m = query("www.example.com.", dns.TypeA, true, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
	if resp := ask(t, r, m, false); len(resp.IsEdns0().Option) != 0 {
		t.Errorf("EXPIRE on an A query: %v", resp.IsEdns0())
	}
}
