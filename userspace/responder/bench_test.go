package responder

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

func benchRespond(b *testing.B, m *dns.Msg) {
	r := newResponder(b)
	pkt, _ := m.Pack()
	var s Scratch
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if r.Respond(&s, buf[:0], pkt, false) == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkRespondHit is the compiled-table path: parse, key lookup, compose.
func BenchmarkRespondHit(b *testing.B) {
	benchRespond(b, query("WWW.example.com.", dns.TypeA, true, false))
}

// BenchmarkRespondMiss runs the engine: a wildcard answer is never compiled.
func BenchmarkRespondMiss(b *testing.B) {
	benchRespond(b, query("x.wild.example.com.", dns.TypeA, true, false))
}

// BenchmarkRespondNXDomain: a name that does not exist, answered from the
// table through its closest encloser (a random-subdomain flood).
func BenchmarkRespondNXDomain(b *testing.B) {
	benchRespond(b, query("nosuch.example.com.", dns.TypeA, true, false))
}

// BenchmarkRespondHitLarge is the compiled-table path over a 200k-name
// zone, asking for a different name each time (in a shuffled order): the
// lookup's cache misses, as a server sees them, rather than one hot entry.
func BenchmarkRespondHitLarge(b *testing.B) {
	const names = 200_000
	r := New(Config{})
	z := testenv.HostsZone(b, "bench.test.", names)
	rz, err := Compile(z)
	if err != nil {
		b.Fatal(err)
	}
	r.Put(rz)
	rng := rand.New(rand.NewPCG(1, 2))
	pkts := make([][]byte, 1<<16)
	for i := range pkts {
		pkts[i], _ = query(fmt.Sprintf("host%07d.bench.test.", rng.IntN(names)), dns.TypeA, true, false).Pack()
	}
	var s Scratch
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r.Respond(&s, buf[:0], pkts[i&(len(pkts)-1)], false) == nil {
			b.Fatal("no answer")
		}
		i++
	}
}
