package compile

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// genZone is an A/AAAA zone of n names (one A each, an AAAA for half).
func genZone(tb testing.TB, n int) *zone.Zone {
	tb.Helper()
	const origin = "bench.test."
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 3600}
	}
	rrs := []dns.RR{
		&dns.SOA{Hdr: hdr(origin, dns.TypeSOA), Ns: "ns." + origin, Mbox: "hostmaster." + origin,
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60},
		&dns.NS{Hdr: hdr(origin, dns.TypeNS), Ns: "ns." + origin},
		&dns.A{Hdr: hdr("ns."+origin, dns.TypeA), A: netip.MustParseAddr("198.18.0.53").AsSlice()},
	}
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

// BenchmarkBuild compiles a 100k-name zone (about 250k entries) and
// reports the time per entry.
//
//	go test -run '^$' -bench 'Build|Update' -benchtime 3x ./userspace/compile
func BenchmarkBuild(b *testing.B) {
	z := genZone(b, 100_000)
	var n int
	for b.Loop() {
		t, err := Build(z)
		if err != nil {
			b.Fatal(err)
		}
		n = t.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
	b.ReportMetric(float64(n), "entries")
}

// BenchmarkUpdate applies one IXFR-like change (new SOA, one address
// changed) to a 100k-name zone: what a NOTIFY costs the compiler, however
// large the zone.
func BenchmarkUpdate(b *testing.B) {
	z := genZone(b, 100_000)
	t, err := Build(z)
	if err != nil {
		b.Fatal(err)
	}
	serial := uint32(1)
	puts := 0
	for b.Loop() {
		b.StopTimer()
		soa := dns.Copy(z.SOA).(*dns.SOA)
		soa.Serial = serial + 1
		name := fmt.Sprintf("host%07d.bench.test.", serial%100_000)
		old := z.Node(name).Get(dns.TypeA).RRs[0]
		nw := dns.Copy(old).(*dns.A)
		nw.A = netip.AddrFrom4([4]byte{198, 19, byte(serial >> 8), byte(serial)}).AsSlice()
		nz, d, err := z.Apply([]dns.RR{z.SOA, old}, []dns.RR{soa, nw}, zone.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		nt, ch, err := Update(t, nz, d)
		if err != nil || ch.Full {
			b.Fatalf("update: %v (full %v)", err, ch != nil && ch.Full)
		}
		puts += len(ch.Put)
		z, t = nz, nt
		serial++
	}
	b.ReportMetric(float64(puts)/float64(b.N), "entries/update")
}
