package wire

import (
	"testing"

	"github.com/miekg/dns"
)

// A signed NXDOMAIN is written uncompressed (its pieces are shared), but a
// client whose limit takes it only compressed gets it compressed, as from
// NSD or Knot, not truncated; over the limit even then, it is truncated.
// TestComposeCompressesSignedNXDomain: a signed NXDOMAIN, and a signed
// wildcard NODATA (the same pieces under RCODE 0), are written uncompressed
// and compressed again rather than truncated when over the limit.
func TestComposeCompressesSignedNXDomain(t *testing.T) {
	for _, rcode := range []int{dns.RcodeNameError, dns.RcodeSuccess} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) { composeCompressesSigned(t, rcode) })
	}
}

func composeCompressesSigned(t *testing.T, rcode int) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sig := " 300 IN RRSIG NSEC 13 3 300 20360101000000 20260101000000 19565 example.test. " +
		"391UGlOH8NFw2eEcd/rlgJQAi9eCj0Jn+jK0g3/DEmV4dsdsGLOogT6fdu3ImIpbrqOwCbVxN+N9dEanx84bdw=="
	ns := []dns.RR{
		rr("example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"),
		rr("example.test." + sig),
		rr("alpha.example.test. 300 IN NSEC beta.example.test. A AAAA RRSIG NSEC"),
		rr("alpha.example.test." + sig),
		rr("example.test. 300 IN NSEC alpha.example.test. A NS SOA RRSIG NSEC DNSKEY"),
		rr("example.test." + sig),
	}
	if rcode == dns.RcodeSuccess {
		// RFC 4035 §3.1.3.4: the wildcard's own NSEC, not the one
		// covering it.
		ns[4] = rr("*.example.test. 300 IN NSEC alpha.example.test. A RRSIG NSEC")
		ns[5] = rr("*.example.test." + sig)
	}
	qname := "nx.example.test."
	b, err := Encode(qname, dns.TypeA, rcode, true, nil, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if exact, err := Encode("*.example.test.", dns.TypeMX, dns.RcodeSuccess, true, nil, ns, nil); err != nil ||
		rcode == dns.RcodeSuccess && len(exact.Bytes) >= len(b.Bytes) {
		t.Fatalf("the wildcard's own NODATA (%v) should be compressed: %d bytes, against %d", err, len(exact.Bytes), len(b.Bytes))
	}
	m := new(dns.Msg).SetQuestion(qname, dns.TypeA)
	m.SetEdns0(4096, true)
	var q Query
	if err := ParseQuery(pack(t, m), &q); err != nil {
		t.Fatal(err)
	}
	if !UncompressedProof(&b) {
		t.Fatal("not seen as a signed NXDOMAIN")
	}
	whole := Compose(nil, &q, &b, &Response{Payload: 1232, Limit: 65535})
	c := new(dns.Msg)
	c.Compress = true
	if err := c.Unpack(whole); err != nil {
		t.Fatal(err)
	}
	small, err := c.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(small) >= len(whole) {
		t.Fatalf("compressed %d bytes, uncompressed %d", len(small), len(whole))
	}
	for _, tc := range []struct {
		limit int
		want  int
		tc    bool
	}{
		{len(whole), len(whole), false},
		{len(whole) - 1, len(small), false},
		{len(small), len(small), false},
		{len(small) - 1, 0, true},
	} {
		out := Compose(nil, &q, &b, &Response{Payload: 1232, Limit: tc.limit})
		var got dns.Msg
		if err := got.Unpack(out); err != nil {
			t.Fatal(err)
		}
		if got.Truncated != tc.tc || (!tc.tc && (len(out) != tc.want || len(got.Ns) != len(ns))) {
			t.Errorf("limit %d: %d bytes, TC %v, %d authority records", tc.limit, len(out), got.Truncated, len(got.Ns))
		}
		if !tc.tc && got.Rcode != rcode || !got.IsEdns0().Do() {
			t.Errorf("limit %d: rcode %d, OPT %v", tc.limit, got.Rcode, got.IsEdns0())
		}
	}
}
