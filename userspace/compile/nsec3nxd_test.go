package compile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// In NSEC3 zones with up to NSEC3MaxIterations the table composes every DO=1 NXDOMAIN
// whose closest encloser has its NSEC3 and no wildcard, cut or DNAME in
// the way: the engine's bytes, for random QNAMEs one to many labels below
// every name, up to 255 octets. Zones with more iterations compose none.
func TestNSEC3NXDMatchesEngine(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		path, origin string
		composed     bool
		more         bool // the zone's iterations rewritten to NSEC3MaxIterations+1
	}{
		{"../nsddiff/testdata/nsec3z.test.zone.signed", "nsec3z.test.", true, false},
		{"../nsddiff/testdata/nsec3s.test.zone.signed", "nsec3s.test.", true, false},
		{"../nsddiff/testdata/optout.test.zone.signed", "optout.test.", true, false},
		{"../nsddiff/testdata/nsec3.test.zone.signed", "nsec3.test.", true, false}, // 1 iteration
		{"../answer/testdata/rfc5155.zone", "example.", true, false},               // 12 iterations
		{"../nsddiff/testdata/nsec3.test.zone.signed", "nsec3.test.", false, true},
	} {
		t.Run(c.origin, func(t *testing.T) {
			text, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if c.more {
				text = bytes.ReplaceAll(text, []byte("1 0 1 aabbccdd"), fmt.Appendf(nil, "1 0 %d aabbccdd", NSEC3MaxIterations+1))
			}
			z, _, err := zone.Parse(bytes.NewReader(text), c.path, c.origin, zone.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tab, err := Build(z)
			if err != nil {
				t.Fatal(err)
			}
			var wild, composed, nxdomains, missed int
			z.Each(func(n *zone.Node) bool {
				for range 6 {
					q := randomBelow(rng, n.Name)
					if z.Node(q) != nil {
						continue
					}
					res, _, ok := tableAgainstEngine(t, z, tab, q, &wild)
					if res.Rcode != dns.RcodeNameError {
						continue
					}
					nxdomains++
					if ok {
						composed++
					} else if c.composed && !n.Has(zone.Delegation|zone.BelowCut) && !strings.HasPrefix(n.Name, "*.") && z.Node("*."+n.Name) == nil {
						if _, match := z.NSEC3For(n.Name); match {
							missed++
							t.Errorf("%s: the engine's NXDOMAIN not composed", q)
						}
					}
				}
				return true
			})
			t.Logf("%d of %d DO=1 NXDOMAINs composed", composed, nxdomains)
			t.Logf("%d signed wildcard answers composed", wild)
			if c.composed != (composed > 0) {
				t.Errorf("composed %d, want some: %v", composed, c.composed)
			}
		})
	}
}

// randomBelow is a name one to four random labels below name, now and
// then as long as a name can be.
func randomBelow(rng *rand.Rand, name string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-"
	label := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	if rng.IntN(4) == 0 { // fill up to 255 octets
		q := name
		for {
			room := 255 - (len(q) + 1) - 1 // wire length: presentation + 1
			if room < 2 {
				return q
			}
			q = label(min(63, room)) + "." + q
		}
	}
	q := name
	for range 1 + rng.IntN(4) {
		q = label(1+rng.IntN(20)) + "." + q
	}
	return q
}

// tableAgainstEngine asks tab and the engine for q (A, DO=1): what the
// table answers must be the engine's bytes. It counts the signed wildcard
// answers the table composed (wildproof.go) in wild, and returns the
// engine's result, its bytes and whether the table answered.
func tableAgainstEngine(t *testing.T, z *zone.Zone, tab *Table, q string, wild *int) (*answer.Result, wire.Body, bool) {
	t.Helper()
	res := answer.Lookup(z, answer.Query{Name: q, Type: dns.TypeA, DO: true})
	want, err := wire.Encode(q, dns.TypeA, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := tab.Lookup(append(mustWire(q), 0, 1), true)
	if ok && bodyString(flatten(got)) != bodyString(want) {
		t.Fatalf("%s: table\n%s\nengine\n%s", q, bodyString(flatten(got)), bodyString(want))
	}
	if ok && res.Rcode == dns.RcodeSuccess && len(res.Answer) > 0 && len(res.Ns) > 0 {
		*wild++
	}
	return &res, want, ok
}
