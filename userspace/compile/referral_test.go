package compile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

const referralZone = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
; glue in bailiwick, and a target outside: marked
sub NS ns1.sub
sub NS ns.other.net.
ns1.sub A 192.0.2.2
ns1.sub AAAA 2001:db8::2
; an NS target below the cut without glue: a QNAME equal to one of its
; ancestors compresses it differently, so not marked
bad NS ns.x.bad
bad NS ns1
; deeper glue under an empty non-terminal
deep NS a.b.deep
a.b.deep A 192.0.2.3
`

// TestReferral: names below a cut that have no entries get the cut's
// referral from the table, pointers moved, byte for byte the engine's
// (Entry.Referral); a cut whose NS target lies below it without glue is
// left to the engine.
func TestReferral(t *testing.T) {
	z, _, err := zone.Parse(strings.NewReader(referralZone), "referral", "example.com.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Build(z)
	if err != nil {
		t.Fatal(err)
	}
	marked := map[string]bool{}
	tab.Each(func(e *Entry) error {
		if e.Referral {
			n, _, _ := dns.UnpackDomainName(e.Name, 0)
			marked[n] = true
		}
		return nil
	})
	for _, n := range []string{"sub.example.com.", "ns1.sub.example.com.", "deep.example.com.", "b.deep.example.com.", "a.b.deep.example.com."} {
		if !marked[n] {
			t.Errorf("%s: not marked Referral", n)
		}
	}
	if marked["bad.example.com."] {
		t.Errorf("bad.example.com.: marked Referral with an NS target below it without glue")
	}
	long := strings.Repeat("a123456789.", 20)
	qs := []string{"x.sub.example.com.", "a.b.c.d.sub.example.com.", "www.ns1.sub.example.com.", "q.b.deep.example.com.",
		"x.deep.example.com.", "x.bad.example.com.", "x.x.bad.example.com.", "ns.x.bad.example.com.", long + "sub.example.com."}
	hits := 0
	for _, q := range qs {
		for _, qt := range []uint16{dns.TypeA, dns.TypeDS, dns.TypeMX} {
			res := answer.Lookup(z, answer.Query{Name: q, Type: qt})
			want, err := wire.EncodeOpt(q, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra, res.ExtraOptional)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := tab.Lookup(append(mustWire(q), byte(qt>>8), byte(qt)), false)
			inBad := strings.HasSuffix(q, "bad.example.com.")
			if inBad {
				if ok {
					t.Errorf("%s/%d: answered from the table below a cut that is not marked", q, qt)
				}
				continue
			}
			if !ok {
				t.Errorf("%s/%d: not answered from the table", q, qt)
				continue
			}
			hits++
			if g, w := fmt.Sprintf("%x %v", got.Moved(), got.ExtraOff), fmt.Sprintf("%x %v", want.Bytes, want.ExtraOff); g != w ||
				got.An != want.An || got.Ns != want.Ns || got.Ar != want.Ar || got.AA != want.AA {
				t.Errorf("%s/%d: table\n%s\nengine\n%s", q, qt, g, w)
			}
		}
	}
	if hits == 0 {
		t.Fatal("no referral answered from the table")
	}
}
