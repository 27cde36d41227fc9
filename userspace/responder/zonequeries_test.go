package responder

import (
	"testing"
	"unsafe"

	"github.com/miekg/dns"
)

func queriesByZone(r *Responder) map[string]uint64 {
	got := map[string]uint64{}
	r.ZoneQueries(func(origin string, n uint64) { got[origin] = n })
	return got
}

// TestZoneQueries: each query found for a zone counts once, whatever the
// answer (SERVFAIL of a pending zone too, not REFUSED of no zone); the
// count survives a new version of the zone (Put, SetServed) and goes
// with the zone when it is removed.
func TestZoneQueries(t *testing.T) {
	r := newResponder(t)
	r.Put(Pending("pending.test."))
	for range 3 {
		ask(t, r, query("www.example.com.", dns.TypeA, false, false), false)
	}
	ask(t, r, query("nosuch.example.com.", dns.TypeA, true, false), true)
	ask(t, r, query("x.pending.test.", dns.TypeA, false, false), false)
	ask(t, r, query("www.example.org.", dns.TypeA, false, false), false) // REFUSED
	want := map[string]uint64{"example.com.": 4, "pending.test.": 1}
	if got := queriesByZone(r); len(got) != 2 || got["example.com."] != 4 || got["pending.test."] != 1 {
		t.Fatalf("zone queries %v, want %v", got, want)
	}

	// A new version keeps the count: Put, then a whole new set.
	z, err := Compile(loadZone(t, "testdata/example.com.zone", "example.com."))
	if err != nil {
		t.Fatal(err)
	}
	r.Put(z)
	ask(t, r, query("www.example.com.", dns.TypeA, false, false), false)
	z2, _ := Compile(loadZone(t, "testdata/example.com.zone", "example.com."))
	r.SetServed([]*Zone{z2, Pending("pending.test.")})
	ask(t, r, query("www.example.com.", dns.TypeA, false, false), false)
	if got := queriesByZone(r); got["example.com."] != 6 || got["pending.test."] != 1 {
		t.Fatalf("after new versions %v", got)
	}

	// Removed: gone; added again: from 0.
	r.Remove("pending.test.")
	if got := queriesByZone(r); len(got) != 1 {
		t.Fatalf("after remove %v", got)
	}
	r.Put(Pending("pending.test."))
	if got := queriesByZone(r); got["pending.test."] != 0 {
		t.Fatalf("re-added %v", got)
	}
}

// The counter has its cache line to itself, and counting allocates
// nothing.
func TestZoneQueriesNoAlloc(t *testing.T) {
	if s := unsafe.Sizeof(zoneQueries{}); s < 128 || unsafe.Offsetof(zoneQueries{}.n) < 64 {
		t.Errorf("zoneQueries is %d bytes, counter at %d", s, unsafe.Offsetof(zoneQueries{}.n))
	}
	r := newResponder(t)
	pkt, _ := query("www.example.com.", dns.TypeA, false, false).Pack()
	s, dst := &Scratch{}, make([]byte, 0, 4096)
	r.Respond(s, dst, pkt, false)
	if n := testing.AllocsPerRun(100, func() { r.Respond(s, dst[:0], pkt, false) }); n != 0 {
		t.Errorf("%v allocations per query", n)
	}
}
