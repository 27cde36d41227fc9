package answer

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// TestOrphanSignature: an IXFR may delete an RRset and leave its RRSIG;
// the name then has no such RRset, and the engine must not trip over the
// signature (it once indexed the missing records).
func TestOrphanSignature(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cname := rr("alias.example. 300 CNAME www.example.")
	sig := rr("alias.example. 300 RRSIG CNAME 13 2 300 20360101000000 20260101000000 4711 example. AAAA")
	z, _, err := zone.New("example.", []dns.RR{
		rr("example. 300 SOA ns.example. h.example. 1 2 3 4 60"),
		rr("example. 300 NS ns.example."),
		rr("www.example. 300 A 198.18.0.1"),
		cname, sig,
	}, zone.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Serial++
	nz, _, err := z.Apply([]dns.RR{z.SOA, cname}, []dns.RR{soa}, zone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeCNAME, dns.TypeRRSIG, dns.TypeANY} {
		for _, do := range []bool{false, true} {
			res := Lookup(nz, Query{Name: "alias.example.", Type: qt, DO: do})
			if res.Rcode == dns.RcodeServerFailure {
				t.Errorf("%s DO=%v: SERVFAIL", dns.TypeToString[qt], do)
			}
		}
	}
}
