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

// chaosQuery is a CHAOS-class query for name and qtype.
func chaosQuery(name string, qtype uint16, edns bool) *dns.Msg {
	m := query(name, qtype, edns, false)
	m.Question[0].Qclass = dns.ClassCHAOS
	return m
}

// checkChaosTXT checks resp is the authoritative CHAOS TXT answer want to
// the CHAOS query m: the question echoed as asked, one TXT record of class CH
// owned by the query name holding exactly want.
func checkChaosTXT(t *testing.T, m, resp *dns.Msg, want string) {
	t.Helper()
	q := m.Question[0]
	what := q.Name + " CH " + dns.TypeToString[q.Qtype]
	if resp == nil {
		t.Fatalf("%s: no response", what)
	}
	if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || !resp.Response || resp.Id != m.Id {
		t.Errorf("%s: rcode %s aa %v qr %v id %d (want %d)", what, dns.RcodeToString[resp.Rcode], resp.Authoritative, resp.Response, resp.Id, m.Id)
	}
	if len(resp.Question) != 1 || resp.Question[0] != q {
		t.Errorf("%s: question not echoed: %v", what, resp.Question)
	}
	if len(resp.Answer) != 1 {
		t.Fatalf("%s: %d answers, want 1\n%v", what, len(resp.Answer), resp)
	}
	txt, ok := resp.Answer[0].(*dns.TXT)
	if !ok {
		t.Fatalf("%s: answer is not TXT: %v", what, resp.Answer[0])
	}
	if h := txt.Hdr; !strings.EqualFold(h.Name, q.Name) || h.Class != dns.ClassCHAOS || h.Rrtype != dns.TypeTXT {
		t.Errorf("%s: answer header %v", what, h)
	}
	if len(txt.Txt) != 1 || txt.Txt[0] != want {
		t.Errorf("%s: TXT %q, want [%q]", what, txt.Txt, want)
	}
	if len(resp.Ns) != 0 {
		t.Errorf("%s: authority section %v", what, resp.Ns)
	}
}

// TestChaosTXT covers every CHAOS name the responder knows (docs/answers.md:
// id.server and hostname.bind give the identity, version.bind and
// version.server the version), for TXT and ANY, over UDP and TCP, with and
// without EDNS, in any letter case.
func TestChaosTXT(t *testing.T) {
	r := newResponder(t) // Identity "edge-1", Version "xdpns-test"
	cases := []struct{ name, want string }{
		{"id.server.", "edge-1"},
		{"hostname.bind.", "edge-1"},
		{"version.bind.", "xdpns-test"},
		{"version.server.", "xdpns-test"},
		{"ID.Server.", "edge-1"},
		{"HOSTNAME.BIND.", "edge-1"},
		{"Version.Bind.", "xdpns-test"},
	}
	for _, c := range cases {
		for _, qt := range []uint16{dns.TypeTXT, dns.TypeANY} {
			for _, tcp := range []bool{false, true} {
				for _, edns := range []bool{false, true} {
					m := chaosQuery(c.name, qt, edns)
					resp := ask(t, r, m, tcp)
					checkChaosTXT(t, m, resp, c.want)
					if edns && resp.IsEdns0() == nil {
						t.Errorf("%s CH %s: EDNS query answered without OPT", c.name, dns.TypeToString[qt])
					}
					if !edns && resp.IsEdns0() != nil {
						t.Errorf("%s CH %s: OPT in the answer to a query without EDNS", c.name, dns.TypeToString[qt])
					}
				}
			}
		}
	}
	// NSID is added to CHAOS answers too when asked for.
	m := chaosQuery("id.server.", dns.TypeTXT, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	resp := ask(t, r, m, false)
	checkChaosTXT(t, m, resp, "edge-1")
	nsid := false
	for _, o := range resp.IsEdns0().Option {
		if n, ok := o.(*dns.EDNS0_NSID); ok && n.Nsid == "746573742d31" {
			nsid = true
		}
	}
	if !nsid {
		t.Errorf("id.server with NSID requested: no NSID in %v", resp.IsEdns0())
	}
}

// TestChaosNotConfigured: with no identity or version configured the names
// are REFUSED (Config: "empty: REFUSED"), each setting independently of the
// other, and so are CHAOS names the responder does not know, whatever is
// configured, including names of the IN zones it serves.
func TestChaosNotConfigured(t *testing.T) {
	z := loadZone(t, "testdata/example.com.zone", "example.com.")
	identityNames := []string{"id.server.", "hostname.bind."}
	versionNames := []string{"version.bind.", "version.server."}
	for _, c := range []struct {
		cfg     Config
		refused []string
		want    map[string]string
	}{
		{Config{}, append(append([]string{}, identityNames...), versionNames...), nil},
		{Config{Identity: "edge-1"}, versionNames, map[string]string{"id.server.": "edge-1", "hostname.bind.": "edge-1"}},
		{Config{Version: "xdpns-test"}, identityNames, map[string]string{"version.bind.": "xdpns-test", "version.server.": "xdpns-test"}},
	} {
		r := New(c.cfg)
		r.SetZones([]*zone.Zone{z})
		for _, name := range c.refused {
			for _, qt := range []uint16{dns.TypeTXT, dns.TypeANY, dns.TypeA} {
				m := chaosQuery(name, qt, false)
				resp := ask(t, r, m, false)
				if resp == nil || resp.Rcode != dns.RcodeRefused || resp.Authoritative || len(resp.Answer)+len(resp.Ns)+len(resp.Extra) != 0 ||
					len(resp.Question) != 1 || resp.Question[0] != m.Question[0] {
					t.Errorf("config %+v: %s CH %s: want an empty REFUSED, got %v", c.cfg, name, dns.TypeToString[qt], resp)
				}
			}
		}
		for name, want := range c.want {
			m := chaosQuery(name, dns.TypeTXT, false)
			checkChaosTXT(t, m, ask(t, r, m, false), want)
		}
	}
	// Unknown CHAOS names, with everything configured.
	r := newResponder(t)
	for _, name := range []string{"authors.bind.", "server.", "bind.", "id.server.example.", "version.bind.example.com.", "example.com.", "www.example.com.", "."} {
		for _, qt := range []uint16{dns.TypeTXT, dns.TypeA, dns.TypeANY} {
			m := chaosQuery(name, qt, true)
			resp := ask(t, r, m, false)
			if resp == nil || resp.Rcode != dns.RcodeRefused || len(resp.Answer)+len(resp.Ns) != 0 {
				t.Errorf("unknown CHAOS name %s %s: want REFUSED, got %v", name, dns.TypeToString[qt], resp)
			}
		}
	}
}

// TestChaosOtherTypes: a configured CHAOS name asked for a type other than
// TXT or ANY exists but has no such data: NOERROR, authoritative, empty
// answer (NODATA), the question echoed.
func TestChaosOtherTypes(t *testing.T) {
	r := newResponder(t)
	for _, name := range []string{"id.server.", "hostname.bind.", "version.bind.", "version.server."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS, dns.TypeCNAME, dns.TypeMX, 65280} {
			for _, tcp := range []bool{false, true} {
				m := chaosQuery(name, qt, true)
				resp := ask(t, r, m, tcp)
				if resp == nil || resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) != 0 || len(resp.Ns) != 0 ||
					len(resp.Extra) != 1 || resp.IsEdns0() == nil || len(resp.Question) != 1 || resp.Question[0] != m.Question[0] {
					t.Errorf("%s CH %s: want NOERROR/AA with no records, got %v", name, dns.TypeToString[qt], resp)
				}
			}
		}
	}
}
