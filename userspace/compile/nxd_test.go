package compile

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// nxdZones: unsigned zones with wildcards, delegations, DNAME, CNAMEs and
// empty non-terminals, and the signed ones.
var nxdZones = append([]struct{ path, origin string }{
	{"../responder/testdata/example.com.zone", "example.com."},
	{"../answer/testdata/rfc1034-edu.zone", "edu."},
	{"../answer/testdata/rfc4592.zone", "example."},
}, signedZones...)

// TestNXDomain: for names that do not exist (one and two labels below
// every name of the zone, random QTYPEs, DO or not), the table answers
// with the zone's NXDOMAIN body exactly when the engine's answer is those
// bytes, and says nothing otherwise (the engine answers: wildcards, cuts,
// DNAME, signed proofs).
func TestNXDomain(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, zf := range nxdZones {
		t.Run(filepath.Base(zf.path), func(t *testing.T) {
			z, _, err := zone.Load(zf.path, zf.origin, zone.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tab, err := Build(z)
			if err != nil {
				t.Fatal(err)
			}
			var hits, asked int
			z.Each(func(n *zone.Node) bool {
				for _, q := range []string{"nosuch." + n.Name, fmt.Sprintf("a%d.b.%s", rng.IntN(1000), n.Name)} {
					if z.Node(q) != nil || len(q) > 250 {
						continue
					}
					for _, qt := range []uint16{dns.TypeA, dns.TypeMX, dns.TypeDS, dns.TypeNSEC, uint16(rng.IntN(300))} {
						for _, do := range []bool{false, true} {
							asked++
							qkey := append(mustWire(q), byte(qt>>8), byte(qt))
							got, ok := tab.Lookup(qkey, do)
							res := answer.Lookup(z, answer.Query{Name: q, Type: qt, DO: do})
							want, err := wire.Encode(q, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
							if err != nil {
								t.Fatal(err)
							}
							if !ok {
								continue
							}
							hits++
							// A NOERROR without answers is a referral or a
							// wildcard's NODATA (Entry.WildNoData).
							negOK := res.Kind == answer.Referral || (res.Kind == answer.NoData && underWildcard(z, q))
							if bodyString(got) != bodyString(want) || (res.Rcode != dns.RcodeNameError && len(res.Answer) == 0 && !negOK) {
								t.Fatalf("%s/%d DO=%v: table\n%s\nengine\n%s", q, qt, do, bodyString(got), bodyString(want))
							}
						}
					}
				}
				return true
			})
			t.Logf("%d of %d questions for names that do not exist answered from the table", hits, asked)
			if hits == 0 {
				t.Error("no NXDOMAIN from the table")
			}
		})
	}
}

// underWildcard reports whether a name that does not exist has a wildcard
// child of one of its ancestors in z.
func underWildcard(z *zone.Zone, name string) bool {
	for p := name; p != z.Origin; {
		p = zone.Parent(p)
		if z.Node("*."+p) != nil {
			return true
		}
	}
	return false
}
