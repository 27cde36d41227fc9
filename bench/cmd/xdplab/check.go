package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// question is one kdig query and what the zone says it must get.
type question struct {
	name, qtype string
	flags       []string
	want        string // the one RDATA of the answer; "" for NXDOMAIN
}

// questions lists what check asks: A and AAAA of the first and last
// names and of a few others, one in mixed case (answered with the case
// echoed), with EDNS and without, and a name not in the zone.
func questions(origin string, names int) []question {
	r := rand.New(rand.NewPCG(uint64(names), 7))
	var qs []question
	add := func(i int, aaaa bool, name string, flags ...string) {
		q := question{name: name, qtype: "A", flags: flags, want: lab.HostA(i).String()}
		if aaaa {
			q.qtype, q.want = "AAAA", lab.HostAAAA(i).String()
		}
		qs = append(qs, q)
	}
	add(0, false, lab.Host(0)+"."+origin)
	add(names-1, true, lab.Host(names-1)+"."+origin, "+noedns")
	for range 3 {
		i := r.IntN(names)
		add(i, false, lab.Host(i)+"."+origin)
		add(i, true, lab.Host(i)+"."+origin, "+noedns")
	}
	i := r.IntN(names)
	add(i, false, strings.ToUpper(lab.Host(i)[:2])+lab.Host(i)[2:]+"."+strings.ToUpper(origin))
	qs = append(qs, question{name: "nosuch." + origin, qtype: "A"})
	return qs
}

// check asks the questions with kdig from the client namespace and fails
// on any wrong answer. For xdpns with XDP it also checks that the hits
// were answered in XDP (its counters moved by as many answers).
func check(ctx context.Context, s *server, names int) error {
	kdig, err := exec.LookPath("kdig")
	if err != nil {
		return fmt.Errorf("kdig not found (Debian package knot-dnsutils): %w", err)
	}
	before, err := s.xdpStats()
	if err != nil {
		return err
	}
	hits := 0
	for _, q := range questions(origin, names) {
		args := []string{kdig, "@" + s.v.Server4.String(), "-p", "53", "+norec", "+time=2", "+retry=1"}
		if q.want != "" {
			args = append(args, "+short")
		}
		args = append(append(args, q.flags...), q.name, q.qtype)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		argv := s.v.ClientArgv(args...)
		out, err := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		got := strings.TrimSpace(string(out))
		if err != nil {
			return fmt.Errorf("%s: kdig %s %s: %v\n%s", s.Name, q.name, q.qtype, err, got)
		}
		if q.want == "" {
			if !strings.Contains(got, "status: NXDOMAIN") {
				return fmt.Errorf("%s: %s %s: %w, want NXDOMAIN:\n%s", s.Name, q.name, q.qtype, errWrong, got)
			}
			continue
		}
		if got != q.want {
			return fmt.Errorf("%s: %s %s %v: %w %q, want %q", s.Name, q.name, q.qtype, q.flags, errWrong, got, q.want)
		}
		hits++
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
