package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

var errWrong = errors.New("wrong answer")

// question is one check query; what it must get comes from the zone.
type question struct {
	name  string
	qtype uint16
	edns  bool
	do    bool
	v6    bool // sent to the server's IPv6 address
	// expect: "" the zone's RRset or a negative answer (from the index);
	// expectWildcard, expectReferral (of delegation cut): coverage.go.
	expect string
	cut    int
}

func (q question) String() string {
	s := q.name + " " + dns.TypeToString[q.qtype]
	if q.do {
		s += " +dnssec"
	} else if !q.edns {
		s += " +noedns"
	}
	if q.v6 {
		s += " (IPv6)"
	}
	return s
}

// questionsFor lists what check asks of g's servers: A and AAAA of the
// first, the last and a few random names, with EDNS and without, over
// IPv4 and IPv6, one in mixed case (answered with the case echoed), the
// apex's SOA and NS, a name not in the zone (NXDOMAIN) and a type a name
// lacks (NODATA); for the signed zone, with DO as well, and MX and TXT.
func questionsFor(g *group) []question {
	return append(baseQuestions(g), coverageQuestions(g)...)
}

func baseQuestions(g *group) []question {
	n := g.names
	r := rand.New(rand.NewPCG(uint64(n), 7))
	host := func(i int) string { return lab.Host(i) + "." + origin }
	picks := []int{0, n - 1, r.IntN(n), r.IntN(n), r.IntN(n)}
	var qs []question
	if g.signed {
		for _, i := range append(picks, 4*r.IntN(n/4)) {
			qs = append(qs,
				question{name: host(i), qtype: dns.TypeA, edns: true, do: true},
				question{name: host(i), qtype: dns.TypeAAAA, edns: true})
			if i%4 == 0 {
				qs = append(qs, question{name: host(i), qtype: dns.TypeMX, edns: true, do: true},
					question{name: host(i), qtype: dns.TypeTXT, edns: true})
			}
		}
		return append(qs,
			question{name: host(1), qtype: dns.TypeMX, edns: true, do: true},  // NODATA
			question{name: host(2), qtype: dns.TypeSRV, edns: true, do: true}, // NODATA
			question{name: "nosuch." + origin, qtype: dns.TypeA, edns: true, do: true},
			question{name: origin, qtype: dns.TypeNS, edns: true, do: true},
			question{name: origin, qtype: dns.TypeSOA, edns: true},
			question{name: host(picks[2]), qtype: dns.TypeA, edns: true, do: true, v6: true})
	}
	for k, i := range picks {
		qs = append(qs,
			question{name: host(i), qtype: dns.TypeA, edns: true, v6: k == 0},
			question{name: host(i), qtype: dns.TypeAAAA, edns: k%2 == 0, v6: k == 1})
	}
	i := picks[2]
	return append(qs,
		question{name: strings.ToUpper(lab.Host(i)[:2]) + lab.Host(i)[2:] + "." + strings.ToUpper(origin), qtype: dns.TypeA, edns: true},
		question{name: origin, qtype: dns.TypeSOA, edns: true},
		question{name: origin, qtype: dns.TypeNS},
		question{name: "nosuch." + origin, qtype: dns.TypeA, edns: true},
		question{name: "nosuch." + origin, qtype: dns.TypeAAAA, v6: true},
		question{name: host(0), qtype: dns.TypeMX, edns: true}) // NODATA
}

// check asks g's questions from the client namespace and fails on any
// answer that is not exactly the zone's. For xdpns with XDP it also checks
// that the plain zone's hits were answered in XDP (its counters moved by
// as many answers).
func check(ctx context.Context, s *server, g *group) error {
	before, err := s.xdpStats()
	if err != nil {
		return err
	}
	hits := 0
	for _, q := range g.questions {
		if err := ctx.Err(); err != nil {
			return err
		}
		positive, err := checkOne(s, g.index, q)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.Name, q, err)
		}
		if positive && !g.signed && (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA) {
			hits++
		}
	}
	after, err := s.xdpStats()
	if err != nil || after == nil {
		return err
	}
	if d := after.Sub(before).Get("tx__answer"); d < uint64(hits) {
		return fmt.Errorf("%s: %d of %d answers came from XDP (counters: %v)", s.Name, d, hits, after.Sub(before).NonZero())
	}
	return nil
}

// checkOne asks q and compares the answer with the zone: the answer
// section exactly the zone's RRset (and its RRSIGs with DO), or NXDOMAIN /
// NODATA with the SOA (and NSEC records with DO) in the authority section.
// It reports whether the answer was positive.
func checkOne(s *server, ix *zoneIndex, q question) (bool, error) {
	m := new(dns.Msg).SetQuestion(q.name, q.qtype)
	m.RecursionDesired = false
	if q.edns {
		m.SetEdns0(1232, q.do)
	}
	addr := net.JoinHostPort(s.v.Server4.String(), "53")
	if q.v6 {
		addr = net.JoinHostPort(s.v.Server6.String(), "53")
	}
	var r *dns.Msg
	var err error
	for range 3 { // UDP: a lost datagram is not a wrong answer
		if r, err = exchangeIn(s.v.InClient, addr, m); err == nil {
			break
		}
	}
	if err != nil {
		return false, err
	}
	if len(r.Question) != 1 || r.Question[0].Name != q.name {
		return false, fmt.Errorf("%w: question not echoed: %v", errWrong, r.Question)
	}
	if q.edns != (r.IsEdns0() != nil) {
		return false, fmt.Errorf("%w: EDNS in the query %v, in the answer %v", errWrong, q.edns, r.IsEdns0() != nil)
	}
	if q.expect != "" {
		return false, checkSynth(r, q)
	}
	if !r.Authoritative {
		return false, fmt.Errorf("%w: AA not set", errWrong)
	}
	name := strings.ToLower(q.name)
	want := ix.rrs[key(name, q.qtype)]
	if q.do && len(want) > 0 {
		want = append(slices.Clone(want), ix.sigs[key(name, q.qtype)]...)
	}
	wantRcode := dns.RcodeSuccess
	if !ix.names[name] {
		wantRcode = dns.RcodeNameError
	}
	if r.Rcode != wantRcode {
		return false, fmt.Errorf("%w: %s, want %s", errWrong, dns.RcodeToString[r.Rcode], dns.RcodeToString[wantRcode])
	}
	if got, exp := rrStrings(r.Answer), rrStrings(want); !slices.Equal(got, exp) {
		return false, fmt.Errorf("%w: answer\n  %s\nwant\n  %s", errWrong, strings.Join(got, "\n  "), strings.Join(exp, "\n  "))
	}
	if len(want) > 0 {
		return true, nil
	}
	// NXDOMAIN or NODATA: the SOA in the authority section, and with DO
	// the NSEC records that prove it.
	var soa, nsec bool
	for _, rr := range r.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			soa = true
		case dns.TypeNSEC, dns.TypeNSEC3:
			nsec = true
		}
	}
	if !soa || q.do && !nsec {
		return false, fmt.Errorf("%w: %s without the SOA (and NSEC or NSEC3 with DO) in authority: %v", errWrong, dns.RcodeToString[r.Rcode], r.Ns)
	}
	return false, nil
}

// rrStrings is rrs in presentation form, owner names lowercased, sorted.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}
