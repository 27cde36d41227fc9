package responder

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond feeds arbitrary packets to the responder: it must never panic,
// and whatever it sends must be a well-formed DNS message.
func FuzzRespond(f *testing.F) {
	for _, m := range []*dns.Msg{
		query("www.example.com.", dns.TypeA, false, false),
		query("x.wild.example.com.", dns.TypeTXT, true, true),
		query("nope.example.com.", dns.TypeAAAA, true, false),
		query("www.sub.example.com.", dns.TypeA, true, false),
		query("a.dn.example.com.", dns.TypeA, true, false),
		query("example.com.", dns.TypeANY, false, false),
	} {
		b, _ := m.Pack()
		f.Add(b, false)
		f.Add(b, true)
	}
	r := newResponder(f)
	var s Scratch
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		out := r.Respond(&s, nil, pkt, tcp)
		if out == nil {
			return
		}
		if len(out) > 65535 || (!tcp && len(out) > 1232 && len(pkt) >= 12) {
			t.Fatalf("response of %d bytes", len(out))
		}
		var m dns.Msg
		if err := m.Unpack(out); err != nil {
			t.Fatalf("unparseable response %x to %x: %v", out, pkt, err)
		}
		if !m.Response {
			t.Fatal("QR not set")
		}
	})
}
