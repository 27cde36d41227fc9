// Command catalog measures catalog consumers (issue 9): a real named
// primary serves a catalog zone of -members member zones (RFC 9432
// version 2) and every member; xdpns (catalog: consume) and knotd
// (catalog-role: interpret) consume it in turn, in the same run. For each
// the time from the consumer's start to every member answering its SOA
// authoritatively is measured, then its memory once settled. Rounds are
// interleaved; the report gives medians.
//
//	go run ./bench/cmd/catalog -xdpns-bin bin/xdpns -members 10000 -rounds 3
//
// Everything stays on loopback. named runs on -primary-cpu, each consumer
// pinned to -cpu; servers are stopped by pid and the scratch directory is
// removed at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

type options struct {
	members, names, rounds int
	cpu, primaryCPU        int
	xdpnsBin               string
	consumers              []string
	timeout, settle        time.Duration
	json                   string
	keep                   bool
	profile                string
	noState                bool
	maxTransfers           int
}

var allConsumers = []string{"xdpns", "knot"}

// catalogName is the consumed catalog's origin.
const catalogName = "catalog.bench.test."

func main() {
	o := options{members: 10000, names: 10, rounds: 3, cpu: 0, primaryCPU: 1, timeout: 10 * time.Minute, settle: 3 * time.Second}
	consumers := strings.Join(allConsumers, ",")
	flag.IntVar(&o.members, "members", o.members, "member zones in the catalog")
	flag.IntVar(&o.names, "names", o.names, "names per member zone (each with an A and an AAAA)")
	flag.IntVar(&o.rounds, "rounds", o.rounds, "interleaved rounds; the report gives medians")
	flag.IntVar(&o.cpu, "cpu", o.cpu, "CPU each consumer is pinned to (-1: not pinned)")
	flag.IntVar(&o.primaryCPU, "primary-cpu", o.primaryCPU, "CPU named is pinned to (-1: not pinned)")
	flag.StringVar(&o.xdpnsBin, "xdpns-bin", "bin/xdpns", "the xdpns binary")
	flag.StringVar(&consumers, "consumers", consumers, "consumers to measure, of "+strings.Join(allConsumers, ","))
	flag.DurationVar(&o.timeout, "timeout", o.timeout, "longest wait for one consumer to serve every member")
	flag.DurationVar(&o.settle, "settle", o.settle, "wait after the last member answers before reading memory")
	flag.StringVar(&o.json, "json", "", "append one JSON line per measurement to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory")
	flag.StringVar(&o.profile, "profile", "", "write xdpns CPU and heap profiles (serve -cpuprofile, -memprofile) into `DIR`, the last round's kept")
	flag.BoolVar(&o.noState, "xdpns-no-state", false, "run xdpns without a state directory (what persisting each member costs)")
	flag.IntVar(&o.maxTransfers, "xdpns-max-transfers", 0, "xdpns's xfr.max-transfers (0: its default, 10)")
	flag.Parse()
	o.consumers = strings.Split(consumers, ",")
	for _, s := range o.consumers {
		if !slices.Contains(allConsumers, s) {
			log.Fatalf("unknown consumer %q (want some of %s)", s, strings.Join(allConsumers, ","))
		}
	}
	if o.members < 1 || o.names < 1 || o.rounds < 1 {
		log.Fatal("-members, -names and -rounds must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// result is one measurement.
type result struct {
	Consumer string  `json:"consumer"`
	Round    int     `json:"round"`
	Members  int     `json:"members"`
	Names    int     `json:"names"`
	Serving  float64 `json:"serving_s"` // start to every member answering
	RSSMiB   float64 `json:"rss_mib"`   // after settle
	PeakMiB  float64 `json:"peak_mib"`  // VmHWM
	Err      string  `json:"error,omitempty"`
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "xdpns-catalog-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if o.xdpnsBin, err = filepath.Abs(o.xdpnsBin); err != nil {
		return err
	}
	t0 := time.Now()
	pr, err := startPrimary(ctx, o, filepath.Join(dir, "named"))
	if err != nil {
		return err
	}
	defer pr.Stop()
	log.Printf("named serves the catalog and %d members of %d names, ready after %v", o.members, o.names, time.Since(t0).Round(time.Millisecond))
	var jf *os.File
	if o.json != "" {
		if jf, err = os.OpenFile(o.json, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		defer jf.Close()
	}
	var results []result
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.consumers {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := measure(ctx, o, pr, name, filepath.Join(dir, fmt.Sprintf("%s-%d", name, round)))
			r.Round = round
			results = append(results, r)
			if r.Err != "" {
				log.Printf("round %d %s: %s", round, name, r.Err)
			} else {
				log.Printf("round %d %-6s every member served after %6.2f s, RSS %7.1f MiB (peak %7.1f)", round, name, r.Serving, r.RSSMiB, r.PeakMiB)
			}
			if jf != nil {
				b, _ := json.Marshal(r)
				fmt.Fprintln(jf, string(b))
			}
		}
		if err := pr.proc.Exited(); err != nil {
			return err
		}
	}
	fmt.Print(report(o, results))
	return nil
}

// measure starts one consumer of named's catalog and waits for every
// member.
func measure(ctx context.Context, o options, pr *primary, name, dir string) (r result) {
	r = result{Consumer: name, Members: o.members, Names: o.names}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	start := startXdpns
	if name == "knot" {
		start = startKnot
	}
	t0 := time.Now()
	p, err := start(o, pr, dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer p.Stop()
	if err := waitAll(ctx, p, o.members, o.timeout); err != nil {
		r.Err = err.Error()
		return r
	}
	r.Serving = time.Since(t0).Seconds()
	select {
	case <-time.After(o.settle):
	case <-ctx.Done():
	}
	m := lab.TreeMemory(p.Pid())
	r.RSSMiB, r.PeakMiB = float64(m.RSS)/(1<<20), float64(lab.PeakKB(p.Pid()))/1024
	if err := p.Exited(); err != nil {
		r.Err = err.Error()
	}
	return r
}

func report(o options, results []result) string {
	var b strings.Builder
	m := lab.ThisMachine()
	fmt.Fprintf(&b, "\n## catalog: %d members of %d names at a named primary, %d rounds, medians\n\n", o.members, o.names, o.rounds)
	fmt.Fprintf(&b, "Machine: %s. %s on CPU %d, each consumer on CPU %d, loopback; `go run ./bench/cmd/catalog -xdpns-bin bin/xdpns -members %d -names %d -rounds %d`.\n\n",
		m, lab.NamedVersion(), o.primaryCPU, o.cpu, o.members, o.names, o.rounds)
	fmt.Fprintf(&b, "| consumer | start to every member served (s) | RSS settled (MiB) | peak RSS (MiB) | errors |\n|---|--:|--:|--:|--:|\n")
	type agg struct {
		serve, rss, peak []float64
		errs             int
	}
	by := map[string]*agg{}
	for _, r := range results {
		a := by[r.Consumer]
		if a == nil {
			a = &agg{}
			by[r.Consumer] = a
		}
		if r.Err != "" {
			a.errs++
			continue
		}
		a.serve, a.rss, a.peak = append(a.serve, r.Serving), append(a.rss, r.RSSMiB), append(a.peak, r.PeakMiB)
	}
	for _, s := range o.consumers {
		a := by[s]
		if a == nil {
			continue
		}
		label := s
		if s == "knot" {
			label = lab.KnotVersion()
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.0f | %.0f | %d |\n", label, lab.Median(a.serve), lab.Median(a.rss), lab.Median(a.peak), a.errs)
	}
	return b.String()
}
