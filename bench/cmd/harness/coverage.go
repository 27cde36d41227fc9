package main

// The XDP coverage scenarios of issue 10: wildcard, random-subdomain,
// referral, nxdomain-nsec / -nsec3 / -nsec3-iter (DO=1 negatives) and
// rrl-flood. Their zones, queries and checks are here; they run through
// the same groups, servers and load runs as the others, except rrl-flood,
// whose generator (two client networks, counting slips) is here too.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/bench/internal/report"
)

// coverageScenarios are the scenarios of issue 10, in order; "coverage"
// on -scenarios names them all, "nxdomain-dnssec" the three signed ones.
var coverageScenarios = []string{"wildcard", "random-subdomain", "referral", "nxdomain-nsec", "nxdomain-nsec3", "nxdomain-nsec3-iter", "rrl-flood"}

var scenarioAliases = map[string][]string{
	"coverage":        coverageScenarios,
	"nxdomain-dnssec": {"nxdomain-nsec", "nxdomain-nsec3", "nxdomain-nsec3-iter"},
}

// The wildcard of the wild group's zone: *.wild.bench.test. A and AAAA.
var (
	wildA    = netip.MustParseAddr("198.18.3.1")
	wildAAAA = netip.MustParseAddr("2001:2::3:1")
)

const wildParent = "wild." + origin

// nsec3Iterations is the NSEC3 iteration count of nxdomain-nsec3-iter
// (salt aabbccdd); nxdomain-nsec3 has 0 and no salt, as RFC 9276 asks.
const nsec3Iterations = 10

// signArgs are ldns-signzone's extra arguments for a signed group's chain.
func signArgs(group string) []string {
	switch group {
	case "nsec3":
		return []string{"-n", "-t", "0"}
	case "nsec3-iter":
		return []string{"-n", "-t", fmt.Sprint(nsec3Iterations), "-s", "aabbccdd"}
	}
	return nil
}

// writeWildZone writes the plain zone of n names and the wildcard
// *.wild with one A and one AAAA.
func writeWildZone(path string, n int) (int, error) {
	records, err := lab.WriteZone(path, origin, n)
	if err != nil {
		return 0, err
	}
	return records + 2, appendLines(path, fmt.Sprintf("*.wild IN A %s\n*.wild IN AAAA %s\n", wildA, wildAAAA))
}

// delegations is how many cuts the referral zone has: one per ten names.
func delegations(n int) int { return max(10, n/10) }

// cut is the k-th delegation of the referral zone: dlgK NS ns1.dlgK, with
// the glue address of ns1.dlgK.
func cut(k int) (name, ns string, glue netip.Addr) {
	name = fmt.Sprintf("dlg%d.%s", k, origin)
	return name, "ns1." + name, lab.HostA(0x7f00 + k) // 198.18.128.0 on: apart from the hosts' addresses
}

// writeReferralZone writes the plain zone of n names and delegations(n)
// cuts below it, each with one NS and its glue A.
func writeReferralZone(path string, n int) (int, error) {
	records, err := lab.WriteZone(path, origin, n)
	if err != nil {
		return 0, err
	}
	var b strings.Builder
	for k := range delegations(n) {
		name, ns, glue := cut(k)
		fmt.Fprintf(&b, "%s IN NS %s\n%s IN A %s\n", name, ns, ns, glue)
	}
	return records + 2*delegations(n), appendLines(path, b.String())
}

func appendLines(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(s)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// randomLabel is a label no zone here has.
func randomLabel(r *rand.Rand) string { return fmt.Sprintf("r%010x", r.Uint64()&0xff_ffff_ffff) }

// coverageQueries lists the queries of a coverage scenario (nil for the
// others): random labels under the wildcard (wildcard); 35% under the
// wildcard, 35% under the apex (NXDOMAIN), 30% names of the zone
// (random-subdomain); names at and below the cuts (referral); random
// names with DO (nxdomain-*). A and AAAA alternate, except that every
// fourth wildcard query asks MX, which the wildcard lacks (its NODATA);
// all with EDNS.
func coverageQueries(sc string, n int, r *rand.Rand) []query {
	count := min(2*n, 200000)
	t := func(i int) string {
		if i%2 == 1 {
			return "AAAA"
		}
		return "A"
	}
	var qs []query
	switch sc {
	case "wildcard":
		for i := range count {
			qt := t(i)
			if i%4 == 3 {
				qt = "MX"
			}
			qs = append(qs, query{name: randomLabel(r) + "." + wildParent, qtype: qt})
		}
	case "random-subdomain":
		for i := range count {
			switch p := r.IntN(100); {
			case p < 35:
				qs = append(qs, query{name: randomLabel(r) + "." + wildParent, qtype: t(i)})
			case p < 70:
				qs = append(qs, query{name: randomLabel(r) + "." + origin, qtype: t(i)})
			default:
				qs = append(qs, query{name: lab.Host(r.IntN(n)) + "." + origin, qtype: t(i)})
			}
		}
	case "referral":
		for i := range count {
			name, _, _ := cut(r.IntN(delegations(n)))
			switch i % 4 {
			case 0:
				qs = append(qs, query{name: name, qtype: "A"}) // at the cut
			default:
				qs = append(qs, query{name: "www." + name, qtype: t(i)})
			}
		}
	case "nxdomain-nsec", "nxdomain-nsec3", "nxdomain-nsec3-iter":
		for i := range count {
			qs = append(qs, query{name: randomLabel(r) + "." + origin, qtype: t(i), do: true})
		}
	case "rrl-flood":
		// Not sent by kxdpgun or dnsperf (floodQuery is); the files are
		// written for uniformity.
		qs = append(qs, query{name: lab.Host(0) + "." + origin, qtype: "A"})
	default:
		return nil
	}
	return qs
}

// coverageQuestions are the checks the coverage groups add to the plain
// ones: wildcard answers (owner the query name), NXDOMAIN under the apex,
// referrals at and below cuts.
func coverageQuestions(g *group) []question {
	r := rand.New(rand.NewPCG(uint64(g.names), 11))
	var qs []question
	switch g.name {
	case "wild":
		for _, edns := range []bool{true, false} {
			qs = append(qs,
				question{name: randomLabel(r) + "." + wildParent, qtype: dns.TypeA, edns: edns, expect: expectWildcard},
				question{name: randomLabel(r) + "." + wildParent, qtype: dns.TypeAAAA, edns: edns, expect: expectWildcard},
				question{name: randomLabel(r) + "." + origin, qtype: dns.TypeA, edns: edns})
		}
		qs = append(qs, question{name: "a." + randomLabel(r) + "." + wildParent, qtype: dns.TypeA, edns: true, v6: true, expect: expectWildcard})
	case "referral":
		for i, k := range []int{0, delegations(g.names) - 1, r.IntN(delegations(g.names))} {
			name, _, _ := cut(k)
			qs = append(qs,
				question{name: name, qtype: dns.TypeA, edns: i != 1, expect: expectReferral, cut: k},
				question{name: "www." + name, qtype: dns.TypeAAAA, edns: true, expect: expectReferral, cut: k},
				question{name: "a.b." + name, qtype: dns.TypeA, edns: i != 0, v6: i == 2, expect: expectReferral, cut: k})
		}
	}
	return qs
}

// What a coverage question must get, when not the zone's own RRset.
const (
	expectWildcard = "wildcard" // the wildcard's RRset, owner the query name, AA
	expectReferral = "referral" // NOERROR without AA, the cut's NS in authority, its glue in additional
)

// checkSynth checks an answer the zone index cannot tell: a wildcard
// synthesis or a referral.
func checkSynth(r *dns.Msg, q question) error {
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("%w: %s, want NOERROR", errWrong, dns.RcodeToString[r.Rcode])
	}
	mk := func(s string) dns.RR {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return rr
	}
	switch q.expect {
	case expectWildcard:
		if !r.Authoritative {
			return fmt.Errorf("%w: AA not set", errWrong)
		}
		want := mk(fmt.Sprintf("%s 3600 IN A %s", q.name, wildA))
		if q.qtype == dns.TypeAAAA {
			want = mk(fmt.Sprintf("%s 3600 IN AAAA %s", q.name, wildAAAA))
		}
		if got, exp := rrStrings(r.Answer), rrStrings([]dns.RR{want}); !slices.Equal(got, exp) {
			return fmt.Errorf("%w: answer %v, want %v", errWrong, got, exp)
		}
	case expectReferral:
		name, ns, glue := cut(q.cut)
		if r.Authoritative {
			return fmt.Errorf("%w: AA set on a referral", errWrong)
		}
		if len(r.Answer) != 0 {
			return fmt.Errorf("%w: answer section %v in a referral", errWrong, r.Answer)
		}
		if got, exp := rrStrings(r.Ns), rrStrings([]dns.RR{mk(fmt.Sprintf("%s 3600 IN NS %s", name, ns))}); !slices.Equal(got, exp) {
			return fmt.Errorf("%w: authority %v, want %v", errWrong, got, exp)
		}
		var extra []dns.RR
		for _, rr := range r.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		if got, exp := rrStrings(extra), rrStrings([]dns.RR{mk(fmt.Sprintf("%s 3600 IN A %s", ns, glue))}); !slices.Equal(got, exp) {
			return fmt.Errorf("%w: additional %v, want the glue %v", errWrong, got, exp)
		}
	}
	return nil
}

// The rrl-flood scenario: one client network floods a name of the zone
// far over the RRL limit while a second network asks at a low rate, both
// from sockets in the client namespace, each from an address of its own
// /24 (not the checks' 198.18.0.0/24, so that the checks after the flood
// are not limited).
var (
	floodSrc = netip.MustParseAddr("198.19.250.2")
	quietSrc = netip.MustParseAddr("198.19.251.2")
)

// The limit every server gets in rrl-flood: BIND's and Knot's semantics
// (docs/rrl.md): responses per second per /24, every 2nd over the limit
// slipped (TC=1), the rest dropped. The window is 4 s, the bucket knotd
// 3.2 starts with (its mod-rrl has no window setting).
const (
	rrlRate      = 200
	rrlSlip      = 2
	rrlWindow    = 4 * time.Second
	quietRate    = 50 // q/s of the second network: under the limit
	floodLinger  = 500 * time.Millisecond
	genFlood     = "flood"
	floodDefault = 20000
)

// floodResult is what one source got.
type floodResult struct {
	sent, answered, slipped, other int64
}

// floodFrom sends the query q from src to dst at qps for d, and counts the
// responses: full NOERROR answers, truncated ones (slips), others. Bounded:
// d plus floodLinger.
func floodFrom(ctx context.Context, v *lab.Veth, src netip.Addr, dst string, q []byte, qps int, d time.Duration) (floodResult, error) {
	var c net.Conn
	err := v.InClient(func() error {
		dl := net.Dialer{LocalAddr: &net.UDPAddr{IP: src.AsSlice()}}
		var err error
		c, err = dl.Dial("udp", dst)
		return err
	})
	if err != nil {
		return floodResult{}, fmt.Errorf("socket from %s: %w", src, err)
	}
	defer c.Close()
	if uc, ok := c.(*net.UDPConn); ok {
		uc.SetReadBuffer(4 << 20)
	}
	var res floodResult
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		var a, s, o int64
		defer func() { mu.Lock(); res.answered, res.slipped, res.other = a, s, o; mu.Unlock() }()
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n < 12 || buf[2]&0x80 == 0 {
				continue
			}
			switch {
			case buf[2]&0x02 != 0:
				s++
			case buf[3]&0x0f == dns.RcodeSuccess && binary.BigEndian.Uint16(buf[6:]) > 0:
				a++
			default:
				o++
			}
		}
	}()
	pkt := slices.Clone(q)
	start := time.Now()
	count := int(float64(qps) * d.Seconds())
	step := max(1, qps/1000) // paced a millisecond's worth at a time
	for i := 0; i < count && ctx.Err() == nil; i++ {
		binary.BigEndian.PutUint16(pkt, uint16(i))
		if _, err := c.Write(pkt); err == nil {
			res.sent++
		}
		if (i+1)%step == 0 {
			if w := time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(qps))); w > 0 {
				time.Sleep(w)
			}
		}
	}
	c.SetReadDeadline(time.Now().Add(floodLinger))
	<-done
	mu.Lock()
	defer mu.Unlock()
	return res, ctx.Err()
}

// floodQuery is the query both networks send: A of the zone's first name,
// with EDNS.
func floodQuery() []byte {
	m := new(dns.Msg).SetQuestion(lab.Host(0)+"."+origin, dns.TypeA)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	b, _ := m.Pack()
	return b
}

// measureFlood runs rrl-flood against s: the flood network at
// o.floodRate and the quiet one at quietRate for o.duration, CPU measured
// as in measure. Answered counts every response (full and slipped); the
// per-network counts are in Sources, XDP's limiter decisions in the note
// it returns.
func measureFlood(ctx context.Context, o *options, s *server, sc string, ld load, round int) (report.Run, string, error) {
	r := report.Run{Kind: "run", Time: time.Now().UTC(), Scenario: sc, Server: s.Name, Generator: ld.gen,
		Phase: ld.phase, Round: round, Offered: o.floodRate + quietRate, InXDP: -1}
	if err := waitQuiet(ctx, o); err != nil {
		return r, "", err
	}
	srvNAPI, _, err := s.v.PinNAPI(o.serverCPU, o.clientCPU)
	if err != nil {
		return r, "", err
	}
	before, err := s.xdpStats()
	if err != nil {
		return r, "", err
	}
	rrlBefore := s.rrlStats()
	dst := net.JoinHostPort(s.v.Server4.String(), "53")
	q := floodQuery()
	var wg sync.WaitGroup
	var fl, qu floodResult
	var ferr, qerr error
	wg.Add(2)
	go func() { defer wg.Done(); fl, ferr = floodFrom(ctx, s.v, floodSrc, dst, q, o.floodRate, o.duration) }()
	go func() { defer wg.Done(); qu, qerr = floodFrom(ctx, s.v, quietSrc, dst, q, quietRate, o.duration) }()
	select {
	case <-ctx.Done():
	case <-time.After(o.warm):
	}
	a := takeSample(o, srvNAPI, s.proc.Pid())
	select {
	case <-ctx.Done():
	case <-time.After(o.duration - 2*o.warm):
	}
	b := takeSample(o, srvNAPI, s.proc.Pid())
	wg.Wait()
	if err := errors.Join(ferr, qerr); err != nil {
		return r, "", err
	}
	r.Seconds = o.duration.Seconds()
	r.Sent = fl.sent + qu.sent
	r.Answered = fl.answered + fl.slipped + fl.other + qu.answered + qu.slipped + qu.other
	r.QPS = float64(r.Answered) / r.Seconds
	if r.Sent > 0 {
		r.AnswerRatio = float64(r.Answered) / float64(r.Sent)
	}
	if r.Answered > 0 {
		r.Correct = float64(r.Answered-fl.other-qu.other) / float64(r.Answered)
	}
	for _, x := range []struct {
		name string
		src  netip.Addr
		rate int
		res  floodResult
	}{{"flood", floodSrc, o.floodRate, fl}, {"quiet", quietSrc, quietRate, qu}} {
		r.Sources = append(r.Sources, report.Source{Name: x.name, Addr: x.src.String(), Offered: x.rate, Sent: x.res.sent,
			Answered: x.res.answered, Slipped: x.res.slipped, Other: x.res.other,
			Dropped: x.res.sent - x.res.answered - x.res.slipped - x.res.other})
	}
	wall := b.at.Sub(a.at)
	frac := func(d time.Duration) float64 { return float64(d) / float64(wall) }
	r.ServerNAPI = frac(b.srvNAPI - a.srvNAPI)
	r.ServerProc = frac(b.proc - a.proc)
	r.ServerCPU = r.ServerNAPI + r.ServerProc
	if o.clientCPU >= 0 {
		r.ClientCPU = 1 - frac(b.cpu1.Idle-a.cpu1.Idle)
	}
	if r.QPS > 0 {
		r.CPUPerMillion = r.ServerCPU / r.QPS * 1e6
	}
	after, err := s.xdpStats()
	if err != nil {
		return r, "", err
	}
	if after != nil && r.Answered > 0 {
		r.InXDP = xdpAnswers(after.Sub(before)) / float64(r.Answered)
	}
	var note strings.Builder
	fmt.Fprintf(&note, "rrl-flood: %s round %d:", s.Name, round)
	for _, src := range r.Sources {
		fmt.Fprintf(&note, " %s %s at %d q/s: sent %d, answered %d, slipped %d, dropped %d, other %d;",
			src.Name, src.Addr, src.Offered, src.Sent, src.Answered, src.Slipped, src.Dropped, src.Other)
	}
	if rrlBefore != nil {
		rrlAfter := s.rrlStats()
		fmt.Fprintf(&note, " XDP limiter: sent %d, slipped %d, dropped %d;",
			rrlAfter[0]-rrlBefore[0], rrlAfter[1]-rrlBefore[1], rrlAfter[2]-rrlBefore[2])
	}
	return r, strings.TrimSuffix(note.String(), ";"), nil
}

// rrlStats reads xdpns's XDP limiter counters (rrl_stats: sent, slipped,
// dropped, exempt) summed over CPUs; nil without XDP.
func (s *server) rrlStats() []uint64 {
	if s.rrlMap == nil {
		return nil
	}
	out := make([]uint64, 4)
	var per []uint64
	for i := range out {
		if err := s.rrlMap.Lookup(uint32(i), &per); err != nil {
			return nil
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out
}

// rrlConfigXdpns is server.rrl for xdpns in rrl-flood.
func rrlConfigXdpns() string {
	return fmt.Sprintf("  rrl:\n    responses-per-second: %d\n    window: %s\n    slip: %d\n    ipv4-prefix-length: 24\n    ipv6-prefix-length: 56\n",
		rrlRate, rrlWindow, rrlSlip)
}

// rrlConfigKnot is knotd's mod-rrl section and the template that puts it
// on every zone.
func rrlConfigKnot() (module, template string) {
	return fmt.Sprintf("mod-rrl:\n  - id: bench\n    rate-limit: %d\n    slip: %d\n", rrlRate, rrlSlip),
		"template:\n  - id: default\n    global-module: mod-rrl/bench\n"
}

// rrlConfigNSD is nsd.conf's RRL: off, or rrl-flood's limit.
func rrlConfigNSD(on bool) string {
	if !on {
		return "\trrl-ratelimit: 0\n\trrl-whitelist-ratelimit: 0\n"
	}
	return fmt.Sprintf("\trrl-ratelimit: %d\n\trrl-whitelist-ratelimit: %d\n\trrl-slip: %d\n\trrl-ipv4-prefix-length: 24\n\trrl-ipv6-prefix-length: 56\n",
		rrlRate, rrlRate, rrlSlip)
}

// rrlConfigBind is named.conf's rate-limit: off, or rrl-flood's limit.
func rrlConfigBind(on bool) string {
	if !on {
		return "\trate-limit { responses-per-second 0; };\n"
	}
	return fmt.Sprintf("\trate-limit { responses-per-second %d; nxdomains-per-second %d; errors-per-second %d; window %d; slip %d; ipv4-prefix-length 24; ipv6-prefix-length 56; };\n",
		rrlRate, rrlRate, rrlRate, int(rrlWindow.Seconds()), rrlSlip)
}
