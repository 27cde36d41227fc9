package zone

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sameZone compares two zones node by node: flags, child counts, RRsets and
// the DNSSEC orderings.
func sameZone(t *testing.T, step int, got, want *Zone) {
	t.Helper()
	if got.Len() != want.Len() {
		t.Fatalf("step %d: %d nodes, want %d\n got %v\nwant %v", step, got.Len(), want.Len(), got.Names(), want.Names())
	}
	want.Each(func(w *Node) bool {
		g := got.Node(w.Name)
		switch {
		case g == nil:
			t.Fatalf("step %d: %s missing", step, w.Name)
		case g.Flags != w.Flags:
			t.Fatalf("step %d: %s flags %b, want %b", step, w.Name, g.Flags, w.Flags)
		case g.kids != w.kids:
			t.Fatalf("step %d: %s kids %d, want %d", step, w.Name, g.kids, w.kids)
		case fmt.Sprint(g.Sets()) != fmt.Sprint(w.Sets()):
			t.Fatalf("step %d: %s sets\n got %v\nwant %v", step, w.Name, g.Sets(), w.Sets())
		}
		return true
	})
	if !slices.Equal(got.nsec, want.nsec) {
		t.Fatalf("step %d: nsec order %v, want %v", step, got.nsec, want.nsec)
	}
	if len(got.n3) != len(want.n3) {
		t.Fatalf("step %d: %d NSEC3 owners, want %d", step, len(got.n3), len(want.n3))
	}
	for i := range got.n3 {
		if got.n3[i].hash != want.n3[i].hash || fmt.Sprint(got.n3[i].node.Sets()) != fmt.Sprint(want.n3[i].node.Sets()) {
			t.Fatalf("step %d: NSEC3 %d differs: %s %v / %s %v", step, i, got.n3[i].hash, got.n3[i].node.Sets(), want.n3[i].hash, want.n3[i].node.Sets())
		}
	}
	if got.SOA.String() != want.SOA.String() || got.Signed != want.Signed {
		t.Fatalf("step %d: apex differs", step)
	}
}

func TestApplyMatchesNew(t *testing.T) {
	for seed := uint64(0); seed < 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { applyMatchesNew(t, seed) })
	}
}

func applyMatchesNew(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	labels := []string{"a", "b", "c", "*", "www", "x"}
	randName := func() string {
		n := 1 + rng.IntN(3)
		var parts []string
		for i := 0; i < n; i++ {
			parts = append(parts, labels[rng.IntN(len(labels))])
		}
		return strings.Join(parts, ".") + ".example."
	}
	soa := func(serial int) dns.RR {
		return rr(t, fmt.Sprintf("example. 300 SOA ns.example. h.example. %d 2 3 4 60", serial))
	}
	base := []dns.RR{soa(1), rr(t, "example. 300 NS ns.example."), rr(t, "ns.example. 300 A 198.18.0.1"),
		rr(t, "example. 300 DNSKEY 257 3 13 AAAA"), rr(t, "example. 300 NSEC ns.example. NS SOA RRSIG NSEC DNSKEY")}
	cur, _, err := New("example.", clone(base), Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	records := clone(base)
	applied, serial := 0, 1
	for step := 0; step < 400; step++ {
		del := []dns.RR{soa(serial)}
		add := []dns.RR{soa(serial + 1)}
		// Delete a few existing records (never the SOA or apex NS).
		for i := 0; i < rng.IntN(3); i++ {
			r := records[rng.IntN(len(records))]
			if r.Header().Name == "example." || slices.ContainsFunc(del, func(x dns.RR) bool { return dns.IsDuplicate(x, r) }) {
				continue // keep the apex (SOA, NS, DNSKEY) intact
			}
			del = append(del, r)
		}
		for i := 0; i < rng.IntN(4); i++ {
			name := randName()
			var s string
			switch rng.IntN(7) {
			case 6:
				s = fmt.Sprintf("h%d.example. 300 NSEC3 1 0 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A", rng.IntN(4))
			case 0, 1:
				s = fmt.Sprintf("%s 300 A 198.18.%d.%d", name, rng.IntN(4), rng.IntN(4))
			case 2:
				s = fmt.Sprintf("%s 300 NS ns%d.example.", name, rng.IntN(2))
			case 3:
				s = fmt.Sprintf("%s 300 NSEC example. A", name)
			case 4:
				s = fmt.Sprintf("%s 300 TXT \"%d\"", name, rng.IntN(3))
			case 5:
				s = fmt.Sprintf("%s 300 DNAME d%d.example.", name, rng.IntN(2))
			}
			add = append(add, rr(t, s))
		}
		next, _, err := cur.Apply(del, add, Options{RequireNS: true})
		// The reference: the same records through New.
		want := applyList(records, del, add)
		ref, _, refErr := New("example.", clone(want), Options{RequireNS: true}, nil)
		if err != nil {
			if !errors.Is(err, ErrExists) && !errors.Is(err, ErrNotFound) && refErr == nil {
				t.Fatalf("step %d: Apply failed (%v) where New accepts", step, err)
			}
			continue
		}
		if refErr != nil {
			t.Fatalf("step %d: Apply accepted what New rejects: %v", step, refErr)
		}
		sameZone(t, step, next, ref)
		cur, records = next, want
		applied++
		serial++
	}
	if applied < 200 {
		t.Errorf("only %d of 400 random changes applied", applied)
	}
}

func clone(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, r := range rrs {
		out[i] = dns.Copy(r)
	}
	return out
}

// applyList is the plain reference for Apply on a record list.
func applyList(records, del, add []dns.RR) []dns.RR {
	out := clone(records)
	for _, d := range del {
		if i := slices.IndexFunc(out, func(x dns.RR) bool { return dns.IsDuplicate(x, d) }); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, a := range add {
		if !slices.ContainsFunc(out, func(x dns.RR) bool { return dns.IsDuplicate(x, a) }) {
			out = append(out, dns.Copy(a))
		}
	}
	return out
}

func TestApplyErrorsLeaveTheZone(t *testing.T) {
	z, _, err := parse(t, head+"www A 198.18.0.2\n")
	if err != nil {
		t.Fatal(err)
	}
	soa1, soa2 := rr(t, "example. 300 SOA ns.example. h.example. 1 2 3 4 5"), rr(t, "example. 300 SOA ns.example. h.example. 2 2 3 4 5")
	cases := []struct {
		del, add []dns.RR
		is       error
	}{
		{[]dns.RR{soa1, rr(t, "nope.example. 300 A 198.18.0.9")}, []dns.RR{soa2}, ErrNotFound},
		{[]dns.RR{soa1}, []dns.RR{soa2, rr(t, "www.example. 300 A 198.18.0.2")}, ErrExists},
		{[]dns.RR{soa1}, []dns.RR{soa2, rr(t, "www.example. 300 CNAME ns.example.")}, ErrCNAMEAndData},
		{[]dns.RR{soa1}, []dns.RR{soa2, rr(t, "www.example.org. 300 A 198.18.0.2")}, ErrOutOfZone},
		{nil, []dns.RR{soa2}, ErrDuplicateSOA},
	}
	for i, c := range cases {
		if _, _, err := z.Apply(c.del, c.add, Options{}); !errors.Is(err, c.is) {
			t.Errorf("case %d: %v, want %v", i, err, c.is)
		}
	}
	if z.Serial() != 1 || z.Node("www.example.").Get(dns.TypeA) == nil {
		t.Error("the old zone changed")
	}
}

// An IXFR that deletes an NSEC3 but not its RRSIG leaves no link of the
// chain without an NSEC3 (the engine's proofs read one from every link),
// as loading the same records does.
func TestApplyOrphanNSEC3Signature(t *testing.T) {
	z, _, err := Load("../nsddiff/testdata/nsec3z.test.zone.signed", "nsec3z.test.", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var victim dns.RR
	for _, r := range z.Records() {
		if r.Header().Rrtype == dns.TypeNSEC3 {
			victim = r
			break
		}
	}
	nz, _, err := z.Apply([]dns.RR{victim}, nil, Options{RequireNS: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	nz.EachNSEC3(func(owner string, node *Node) {
		n++
		if s := node.Get(dns.TypeNSEC3); s == nil || len(s.RRs) == 0 {
			t.Errorf("%s: a link of the chain without its NSEC3", owner)
		}
	})
	if n != len(z.n3)-1 {
		t.Errorf("%d links after deleting one of %d", n, len(z.n3))
	}
	// The same records loaded afresh give the same chain.
	fresh, _, err := New(z.Origin, nz.Records(), Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var orphan []dns.RR
	for _, r := range z.Records() {
		if s, ok := r.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeNSEC3 && s.Header().Name == victim.Header().Name {
			orphan = append(orphan, r)
		}
	}
	fresh2, _, err := New(z.Origin, append(nz.Records(), orphan...), Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh.n3) != n || len(fresh2.n3) != n || fresh2.Node(victim.Header().Name) != nil {
		t.Errorf("loaded afresh: %d and %d links (with the orphan RRSIG), want %d; orphan owner a name: %v", len(fresh.n3), len(fresh2.n3), n, fresh2.Node(victim.Header().Name) != nil)
	}
}
