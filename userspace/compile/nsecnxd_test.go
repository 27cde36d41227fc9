package compile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
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
					res, want, ok := tableAgainstEngine(t, z, tab, q, &wild)
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
					fromXDP, ok := appendPieces(nil, head, nodes, dns.TypeNSEC)
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

// nsecZone is an NSEC zone of n hosts below the apex.
func nsecZone(tb testing.TB, n int) *zone.Zone {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("host%d.nsecbench.test.", i)
	}
	return testenv.NSECZone(tb, "nsecbench.test.", names)
}

// BenchmarkNSECEnclosers: what XDP's NSEC state costs on top of compiling
// an NSEC zone of 100k names (every name is the apex's child): the table,
// then NSECEnclosers, the pieces and the children search's entries.
//
//	go test -run '^$' -bench NSECEnclosers -benchtime 3x ./userspace/compile
func BenchmarkNSECEnclosers(b *testing.B) {
	z := nsecZone(b, 100_000)
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			if _, err := Build(z); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("enclosers", func(b *testing.B) {
		var p *NSECProofs
		for b.Loop() {
			p = NSECEnclosers(z)
		}
		kids := 0
		for _, e := range p.Enclosers {
			kids += len(e.Kids)
		}
		b.ReportMetric(float64(len(p.Enclosers)), "enclosers")
		b.ReportMetric(float64(kids), "children")
		b.ReportMetric(float64(len(p.Pieces)), "pieces")
	})
}

// BenchmarkSignedNXDomainLookup: Table.Lookup for a DO=1 NXDOMAIN, put
// together per QNAME (what the Go responder does for every one XDP
// passes): NSEC and NSEC3 zones.
//
//	go test -run '^$' -bench SignedNXDomainLookup -benchmem ./userspace/compile
func BenchmarkSignedNXDomainLookup(b *testing.B) {
	for _, c := range []struct{ path, origin string }{
		{"../nsddiff/testdata/nsec.test.zone.signed", "nsec.test."},
		{"../nsddiff/testdata/nsec3z.test.zone.signed", "nsec3z.test."},
	} {
		b.Run(strings.TrimSuffix(c.origin, "."), func(b *testing.B) {
			z, _, err := zone.Load(c.path, c.origin, zone.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			tab, err := Build(z)
			if err != nil {
				b.Fatal(err)
			}
			keys := make([][]byte, 1024)
			for i := range keys {
				keys[i] = append(mustWire(fmt.Sprintf("r%08x.%s", i*7919, c.origin)), 0, 1)
			}
			i := 0
			for b.Loop() {
				if _, ok := tab.Lookup(keys[i%len(keys)], true); !ok {
					b.Fatal("not composed")
				}
				i++
			}
		})
	}
}

// denialPiece copies the stored records (zone.Node.AppendRecords): the
// same bytes as building them and packing them uncompressed, for every
// NSEC and NSEC3 record of the signed test zones.
func TestDenialPieceIsPacked(t *testing.T) {
	files, _ := filepath.Glob("../nsddiff/testdata/*.zone.signed")
	files = append(files, "../answer/testdata/rfc4035.zone", "../answer/testdata/rfc5155.zone")
	checked := 0
	for _, f := range files {
		z, _, err := zone.Load(f, soaOwnerOf(t, f), zone.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var nodes []*zone.Node
		z.Each(func(n *zone.Node) bool {
			nodes = append(nodes, n)
			return true
		})
		z.EachNSEC3(func(_ string, n *zone.Node) { nodes = append(nodes, n) })
		for _, n := range nodes {
			for _, typ := range []uint16{dns.TypeNSEC, dns.TypeNSEC3} {
				s := n.Get(typ)
				if s == nil {
					continue
				}
				want, err := wire.EncodeRecords(append(slices.Clip(s.RRs), s.Sigs...))
				if err != nil {
					t.Fatal(err)
				}
				got, ok := denialPiece(n, typ)
				if !ok || string(got.Bytes) != string(want) || int(got.Ns) != len(s.RRs)+len(s.Sigs) {
					t.Fatalf("%s %s: piece %x (%d records), packed %x", n.Name, dns.TypeToString[typ], got.Bytes, got.Ns, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d pieces checked", checked)
	if checked < 100 {
		t.Error("too few")
	}
}

// soaOwnerOf is the owner of the first SOA in a zone file.
func soaOwnerOf(t *testing.T, file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), ".", file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeSOA {
			return rr.Header().Name
		}
	}
	t.Fatalf("%s: no SOA", file)
	return ""
}
