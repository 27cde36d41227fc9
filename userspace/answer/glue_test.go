package answer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// TestApexNSGlue: an NS answer carries the in-zone addresses of its targets,
// as NSD and Knot send them (and their RRSIGs with DO=1 in a signed zone);
// targets outside the zone get none; they are marked optional (the wire
// drops them whole when the answer is over the client's limit).
func TestApexNSGlue(t *testing.T) {
	z, _, err := zone.Parse(strings.NewReader(`$ORIGIN glue.test.
$TTL 300
@ SOA ns1 h 1 2 3 4 60
@ NS ns1
@ NS ns2
@ NS ns.example.net.
ns1 A 198.18.0.1
ns1 AAAA 2001:2::1
ns2 A 198.18.0.2
`), "glue", "glue.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := Lookup(z, Query{Name: "glue.test.", Type: dns.TypeNS})
	if res.Kind != Success || len(res.Answer) != 3 {
		t.Fatalf("answer %v", res.Answer)
	}
	compareSection(t, "additional", res.Extra, []string{
		"ns1.glue.test. 300 IN A 198.18.0.1",
		"ns1.glue.test. 300 IN AAAA 2001:2::1",
		"ns2.glue.test. 300 IN A 198.18.0.2",
	})
	if r := Lookup(z, Query{Name: "glue.test.", Type: dns.TypeA}); len(r.Extra) != 0 {
		t.Errorf("A at the apex: additional %v", r.Extra)
	}

	// 20 name servers with two addresses each: over the bound.
	var b strings.Builder
	b.WriteString("$ORIGIN big.test.\n$TTL 300\n@ SOA ns0 h 1 2 3 4 60\n")
	for i := range 20 {
		fmt.Fprintf(&b, "@ NS ns%d\nns%d A 198.18.1.%d\nns%d AAAA 2001:2::%d\n", i, i, i, i, i)
	}
	big, _, err := zone.Parse(strings.NewReader(b.String()), "big", "big.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := Lookup(big, Query{Name: "big.test.", Type: dns.TypeNS}); len(r.Answer) != 20 || len(r.Extra) != 40 || !r.ExtraOptional {
		t.Errorf("20 name servers: %d answers, %d additional (optional %v), want 20, 40, optional", len(r.Answer), len(r.Extra), r.ExtraOptional)
	}
}

// TestApexNSGlueSigned: with DO=1 the addresses come with their RRSIGs.
func TestApexNSGlueSigned(t *testing.T) {
	z, _, err := zone.Load("../nsddiff/testdata/nsec.test.zone.signed", "nsec.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := Lookup(z, Query{Name: "nsec.test.", Type: dns.TypeNS, DO: true})
	var a, sig int
	for _, rr := range res.Extra {
		switch rr := rr.(type) {
		case *dns.A, *dns.AAAA:
			a++
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeA || rr.TypeCovered == dns.TypeAAAA {
				sig++
			}
		}
	}
	if a == 0 || sig != a {
		t.Errorf("additional %v: %d addresses, %d signatures", res.Extra, a, sig)
	}
}
