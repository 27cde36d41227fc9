package compile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// dump lists a table's entries with negatives resolved.
func dump(t *Table) map[string]string {
	out := map[string]string{}
	t.entries.Range(func(k string, v val) bool {
		b, ok := t.Lookup([]byte(k[:len(k)-1]), k[len(k)-1] == 1)
		if !ok {
			panic("entry not found by Lookup")
		}
		out[k] = fmt.Sprint(v.marks, " ", bodyString(b))
		return true
	})
	return out
}

// bodyString is a body as it goes on the wire: both parts together.
func bodyString(b wire.Body) string {
	return fmt.Sprintf("%d %v %d/%d/%d %x%x", b.Rcode, b.AA, b.An, b.Ns, b.Ar, b.Moved(), b.Tail)
}

// mirror is what a consumer of Changes alone (the XDP maps) holds: every
// entry as last listed, its shared part replaced when Negatives change.
type mirror map[string]Entry

func (m mirror) apply(ch *Changes) {
	if ch.Full {
		clear(m)
	}
	for _, k := range ch.Del {
		delete(m, string(key(nil, []byte(k.Name), k.Type, k.DO)))
	}
	for _, e := range ch.Put {
		m[string(key(nil, e.Name, e.Type, e.DO))] = e
	}
	if ch.Negatives == nil {
		return
	}
	for k, e := range m {
		if !e.Negative {
			continue
		}
		if e.Body.Tail == nil {
			e.Body = ch.Negatives[len(e.Name)]
			e.Body.Tail = nil
		} else {
			h := ch.Negatives[len(e.Name)+SignedKey]
			e.Body.Bytes, e.Body.Ns = h.Bytes, h.Ns+e.Body.TailNs
		}
		m[k] = e
	}
}

func (m mirror) dump() map[string]string {
	out := map[string]string{}
	for k, e := range m {
		out[k] = fmt.Sprint(entryMarks(&e), " ", bodyString(e.Body))
	}
	return out
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUpdateMatchesBuild applies random changes and checks that the table
// Update derives equals a full Build of the new zone, and that a mirror fed
// only with Changes (as the XDP maps are) ends up equal too.
func TestUpdateMatchesBuild(t *testing.T) {
	for seed := uint64(0); seed < 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { updateMatchesBuild(t, seed) })
	}
}

func updateMatchesBuild(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	labels := []string{"a", "b", "www", "*", "ns", "mail"}
	name := func() string {
		var parts []string
		for i := 0; i <= rng.IntN(3); i++ {
			parts = append(parts, labels[rng.IntN(len(labels))])
		}
		return strings.Join(parts, ".") + ".example."
	}
	soa := func(serial int) dns.RR {
		return mustRR(t, fmt.Sprintf("example. 300 SOA ns.example. h.example. %d 2 3 4 60", serial))
	}
	z, _, err := zone.New("example.", []dns.RR{soa(1), mustRR(t, "example. 300 NS ns.example."),
		mustRR(t, "ns.example. 300 A 198.18.0.1"), mustRR(t, "www.example. 300 CNAME a.b.example.")},
		zone.Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Build(z)
	if err != nil {
		t.Fatal(err)
	}
	mir := mirror{}
	if err := Each(z, func(e *Entry) error {
		mir[string(key(nil, e.Name, e.Type, e.DO))] = *e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	serial, applied := 1, 0
	for step := 0; step < 300; step++ {
		del := []dns.RR{soa(serial)}
		add := []dns.RR{soa(serial + 1)}
		recs := z.Records()
		for i := 0; i < rng.IntN(2); i++ {
			r := recs[rng.IntN(len(recs))]
			if r.Header().Name != "example." {
				del = append(del, r)
			}
		}
		for i := 0; i < 1+rng.IntN(3); i++ {
			n := name()
			var s string
			switch rng.IntN(8) {
			case 0, 1:
				s = fmt.Sprintf("%s 300 A 198.18.0.%d", n, rng.IntN(3))
			case 2:
				s = fmt.Sprintf("%s 300 AAAA 2001:2::%d", n, rng.IntN(3))
			case 3:
				s = fmt.Sprintf("%s 300 CNAME %s", n, name())
			case 4:
				s = fmt.Sprintf("%s 300 NS %s", n, name())
			case 5:
				s = fmt.Sprintf("%s 300 MX 10 %s", n, name())
			case 6:
				s = fmt.Sprintf("%s 300 DNAME %s", n, name())
			case 7:
				s = fmt.Sprintf("%s 300 TXT \"%d\"", n, rng.IntN(3))
			}
			add = append(add, mustRR(t, s))
		}
		nz, d, err := z.Apply(del, add, zone.Options{RequireNS: true})
		if err != nil {
			var rerr *zone.RRError
			if !errors.As(err, &rerr) {
				t.Fatalf("step %d: %v", step, err)
			}
			continue
		}
		nt, ch, err := Update(tab, nz, d)
		if err != nil {
			t.Fatalf("step %d: update: %v", step, err)
		}
		full, err := Build(nz)
		if err != nil {
			t.Fatal(err)
		}
		got, want := dump(nt), dump(full)
		for k, w := range want {
			if got[k] != w {
				t.Fatalf("step %d: entry %q (%v):\n got %s\nwant %s\nchange del %v add %v", step, k, d, got[k], w, del, add)
			}
		}
		// Update may keep entries Build would not make (types that left the
		// zone, at chain names): each must still be the engine's answer.
		for k, g := range got {
			if _, ok := want[k]; !ok && strings.SplitN(g, " ", 2)[1] != engineAnswer(t, nz, k) {
				t.Fatalf("step %d: stale entry %q:\n got %s\nwant %s", step, k, g, engineAnswer(t, nz, k))
			}
		}
		// Names that do not exist: the updated table's NXDOMAIN, when it
		// gives one, is the engine's answer.
		for range 20 {
			q := "x" + name()
			if nz.Node(q) != nil {
				continue
			}
			if got, ok := nt.Lookup(append(mustWire(q), 0, 1), false); ok {
				if want := engineAnswer(t, nz, string(mustWire(q))+"\x00\x01\x00"); bodyString(got) != want {
					t.Fatalf("step %d: %s A: table\n%s\nengine\n%s", step, q, bodyString(got), want)
				}
			}
		}
		// The mirror: what an XDP map sees.
		mir.apply(ch)
		mirror := mir.dump()
		for k, w := range want {
			if mirror[k] != w {
				t.Fatalf("step %d: mirror entry %q differs", step, k)
			}
		}
		if len(mirror) != len(got) {
			t.Fatalf("step %d: mirror has %d entries, table %d", step, len(mirror), len(got))
		}
		z, tab = nz, nt
		serial++
		applied++
	}
	if applied < 100 {
		t.Errorf("only %d changes applied", applied)
	}
}

// engineAnswer is what the engine says for a table key.
func engineAnswer(t *testing.T, z *zone.Zone, k string) string {
	name, _, err := dns.UnpackDomainName([]byte(k), 0)
	if err != nil {
		t.Fatal(err)
	}
	qt := uint16(k[len(k)-3])<<8 | uint16(k[len(k)-2])
	if qt == TypeDefault {
		qt = probeType
	}
	res := answer.Lookup(z, answer.Query{Name: name, Type: qt, DO: k[len(k)-1] == 1})
	b, err := wire.Encode(name, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
	if err != nil {
		t.Fatal(err)
	}
	return bodyString(b)
}

// TestNegativeIsStable: which entries share the NODATA body must not depend
// on the order names are compiled in (the loader and the responder compile
// separately and must agree).
func TestNegativeIsStable(t *testing.T) {
	z, _, err := zone.New("example.net.", []dns.RR{
		mustRR(t, "example.net. 300 SOA ns1.example.net. hostmaster.example.net. 1 2 3 4 60"),
		mustRR(t, "example.net. 300 NS ns1.example.net."),
		mustRR(t, "ns1.example.net. 300 A 198.18.0.1"),
		mustRR(t, "abc.example.net. 300 A 198.18.0.2"),
		mustRR(t, "hostmaster.example.net. 300 TXT x"),
		mustRR(t, "qqqqqqqqqq.example.net. 300 TXT x"),
	}, zone.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]bool{}
	for i := 0; i < 20; i++ {
		got := map[string]bool{}
		if err := Each(z, func(e *Entry) error {
			got[string(e.Name)+fmt.Sprint(e.Type)] = e.Negative
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
			if got["\x03ns1\x07example\x03net\x00"+"0"] || !got["\x03abc\x07example\x03net\x00"+"0"] {
				t.Errorf("ns1 (the MNAME) must not share, abc must: %v", got)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("run %d: Negative flags differ from the first run", i)
		}
	}
}
