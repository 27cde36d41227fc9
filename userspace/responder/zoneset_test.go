package responder

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// Thousands of zones put and removed one at a time (run-time zones, catalog
// members): each query finds the closest enclosing zone of the version it
// sees, and removing a zone leaves the others.
func TestPutRemoveManyZones(t *testing.T) {
	r := New(Config{})
	const n = 5000
	mk := func(origin string) *Zone {
		z, _, err := zone.New(origin, []dns.RR{
			mustRR(t, origin+" 3600 IN SOA ns. h. 1 7200 3600 1209600 300"),
			mustRR(t, origin+" 3600 IN NS ns."),
		}, zone.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &Zone{Zone: z}
	}
	for i := range n {
		r.Put(mk(fmt.Sprintf("z%d.test.", i)))
	}
	r.Put(mk("sub.z7.test."))
	for i := 0; i < n; i += 2 {
		r.Remove(fmt.Sprintf("Z%d.test.", i)) // any case
	}
	for i := range n {
		got := r.zones.Load().find(wireName(fmt.Sprintf("www.z%d.test.", i)))
		if i%2 == 0 && got != nil {
			t.Fatalf("z%d.test. still served", i)
		}
		if i%2 == 1 && (got == nil || got.origin() != fmt.Sprintf("z%d.test.", i)) {
			t.Fatalf("www.z%d.test. found %v", i, got)
		}
	}
	if got := r.zones.Load().find(wireName("a.sub.z7.test.")); got == nil || got.origin() != "sub.z7.test." {
		t.Fatalf("closest enclosing zone: %v", got)
	}
	if r.Zone("z1.test.") == nil || r.Zone("z0.test.") != nil {
		t.Fatal("Zone")
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// BenchmarkPutZones: adding 10,000 zones one at a time (was quadratic: a
// full copy of the set per Put).
//
//	go test -run '^$' -bench PutZones ./userspace/responder
func BenchmarkPutZones(b *testing.B) {
	const n = 10000
	zs := make([]*Zone, n)
	for i := range zs {
		zs[i] = &Zone{Origin: fmt.Sprintf("z%d.test.", i)}
	}
	b.Run("add", func(b *testing.B) {
		for range b.N {
			r := New(Config{})
			for _, z := range zs {
				r.Put(z)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/put")
	})
	// Every zone of a full set replaced one at a time: a fleet's start
	// (placeholder, then engine, then compiled answers).
	b.Run("replace", func(b *testing.B) {
		r := New(Config{})
		for _, z := range zs {
			r.Put(z)
		}
		b.ResetTimer()
		for range b.N {
			for _, z := range zs {
				r.Put(&Zone{Origin: z.Origin})
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/put")
	})
}
