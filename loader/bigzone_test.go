package loader

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// bigZone builds an A/AAAA-heavy zone of n names under bench.test: every
// name has an A record, every other one an AAAA too.
func bigZone(t testing.TB, n int) *zone.Zone {
	t.Helper()
	long := &dns.A{Hdr: dns.RR_Header{Name: longBenchName, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
		A: netip.MustParseAddr("198.18.0.54").AsSlice()}
	return testenv.HostsZone(t, "bench.test.", n, long)
}

// longBenchName is a 255-byte name in bench.test.
var longBenchName = "l" + repeat('x', 62) + ".m" + repeat('y', 62) + ".n" +
	repeat('z', 62) + ".o" + repeat('w', 49) + ".bench.test."

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
