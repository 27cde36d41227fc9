package compile

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

func genZone(tb testing.TB, n int) *zone.Zone {
	return testenv.HostsZone(tb, "bench.test.", n)
}

// BenchmarkBuild compiles a 100k-name zone (about 250k entries) and
// reports the time per entry: on one goroutine, and spread over
// GOMAXPROCS workers as Build does for zones of more than two chunks; with
// the fast path for plain names (fast.go) and without it (-engine).
//
//	go test -run '^$' -bench 'Build|Update' -benchtime 3x ./userspace/compile
func BenchmarkBuild(b *testing.B) {
	z := genZone(b, 100_000)
	for _, bc := range []struct {
		name  string
		chunk int
		fast  bool
	}{{"one", z.Len(), true}, {"parallel", 2048, true}, {"one-engine", z.Len(), false}, {"parallel-engine", 2048, false}} {
		b.Run(bc.name, func(b *testing.B) {
			defer func(c int) { buildChunk, fastPath = c, true }(buildChunk)
			buildChunk, fastPath = bc.chunk, bc.fast
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
			b.ReportMetric(float64(buildWorkers(z)), "workers")
		})
	}
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

// BenchmarkTableHeap compiles a zone of 500k names with an A and an AAAA
// each (1M records, the size BenchmarkHeapPerRR in userspace/zone measures)
// and reports the live heap the compiled table adds on top of the zone, per
// record and per entry.
//
//	go test -run '^$' -bench TableHeap -benchtime 1x ./userspace/compile
func BenchmarkTableHeap(b *testing.B) {
	const names = 500_000
	z := genZone(b, names)
	var heap float64
	var entries int
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t, err := Build(z)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		entries = t.Len()
		runtime.KeepAlive(t)
	}
	b.ReportMetric(heap/float64(z.RecordCount()), "heapB/RR")
	b.ReportMetric(heap/float64(entries), "heapB/entry")
	b.ReportMetric(float64(entries), "entries")
	b.ReportMetric(heap/(1<<20), "heapMiB")
}
