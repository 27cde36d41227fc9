package compile

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

func genZone(tb testing.TB, n int) *zone.Zone {
	return testenv.HostsZone(tb, "bench.test.", n)
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
