package compile

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// signedZones are the pre-signed zones of the other packages' tests: NSEC,
// NSEC3, opt-out, and the RFC 4035 and 5155 examples.
var signedZones = []struct{ path, origin string }{
	{"../nsddiff/testdata/nsec.test.zone.signed", "nsec.test."},
	{"../nsddiff/testdata/nsec3.test.zone.signed", "nsec3.test."},
	{"../nsddiff/testdata/optout.test.zone.signed", "optout.test."},
	{"../nsddiff/testdata/nsec3z.test.zone.signed", "nsec3z.test."},
	{"../nsddiff/testdata/nsec3s.test.zone.signed", "nsec3s.test."},
	{"../answer/testdata/rfc4035.zone", "example."},
	{"../answer/testdata/rfc5155.zone", "example."},
}

// TestSignedNegatives: every DO=1 NODATA answer of a signed zone is
// compiled, in two parts when it can be; both parts together are the
// engine's answer, and the first part is the shared one for the length.
func TestSignedNegatives(t *testing.T) {
	for _, sz := range signedZones {
		t.Run(filepath.Base(sz.path), func(t *testing.T) {
			z, _, err := zone.Load(sz.path, sz.origin, zone.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !z.Signed {
				t.Fatal("not signed")
			}
			tab, err := Build(z)
			if err != nil {
				t.Fatal(err)
			}
			split, whole := 0, 0
			err = Each(z, func(e *Entry) error {
				k := string(key(nil, e.Name, e.Type, e.DO))
				if got, want := bodyString(e.Body), engineAnswer(t, z, k); got != want {
					return fmt.Errorf("%q: entry\n%s\nengine\n%s", k, got, want)
				}
				tb, ok := tab.Lookup([]byte(k[:len(k)-1]), e.DO)
				if !ok || bodyString(tb) != bodyString(e.Body) {
					return fmt.Errorf("%q: table has %v %s", k, ok, bodyString(tb))
				}
				switch {
				case e.DO && e.Negative:
					split++
					head := tab.neg[len(e.Name)+SignedKey]
					if string(e.Body.Bytes) != string(head.Bytes) || e.Body.Ns != head.Ns+e.Body.TailNs {
						return fmt.Errorf("%q: first part is not the shared one", k)
					}
				case e.DO && e.Body.An == 0 && e.Body.Ns > 0:
					whole++ // referrals, negative answers not split
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if split == 0 {
				t.Fatal("no DO=1 negative answer was split")
			}
			t.Logf("%d DO=1 negative answers in two parts, %d whole", split, whole)
		})
	}
}

// TestSignedUpdateMatchesBuild: random changes to a signed zone, each with
// a new SOA and a new RRSIG over it (as every IXFR of a signed zone has):
// Update's table equals a full Build, and a mirror fed with Changes only
// (the XDP maps) serves the same bytes, the signed negative answers' first
// parts replaced through Negatives.
func TestSignedUpdateMatchesBuild(t *testing.T) {
	for seed := uint64(0); seed < 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { signedUpdateMatchesBuild(t, seed) })
	}
}

func signedUpdateMatchesBuild(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 5))
	sig := func(covered string, owner string, n int) dns.RR {
		labels := strings.Count(strings.TrimSuffix(owner, "."), ".") + 1
		return mustRR(t, fmt.Sprintf("%s 300 RRSIG %s 13 %d 300 20360101000000 20260101000000 4711 example. %s",
			owner, covered, labels, strings.Repeat(fmt.Sprintf("%02d", n%100), 32)))
	}
	soa := func(serial int) []dns.RR {
		return []dns.RR{
			mustRR(t, fmt.Sprintf("example. 300 SOA ns.example. h.example. %d 2 3 4 60", serial)),
			sig("SOA", "example.", serial),
		}
	}
	names := []string{"a.example.", "b.example.", "c.d.example.", "www.example.", "ns.example."}
	nsec := func(i int, types string) []dns.RR {
		owner, next := names[i], names[(i+1)%len(names)]
		return []dns.RR{
			mustRR(t, fmt.Sprintf("%s 300 NSEC %s %s RRSIG NSEC", owner, next, types)),
			sig("NSEC", owner, i),
		}
	}
	rrs := append(soa(1), mustRR(t, "example. 300 NS ns.example."), sig("NS", "example.", 0),
		mustRR(t, "example. 300 DNSKEY 256 3 13 jBagt/JuBBYlYwlEU0kumCV4VEKp1H8cb/HNj3Xb4QJAO2tSBKHfZMRe9TX1Kf+/rO92ZoV79cpW5ruThnKSmQ=="),
		mustRR(t, "example. 300 NSEC a.example. NS SOA RRSIG NSEC DNSKEY"), sig("NSEC", "example.", 0))
	for i, n := range names {
		rrs = append(rrs, mustRR(t, n+" 300 A 198.18.0.1"), sig("A", n, i))
		rrs = append(rrs, nsec(i, "A")...)
	}
	z, _, err := zone.New("example.", rrs, zone.Options{RequireNS: true}, nil)
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
	serial := 1
	for step := 0; step < 120; step++ {
		del, add := soa(serial), soa(serial+1)
		// Change one name: its A, or its NSEC's type list (a TXT
		// appears or goes).
		i := rng.IntN(len(names))
		n := names[i]
		switch node := z.Node(n); {
		case rng.IntN(2) == 0:
			del = append(del, node.Get(dns.TypeA).RRs...)
			add = append(add, mustRR(t, fmt.Sprintf("%s 300 A 198.18.0.%d", n, 2+step)))
		case node.HasType(dns.TypeTXT):
			del = append(del, node.Get(dns.TypeTXT).RRs...)
			del = append(del, nsec(i, "A TXT")[0])
			add = append(add, nsec(i, "A")[0])
		default:
			add = append(add, mustRR(t, n+` 300 TXT "x"`))
			del = append(del, nsec(i, "A")[0])
			add = append(add, nsec(i, "A TXT")[0])
		}
		nz, d, err := z.Apply(del, add, zone.Options{RequireNS: true})
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		nt, ch, err := Update(tab, nz, d)
		if err != nil {
			t.Fatalf("step %d: update: %v", step, err)
		}
		if ch.Full {
			t.Fatalf("step %d: a full rebuild for a small change", step)
		}
		full, err := Build(nz)
		if err != nil {
			t.Fatal(err)
		}
		got, want := dump(nt), dump(full)
		mir.apply(ch)
		m := mir.dump()
		for k, w := range want {
			if got[k] != w {
				t.Fatalf("step %d: entry %q:\n got %s\nwant %s", step, k, got[k], w)
			}
			if m[k] != w {
				t.Fatalf("step %d: mirror entry %q:\n got %s\nwant %s", step, k, m[k], w)
			}
			if e := engineAnswer(t, nz, k); strings.SplitN(w, " ", 2)[1] != e {
				t.Fatalf("step %d: %q: build %s, engine %s", step, k, w, e)
			}
		}
		if len(m) != len(got) {
			t.Fatalf("step %d: mirror has %d entries, table %d", step, len(m), len(got))
		}
		if len(ch.Put) > 40 {
			t.Errorf("step %d: %d entries listed again for a one-name change", step, len(ch.Put))
		}
		z, tab = nz, nt
		serial++
	}
}

// TestSignedHeadLengthChange: a second signature over the SOA (a key
// rollover) changes the length of the shared first part, which the tails'
// pointers into themselves depend on: Update rebuilds everything.
func TestSignedHeadLengthChange(t *testing.T) {
	z, _, err := zone.Load("../nsddiff/testdata/nsec.test.zone.signed", "nsec.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Build(z)
	if err != nil {
		t.Fatal(err)
	}
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Serial++
	var sig *dns.RRSIG
	for _, r := range z.Node("nsec.test.").Get(dns.TypeSOA).Sigs {
		sig = dns.Copy(r).(*dns.RRSIG)
	}
	sig.KeyTag++
	nz, d, err := z.Apply([]dns.RR{z.SOA}, []dns.RR{soa, sig}, zone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nt, ch, err := Update(tab, nz, d)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Full {
		t.Fatal("a longer first part did not rebuild")
	}
	full, err := Build(nz)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dump(nt)) != fmt.Sprint(dump(full)) {
		t.Fatal("rebuilt table differs from Build")
	}
}

// TestTableEach: a table lists the entries Each compiles for its zone.
func TestTableEach(t *testing.T) {
	zs := append([]struct{ path, origin string }{
		{"../responder/testdata/example.com.zone", "example.com."},
		{"../answer/testdata/rfc1034-edu.zone", "edu."},
	}, signedZones...)
	for _, sz := range zs {
		z, _, err := zone.Load(sz.path, sz.origin, zone.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tab, err := Build(z)
		if err != nil {
			t.Fatal(err)
		}
		str := func(e *Entry) string {
			return fmt.Sprintf("%v %d %v %v ", e.Kind, e.Body.TailNs, e.Negative, e.Body.Tail != nil) + bodyString(e.Body)
		}
		want := map[string]string{}
		if err := Each(z, func(e *Entry) error {
			want[string(key(nil, e.Name, e.Type, e.DO))] = str(e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		if err := tab.Each(func(e *Entry) error {
			got[string(key(nil, e.Name, e.Type, e.DO))] = str(e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: Table.Each differs from Each", sz.origin)
		}
	}
}
