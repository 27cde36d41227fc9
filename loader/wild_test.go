package loader

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// wildZone has wildcards at the apex and deeper, one whose parent is a
// 189-byte name (QNAMEs near 255 octets), one with an MX (its target
// compresses against the question: not safe, passed), a CNAME wildcard, a
// cut and a DNAME on paths, and existing names and empty non-terminals
// between the QNAME and a wildcard.
func wildZone(t testing.TB) *zone.Zone {
	t.Helper()
	l63 := strings.Repeat("k", 62)
	text := `$TTL 300
@ SOA ns h 1 2 3 4 60
@ NS ns
ns A 198.18.0.53
* A 198.18.0.7
* TXT "apex wildcard"
*.deep.a.b AAAA 2001:2::7
host A 198.18.0.8
*.mx MX 10 mail.mx
*.cn CNAME host
sub NS ns.other.net.
*.sub A 198.18.0.9
dn DNAME host
*.k` + l63 + `.k` + l63 + `.k` + l63 + ` A 198.18.0.10
`
	z, _, err := zone.Parse(strings.NewReader(text), "wild", "wild.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func randLabels(rng *rand.Rand, n, maxLen int) string {
	var b strings.Builder
	for range n {
		l := 1 + rng.IntN(maxLen)
		for range l {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		b.WriteByte('.')
	}
	return b.String()
}

// TestWildcard: names that do not exist below a wildcard are answered by
// XDP with the wildcard's records under the QNAME, byte for byte Go's
// answer (tx__wildcard); what XDP cannot answer exactly is passed: types
// the wildcard lacks (NODATA) get its NODATA, its pointers moved, except for
// the next closer label of the SOA's RNAME; bodies whose other names
// compress against the question (MX, CNAME), cuts and DNAMEs on the path, deeper than the
// walk; existing names or empty non-terminals on the path stop it (the
// zone's NXDOMAIN when they have no wildcard).
func TestWildcard(t *testing.T) {
	z := wildZone(t)
	e := newEnv(t, Config{}, responder.Config{}, z)
	l63 := strings.Repeat("k", 62)
	long := "k" + l63 + ".k" + l63 + ".k" + l63 + ".wild.test."
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		name   string
		qtype  uint16
		reason string // "" : pass
	}{
		{"foo.wild.test.", dns.TypeA, "tx__wildcard"},
		{"foo.wild.test.", dns.TypeTXT, "tx__wildcard"},
		{"FoO.WiLd.TeSt.", dns.TypeA, "tx__wildcard"},
		{"a.b.c.d.e.f.g.wild.test.", dns.TypeA, "tx__wildcard"}, // 7 labels below the apex
		{"a.b.c.d.e.f.g.h.i.wild.test.", dns.TypeA, ""},         // deeper than the walk
		{"x.deep.a.b.wild.test.", dns.TypeAAAA, "tx__wildcard"},
		{"x.y.deep.a.b.wild.test.", dns.TypeAAAA, "tx__wildcard"},
		{"x.deep.a.b.wild.test.", dns.TypeA, "tx__wildcard"},               // NODATA from the wildcard, moved
		{"foo.wild.test.", dns.TypeMX, "tx__wildcard"},                     // NODATA at the apex wildcard
		{"x.mx.wild.test.", dns.TypeA, "tx__wildcard"},                     // NODATA of the MX wildcard
		{"h.wild.test.", dns.TypeMX, ""},                                   // the RNAME compresses against it
		{"x.H.wild.test.", dns.TypeMX, ""},                                 // so does it here
		{"h.wild.test.", dns.TypeA, "tx__wildcard"},                        // not in the NODATA
		{"hh.wild.test.", dns.TypeMX, "tx__wildcard"},                      // another label
		{"q." + long, dns.TypeTXT, "tx__wildcard"},                         // NODATA near 255 octets
		{strings.Repeat("r", 50) + "." + long, dns.TypeMX, "tx__wildcard"}, // at 255 octets
		{"x.a.b.wild.test.", dns.TypeA, "tx__nxdomain"},                    // empty non-terminal a.b, no wildcard
		{"x.host.wild.test.", dns.TypeA, "tx__nxdomain"},                   // existing name host
		{"x.mx.wild.test.", dns.TypeMX, ""},                                // target compresses against the question
		{"x.cn.wild.test.", dns.TypeA, ""},                                 // CNAME into the zone
		{"x.sub.wild.test.", dns.TypeA, "tx__referral"},                    // below a cut: referral
		{"x.dn.wild.test.", dns.TypeA, ""},                                 // below a DNAME
		{"q." + long, dns.TypeA, "tx__wildcard"},                           // near 255 octets
		{strings.Repeat("r", 50) + "." + long, dns.TypeA, "tx__wildcard"},  // 255 octets
		{"foo.wild.test.", dns.TypeDS, ""},
	}
	for i := range 40 {
		cases = append(cases, struct {
			name   string
			qtype  uint16
			reason string
		}{randLabels(rng, 1+i%3, 63) + "wild.test.", dns.TypeA, "tx__wildcard"})
	}
	for _, c := range cases {
		for _, v := range []variant{noEDNS, edns, ednsDO} {
			f := frame{v6: len(c.name)%2 == 0}
			query := q(t, c.name, c.qtype, v)
			want := f.response(e.resp.Respond(&responder.Scratch{}, nil, query, false))
			ret, out, st := e.query(t, f.build(query))
			if c.reason == "" {
				if ret != xdpPass {
					t.Errorf("%s %s: verdict %d %v, want pass", c.name, dns.TypeToString[c.qtype], ret, st)
				}
				continue
			}
			if ret != xdpTx || st[c.reason] != 1 {
				t.Errorf("%s %s: verdict %d %v, want %s", c.name, dns.TypeToString[c.qtype], ret, st, c.reason)
				continue
			}
			if string(out) != string(want) {
				t.Errorf("%s %s: XDP differs from Go:\n%s", c.name, dns.TypeToString[c.qtype], hexDiff(out, want))
			}
			checkChecksums(t, out)
		}
	}
}
