package responder

import (
	"testing"

	"github.com/miekg/dns"
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
