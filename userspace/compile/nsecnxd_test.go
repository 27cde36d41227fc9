package compile

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// In NSEC zones the table composes every DO=1 NXDOMAIN whose closest
// encloser has no wildcard, cut or DNAME in the way: the engine's bytes,
// for random QNAMEs one to many labels below every name, up to 255
// octets. And the enclosers XDP searches (NSECEnclosers) give the same
// pieces: the next closer label placed among the encloser's children
// picks the NSEC covering the QNAME.
func TestNSECNXDMatchesEngine(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ path, origin string }{
		{"../nsddiff/testdata/nsec.test.zone.signed", "nsec.test."},
		{"../nsddiff/testdata/chain.test.zone.signed", "chain.test."},
		{"../answer/testdata/rfc4035.zone", "example."},
		{"../../loader/testdata/example.net.zone", "example.net."},
	} {
		t.Run(c.origin, func(t *testing.T) {
			z, _, err := zone.Load(c.path, c.origin, zone.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tab, err := Build(z)
			if err != nil {
				t.Fatal(err)
			}
			if !tab.NSECComposed() {
				t.Fatal("NSEC zone not composed")
			}
			proofs := NSECEnclosers(z)
			if proofs == nil {
				t.Fatal("no enclosers")
			}
			enc := map[string]*NSECEncloser{}
			for i := range proofs.Enclosers {
				enc[string(proofs.Enclosers[i].Name)] = &proofs.Enclosers[i]
			}
			var wild, composed, nxdomains, searched int
			z.Each(func(n *zone.Node) bool {
				for range 6 {
					q := randomBelow(rng, n.Name)
					if z.Node(q) != nil {
						continue
					}
					wq := mustWire(q)
					qkey := append(slices0(wq), 0, 1)
					res := answer.Lookup(z, answer.Query{Name: q, Type: dns.TypeA, DO: true})
					want, err := wire.Encode(q, dns.TypeA, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
					if err != nil {
						t.Fatal(err)
					}
					got, ok := tab.Lookup(qkey, true)
					if ok && bodyString(flatten(got)) != bodyString(want) {
						t.Fatalf("%s: table\n%s\nengine\n%s", q, bodyString(flatten(got)), bodyString(want))
					}
					if ok && res.Rcode == dns.RcodeSuccess && len(res.Answer) > 0 && len(res.Ns) > 0 {
						wild++ // a signed wildcard answer (wildproof.go)
					}
					if res.Rcode != dns.RcodeNameError {
						continue
					}
					nxdomains++
					if ok {
						composed++
					} else if !n.Has(zone.Delegation|zone.BelowCut) && !strings.HasPrefix(n.Name, "*.") && z.Node("*."+n.Name) == nil && !n.Has(zone.HasDNAME) {
						t.Errorf("%s: the engine's NXDOMAIN not composed", q)
					}
					if !ok {
						continue
					}
					// The closest encloser and next closer label, as
					// XDP's walk finds them: the longest suffix with an
					// encloser entry.
					var ce *NSECEncloser
					prev := 0
					for off := int(wq[0]) + 1; off < len(wq); prev, off = off, off+int(wq[off])+1 {
						if e := enc[string(wq[off:])]; e != nil {
							ce = e
							break
						}
					}
					if ce == nil {
						t.Errorf("%s: composed, but no encloser for XDP", q)
						continue
					}
					label := wq[prev+1 : prev+1+int(wq[prev])]
					p := ce.Self
					for _, k := range ce.Kids {
						if bytes.Compare(k.Label, label) < 0 {
							p = k.Gap
						}
					}
					nodes := []*zone.Node{proofs.Pieces[p].Node}
					if w := proofs.Pieces[ce.Wild].Node; w != nodes[0] {
						nodes = append(nodes, w)
					}
					head, _ := SignedNXDomainHead(z)
					fromXDP, ok := appendPieces(head, nodes, dns.TypeNSEC)
					if !ok || bodyString(flatten(fromXDP)) != bodyString(want) {
						t.Fatalf("%s: from the enclosers\n%s\nengine\n%s", q, bodyString(flatten(fromXDP)), bodyString(want))
					}
					searched++
				}
				return true
			})
			t.Logf("%d of %d DO=1 NXDOMAINs composed, %d checked through %d enclosers", composed, nxdomains, searched, len(proofs.Enclosers))
			t.Logf("%d signed wildcard answers composed", wild)
			if composed == 0 {
				t.Error("none composed")
			}
		})
	}
}

func slices0(b []byte) []byte { return append([]byte(nil), b...) }
