package answer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// chainZone holds CNAME loops, chains of 10, 20 and 40 links, a wildcard
// CNAME into its own wildcard, DNAME loops and a chain into nothing.
func chainZone(t testing.TB) *zone.Zone {
	t.Helper()
	var b strings.Builder
	b.WriteString(`$ORIGIN chain.test.
$TTL 300
@ SOA ns h 1 2 3 4 60
@ NS ns
ns A 198.18.0.1
end A 198.18.0.99
self CNAME self
loop1 CNAME loop2
loop2 CNAME loop1
tri1 CNAME tri2
tri2 CNAME tri3
tri3 CNAME tri1
into CNAME loop1
gone CNAME nowhere
*.wild CNAME x.wild
dloop DNAME x.dloop
dpair1 DNAME dpair2
dpair2 DNAME dpair1
`)
	for _, c := range []struct {
		p string
		n int
	}{{"c", 10}, {"d", 20}, {"e", 40}} {
		for i := 1; i <= c.n; i++ {
			next := "end"
			if i < c.n {
				next = fmt.Sprintf("%s%d", c.p, i+1)
			}
			fmt.Fprintf(&b, "%s%d CNAME %s\n", c.p, i, next)
		}
	}
	z, _, err := zone.Parse(strings.NewReader(b.String()), "chain", "chain.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// signedChainZone is the NSEC-signed zone of the NSD differential test
// (userspace/nsddiff/testdata/chain.zone.in).
func signedChainZone(t testing.TB) *zone.Zone {
	t.Helper()
	z, _, err := zone.Load("../nsddiff/testdata/chain.test.zone.signed", "chain.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !z.Signed {
		t.Fatal("chain.test is not signed")
	}
	return z
}

// links lists an answer section as "owner TYPE target" (owners relative to
// chain.test), RRSIGs as "owner RRSIG covered".
func links(rrs []dns.RR) []string {
	rel := func(s string) string {
		s = strings.TrimSuffix(s, "chain.test.")
		return strings.TrimSuffix(s, ".")
	}
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		s := rel(h.Name) + " " + dns.TypeToString[h.Rrtype]
		switch rr := rr.(type) {
		case *dns.CNAME:
			s += " " + rel(rr.Target)
		case *dns.DNAME:
			s += " " + rel(rr.Target)
		case *dns.RRSIG:
			s += " " + dns.TypeToString[rr.TypeCovered]
		}
		out = append(out, s)
	}
	return out
}

// chainOf is the answer for a chain p<from>..p<to> of CNAMEs, then tail.
func chainOf(p string, from, to int, next string, tail ...string) []string {
	var out []string
	for i := from; i <= to; i++ {
		t := next
		if i < to {
			t = fmt.Sprintf("%s%d", p, i+1)
		}
		out = append(out, fmt.Sprintf("%s%d CNAME %s", p, i, t))
	}
	return append(out, tail...)
}

// TestCNAMEChains: a loop is answered NOERROR with each CNAME once, as NSD
// and Knot answer (BIND: SERVFAIL); a chain is followed to its end, as NSD
// does, up to MaxChain CNAMEs: then NOERROR and the resolver chases the
// last target.
func TestCNAMEChains(t *testing.T) {
	z := chainZone(t)
	cases := []struct {
		qname string
		qtype uint16
		rcode int
		want  []string
	}{
		{"self", dns.TypeA, dns.RcodeSuccess, []string{"self CNAME self"}},
		{"loop1", dns.TypeA, dns.RcodeSuccess, []string{"loop1 CNAME loop2", "loop2 CNAME loop1"}},
		{"loop2", dns.TypeTXT, dns.RcodeSuccess, []string{"loop2 CNAME loop1", "loop1 CNAME loop2"}},
		{"tri2", dns.TypeA, dns.RcodeSuccess, []string{"tri2 CNAME tri3", "tri3 CNAME tri1", "tri1 CNAME tri2"}},
		{"into", dns.TypeA, dns.RcodeSuccess, []string{"into CNAME loop1", "loop1 CNAME loop2", "loop2 CNAME loop1"}},
		{"x.wild", dns.TypeA, dns.RcodeSuccess, []string{"x.wild CNAME x.wild"}},
		{"a.b.wild", dns.TypeA, dns.RcodeSuccess, []string{"a.b.wild CNAME x.wild", "x.wild CNAME x.wild"}},
		{"gone", dns.TypeA, dns.RcodeNameError, []string{"gone CNAME nowhere"}},
		{"c1", dns.TypeA, dns.RcodeSuccess, chainOf("c", 1, 10, "end", "end A")},
		{"d1", dns.TypeA, dns.RcodeSuccess, chainOf("d", 1, 20, "end", "end A")},
		{"d1", dns.TypeMX, dns.RcodeSuccess, chainOf("d", 1, 20, "end")}, // NODATA at the end
		{"e1", dns.TypeA, dns.RcodeSuccess, chainOf("e", 1, MaxChain, fmt.Sprintf("e%d", MaxChain+1))},
		{"e10", dns.TypeA, dns.RcodeSuccess, chainOf("e", 10, 40, "end", "end A")}, // 31 links
		{"e9", dns.TypeA, dns.RcodeSuccess, chainOf("e", 9, 40, "end")},            // 32: end not looked up
		// DNAMEs: x.dloop -> x.x.dloop is below the same DNAME again; the
		// answer ends there, as NSD's (Knot and BIND synthesise on).
		{"x.dloop", dns.TypeA, dns.RcodeSuccess, []string{"dloop DNAME x.dloop", "x.dloop CNAME x.x.dloop"}},
		{"x.dpair1", dns.TypeA, dns.RcodeSuccess, []string{"dpair1 DNAME dpair2", "x.dpair1 CNAME x.dpair2", "dpair2 DNAME dpair1", "x.dpair2 CNAME x.dpair1"}},
		// A CNAME query is answered by the CNAME synthesised for it (NSD).
		{"x.dpair1", dns.TypeCNAME, dns.RcodeSuccess, []string{"dpair1 DNAME dpair2", "x.dpair1 CNAME x.dpair2"}},
		{"loop1", dns.TypeCNAME, dns.RcodeSuccess, []string{"loop1 CNAME loop2"}},
	}
	for _, c := range cases {
		q := Query{Name: c.qname + ".chain.test.", Type: c.qtype}
		res := Lookup(z, q)
		got := links(res.Answer)
		if res.Rcode != c.rcode || strings.Join(got, ", ") != strings.Join(c.want, ", ") {
			t.Errorf("%s %s: %s %q\nwant %s %q", c.qname, dns.TypeToString[c.qtype],
				dns.RcodeToString[res.Rcode], got, dns.RcodeToString[c.rcode], c.want)
		}
		if c.qtype == dns.TypeA && res.Rcode == dns.RcodeSuccess && res.Kind != Success {
			t.Errorf("%s %s: kind %s", c.qname, dns.TypeToString[c.qtype], res.Kind)
		}
	}
}

// TestNoRepeatedRecords: no answer of the chain zones, signed or not, holds
// a record twice or is SERVFAIL.
func TestNoRepeatedRecords(t *testing.T) {
	signed := signedChainZone(t)
	for _, z := range []*zone.Zone{chainZone(t), signed} {
		names := append(z.Names(), "x.wild.chain.test.", "a.b.wild.chain.test.", "x.dloop.chain.test.",
			"a.x.dloop.chain.test.", "x.dpair1.chain.test.", "x.dpair2.chain.test.")
		for _, name := range names {
			for _, qt := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeCNAME, dns.TypeDNAME, dns.TypeMX, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeANY, 65280} {
				for _, do := range []bool{false, true} {
					res := Lookup(z, Query{Name: name, Type: qt, DO: do, TCP: true})
					if res.Rcode == dns.RcodeServerFailure || res.Kind == ServerFail {
						t.Errorf("%s %s DO=%v: SERVFAIL", name, dns.TypeToString[qt], do)
					}
					seen := map[string]bool{}
					for _, rr := range append(append(res.Answer, res.Ns...), res.Extra...) {
						s := rr.String()
						if seen[s] {
							t.Errorf("%s %s DO=%v: %s twice", name, dns.TypeToString[qt], do, s)
						}
						seen[s] = true
					}
				}
			}
		}
	}
}

// TestSignedChains: with DO=1 each link carries its RRSIGs, once; a DNAME
// carries its RRSIGs and the CNAME synthesised from it none (RFC 6672
// §5.3.1).
func TestSignedChains(t *testing.T) {
	z := signedChainZone(t)
	cases := []struct {
		qname string
		rcode int
		want  []string
	}{
		{"loop1", dns.RcodeSuccess, []string{"loop1 CNAME loop2", "loop1 RRSIG CNAME", "loop2 CNAME loop1", "loop2 RRSIG CNAME"}},
		{"self", dns.RcodeSuccess, []string{"self CNAME self", "self RRSIG CNAME"}},
		{"c9", dns.RcodeSuccess, []string{"c9 CNAME c10", "c9 RRSIG CNAME", "c10 CNAME end", "c10 RRSIG CNAME", "end A", "end RRSIG A"}},
		{"x.dloop", dns.RcodeSuccess, []string{"dloop DNAME x.dloop", "dloop RRSIG DNAME", "x.dloop CNAME x.x.dloop"}},
		{"x.dpair2", dns.RcodeSuccess, []string{"dpair2 DNAME dpair1", "dpair2 RRSIG DNAME", "x.dpair2 CNAME x.dpair1",
			"dpair1 DNAME dpair2", "dpair1 RRSIG DNAME", "x.dpair1 CNAME x.dpair2"}},
		{"x.wild", dns.RcodeSuccess, []string{"x.wild CNAME x.wild", "x.wild RRSIG CNAME"}},
		{strings.Repeat("y", 63) + "." + strings.Repeat("y", 63) + ".dlong", dns.RcodeYXDomain, []string{"dlong DNAME " + strings.Repeat("a", 63) + "." + strings.Repeat("a", 63), "dlong RRSIG DNAME"}},
	}
	for _, c := range cases {
		for _, do := range []bool{false, true} {
			res := Lookup(z, Query{Name: c.qname + ".chain.test.", Type: dns.TypeA, DO: do})
			want := c.want
			if !do {
				want = nil
				for _, s := range c.want {
					if !strings.Contains(s, " RRSIG ") {
						want = append(want, s)
					}
				}
			}
			got := links(res.Answer)
			if res.Rcode != c.rcode || strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("%s DO=%v: %s %q\nwant %s %q", c.qname, do, dns.RcodeToString[res.Rcode], got, dns.RcodeToString[c.rcode], want)
			}
			if res.Rcode == dns.RcodeYXDomain && len(res.Ns) != 0 {
				t.Errorf("%s DO=%v: YXDOMAIN with an authority section %v", c.qname, do, res.Ns)
			}
		}
	}
	// The wildcard answer proves that x.wild itself does not exist.
	res := Lookup(z, Query{Name: "x.wild.chain.test.", Type: dns.TypeA, DO: true})
	if got := links(res.Ns); strings.Join(got, ", ") != "*.wild NSEC, *.wild RRSIG NSEC" {
		t.Errorf("x.wild DO=1 authority %q", got)
	}
}

// TestDNAMEOverflow: a substitution that makes a name of more than 255
// octets is YXDOMAIN with the DNAME and no CNAME (RFC 6672 §2.2); 255
// octets exactly is a CNAME. Escaped octets count once.
func TestDNAMEOverflow(t *testing.T) {
	a63 := strings.Repeat("a", 63)
	target := a63 + "." + a63 + "." + a63 + ".other.test." // 3*64 + 6 + 5 + 1 = 204 octets
	text := "$ORIGIN chain.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 198.18.0.1\ndn DNAME " + target + "\n"
	z, _, err := zone.Parse(strings.NewReader(text), "dn", "chain.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A first label of n octets makes a target of 204+1+n octets.
	cases := []struct {
		label string
		rcode int
	}{
		{strings.Repeat("x", 50), dns.RcodeSuccess},             // 255
		{strings.Repeat("x", 51), dns.RcodeYXDomain},            // 256
		{strings.Repeat("x", 52), dns.RcodeYXDomain},            // 257
		{strings.Repeat("x", 63), dns.RcodeYXDomain},            // 268
		{strings.Repeat("x", 49) + `\.`, dns.RcodeSuccess},      // 255
		{strings.Repeat("x", 50) + `\.`, dns.RcodeYXDomain},     // 256
		{strings.Repeat("x", 49) + `\255`, dns.RcodeSuccess},    // 255
		{strings.Repeat("x", 48) + `\255\\`, dns.RcodeSuccess},  // 255
		{strings.Repeat("x", 49) + `\255\\`, dns.RcodeYXDomain}, // 256
	}
	for _, c := range cases {
		qname := c.label + ".dn.chain.test."
		res := Lookup(z, Query{Name: qname, Type: dns.TypeA})
		if res.Rcode != c.rcode {
			t.Errorf("%s: %s, want %s", c.label, dns.RcodeToString[res.Rcode], dns.RcodeToString[c.rcode])
			continue
		}
		tgt := strings.TrimSuffix(target, ".") // as links writes it
		want := []string{"dn DNAME " + tgt}
		if c.rcode == dns.RcodeSuccess {
			want = append(want, c.label+".dn CNAME "+c.label+"."+tgt)
		}
		if got := links(res.Answer); strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: answer %q, want %q", c.label, got, want)
		}
		if c.rcode == dns.RcodeSuccess {
			// The synthesised name fits a message.
			m := new(dns.Msg)
			m.SetQuestion(qname, dns.TypeA)
			m.Answer = res.Answer
			if _, err := m.Pack(); err != nil {
				t.Errorf("%s: %v", c.label, err)
			}
		}
	}
}

func TestWireLen(t *testing.T) {
	for name, want := range map[string]int{
		".": 1, "a.": 3, "ab.cd.": 7, `a\.b.`: 5, `a\255.`: 4, `\\.`: 3, `a\0001.`: 5,
	} {
		if got := wireLen(name); got != want {
			t.Errorf("wireLen(%q) = %d, want %d", name, got, want)
		}
	}
}
