package testenv

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// HostsZone is an A/AAAA-heavy zone for benchmarks: SOA, NS and its
// address, extra records, then n names hostNNNNNNN with one A each and an
// AAAA for every second one.
func HostsZone(tb testing.TB, origin string, n int, extra ...dns.RR) *zone.Zone {
	tb.Helper()
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 3600}
	}
	rrs := []dns.RR{
		&dns.SOA{Hdr: hdr(origin, dns.TypeSOA), Ns: "ns." + origin, Mbox: "hostmaster." + origin,
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60},
		&dns.NS{Hdr: hdr(origin, dns.TypeNS), Ns: "ns." + origin},
		&dns.A{Hdr: hdr("ns."+origin, dns.TypeA), A: netip.MustParseAddr("198.18.0.53").AsSlice()},
	}
	rrs = append(rrs, extra...)
	for i := range n {
		name := fmt.Sprintf("host%07d.%s", i, origin)
		a := [4]byte{198, 18, byte(i >> 8), byte(i)}
		rrs = append(rrs, &dns.A{Hdr: hdr(name, dns.TypeA), A: a[:]})
		if i%2 == 0 {
			a6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
			rrs = append(rrs, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: a6.AsSlice()})
		}
	}
	z, _, err := zone.New(origin, rrs, zone.Options{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// NSECZone is an NSEC-signed zone of names (presentation form, below
// origin; origin itself is added), one A each, with an NSEC chain in
// canonical order and filler signatures: for tests and benchmarks of
// signed answers, which nothing here validates.
func NSECZone(tb testing.TB, origin string, names []string) *zone.Zone {
	tb.Helper()
	names = append([]string{origin}, names...)
	keys := make(map[string][]byte, len(names))
	for i, n := range names {
		// Canonical: escapes read, lowercase.
		var buf [256]byte
		l, err := dns.PackDomainName(dns.Fqdn(n), buf[:], 0, nil, false)
		if err != nil {
			tb.Fatal(err)
		}
		s, _, err := dns.UnpackDomainName(buf[:l], 0)
		if err != nil {
			tb.Fatal(err)
		}
		names[i] = dns.CanonicalName(s)
		keys[names[i]] = zone.SortKey(nil, names[i])
	}
	slices.SortFunc(names, func(a, b string) int { return bytes.Compare(keys[a], keys[b]) })
	const blob = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
	var b strings.Builder
	sig := func(owner, covered string) {
		fmt.Fprintf(&b, "%s 300 IN RRSIG %s 13 %d 300 20360101000000 20260101000000 12345 %s %s\n",
			owner, covered, dns.CountLabel(owner), origin, blob)
	}
	for i, n := range names {
		types := "A RRSIG NSEC"
		if n == origin {
			types = "A NS SOA RRSIG NSEC DNSKEY"
			fmt.Fprintf(&b, "%s 300 IN SOA ns1.%s h.%s 1 7200 3600 1209600 300\n", n, origin, origin)
			sig(n, "SOA")
			fmt.Fprintf(&b, "%s 300 IN NS ns1.%s\n", n, origin)
			sig(n, "NS")
			fmt.Fprintf(&b, "%s 300 IN DNSKEY 257 3 13 %s\n", n, blob)
			sig(n, "DNSKEY")
		}
		fmt.Fprintf(&b, "%s 300 IN A 198.18.%d.%d\n", n, i/250%250, i%250+1)
		sig(n, "A")
		fmt.Fprintf(&b, "%s 300 IN NSEC %s %s\n", n, names[(i+1)%len(names)], types)
		sig(n, "NSEC")
	}
	z, _, err := zone.Parse(strings.NewReader(b.String()), "NSECZone", origin, zone.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return z
}
