package testenv

import (
	"fmt"
	"net/netip"
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
