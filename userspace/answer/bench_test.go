package answer

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkLookup: the engine alone (what the responder runs on a miss of
// its compiled table) for each kind of answer, in the RFC 4035 (NSEC) and
// RFC 5155 (NSEC3) example zones.
//
//	go test -run '^$' -bench Lookup ./userspace/answer
func BenchmarkLookup(b *testing.B) {
	nsec := loadRFCZone(b, "rfc4035.zone", "example.")
	nsec3 := loadRFCZone(b, "rfc5155.zone", "example.")
	for _, bc := range []struct {
		name  string
		zone  string
		qname string
		qtype uint16
		do    bool
	}{
		{"positive", "nsec", "ns1.example.", dns.TypeA, false},
		{"positive-do", "nsec", "ns1.example.", dns.TypeA, true},
		{"nodata-do", "nsec", "ns1.example.", dns.TypeMX, true},
		{"nxdomain", "nsec", "ml.example.", dns.TypeA, false},
		{"nxdomain-nsec-do", "nsec", "ml.example.", dns.TypeA, true},
		{"wildcard-do", "nsec", "a.z.w.example.", dns.TypeMX, true},
		{"referral", "nsec", "mc.a.example.", dns.TypeMX, false},
		{"nxdomain-nsec3-do", "nsec3", "a.c.x.w.example.", dns.TypeA, true},
		{"wildcard-nsec3-do", "nsec3", "a.z.w.example.", dns.TypeMX, true},
	} {
		z := nsec
		if bc.zone == "nsec3" {
			z = nsec3
		}
		b.Run(bc.name, func(b *testing.B) {
			q := Query{Name: bc.qname, Type: bc.qtype, DO: bc.do}
			if res := Lookup(z, q); res.Rcode == dns.RcodeServerFailure {
				b.Fatalf("%s: SERVFAIL", bc.qname)
			}
			b.ReportAllocs()
			for b.Loop() {
				Lookup(z, q)
			}
		})
	}
}
