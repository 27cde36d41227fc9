package answer_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TestTableMatchesEngineOnChains: the compiled table of zones with CNAME
// loops, long chains and looping or overflowing DNAMEs answers exactly as
// the engine, DO=0 and DO=1, for every name of the zone, names below its
// DNAMEs and wildcard, each type of the zone and a few it lacks.
func TestTableMatchesEngineOnChains(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN loops.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 198.18.0.1\nend A 198.18.0.2\nend TXT t\n" +
		"self CNAME self\nloop1 CNAME loop2\nloop2 CNAME loop1\ninto CNAME loop1\n*.wild CNAME x.wild\n" +
		"dloop DNAME x.dloop\ndpair1 DNAME dpair2\ndpair2 DNAME dpair1\n" +
		"dlong DNAME " + strings.Repeat("a", 63) + "." + strings.Repeat("a", 63) + "\n")
	for i := 1; i <= 40; i++ {
		next := "end"
		if i < 40 {
			next = fmt.Sprintf("e%d", i+1)
		}
		fmt.Fprintf(&b, "e%d CNAME %s\n", i, next)
	}
	unsigned, _, err := zone.Parse(strings.NewReader(b.String()), "loops", "loops.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signed, _, err := zone.Load("../nsddiff/testdata/chain.test.zone.signed", "chain.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("y", 63) + "." + strings.Repeat("y", 63) + ".dlong."
	for _, z := range []*zone.Zone{unsigned, signed} {
		t.Run(z.Origin, func(t *testing.T) {
			tab, err := compile.Build(z)
			if err != nil {
				t.Fatal(err)
			}
			names := z.Names()
			for _, n := range []string{"x.wild.", "a.b.wild.", "x.dloop.", "a.x.dloop.", "x.dpair1.", "x.dpair2.", long, "nx."} {
				names = append(names, n+z.Origin)
			}
			types := []uint16{dns.TypeA, dns.TypeTXT, dns.TypeCNAME, dns.TypeDNAME, dns.TypeNS, dns.TypeSOA,
				dns.TypeDS, dns.TypeMX, dns.TypeAAAA, dns.TypeDNSKEY, dns.TypeNSEC, 65280, 4711}
			hits := 0
			for _, name := range names {
				wn := make([]byte, 256)
				l, err := dns.PackDomainName(name, wn, 0, nil, false)
				if err != nil {
					t.Fatal(err)
				}
				for _, qt := range types {
					for _, do := range []bool{false, true} {
						res := answer.Lookup(z, answer.Query{Name: name, Type: qt, DO: do})
						if res.Rcode == dns.RcodeServerFailure {
							t.Errorf("%s %s DO=%v: SERVFAIL", name, dns.TypeToString[qt], do)
						}
						got, ok := tab.Lookup(append(wn[:l:l], byte(qt>>8), byte(qt)), do)
						if !ok {
							continue
						}
						hits++
						want, err := wire.Encode(name, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
						if err != nil {
							t.Fatal(err)
						}
						if s, w := bodyText(got), bodyText(want); s != w {
							t.Errorf("%s %s DO=%v: table\n%s\nengine\n%s", name, dns.TypeToString[qt], do, s, w)
						}
					}
				}
			}
			if hits < 200 {
				t.Errorf("only %d answers from the table", hits)
			}
		})
	}
}

func bodyText(b wire.Body) string {
	return fmt.Sprintf("rcode %d aa %v %d/%d/%d %x%x", b.Rcode, b.AA, b.An, b.Ns, b.Ar, b.Bytes, b.Tail)
}
