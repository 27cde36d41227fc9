// Command manyzones measures a fleet-sized server: many small zones (10,000
// zones of 100 names by default, a catalog-sized provider box). For each
// server it writes the same zone files, starts the server on loopback and
// measures the time from start to every zone answering its SOA, then the
// memory it holds once settled. xdpns is measured twice: from zone files,
// and as a restart of a secondary from its state directory (what a
// provider's box does after a reboot). Knot, NSD and BIND load the same
// zone files. Rounds are interleaved and the report gives medians.
//
//	go run ./bench/cmd/manyzones -xdpns-bin bin/xdpns
//
// Everything stays on loopback; each server runs on every CPU, as a
// provider's box restarts (issue 11 times it on two), or is pinned to -cpu
// (before 2026-12-08 the default was CPU 0). Servers are
// stopped by pid; the scratch directory is removed at the end.
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
	zones, names, rounds int
	cpu                  int
	xdpnsBin             string
	servers              []string
	timeout              time.Duration
	settle               time.Duration
	json                 string
	results              string
	keep                 bool
	profile              string
}

var allServers = []string{"xdpns", "xdpns-state", "knot", "nsd", "bind"}

func main() {
	o := options{zones: 10000, names: 100, rounds: 3, cpu: -1, timeout: 10 * time.Minute, settle: 3 * time.Second}
	servers := strings.Join(allServers, ",")
	flag.IntVar(&o.zones, "zones", o.zones, "number of zones")
	flag.IntVar(&o.names, "names", o.names, "names per zone (each with an A and an AAAA)")
	flag.IntVar(&o.rounds, "rounds", o.rounds, "interleaved rounds; the report gives medians")
	flag.IntVar(&o.cpu, "cpu", o.cpu, "CPU each server is pinned to (-1: not pinned)")
	flag.StringVar(&o.xdpnsBin, "xdpns-bin", "bin/xdpns", "the xdpns binary")
	flag.StringVar(&servers, "servers", servers, "servers to measure, of "+strings.Join(allServers, ","))
	flag.DurationVar(&o.timeout, "timeout", o.timeout, "longest wait for one server to serve every zone")
	flag.DurationVar(&o.settle, "settle", o.settle, "wait after the last zone answers before reading memory")
	flag.StringVar(&o.json, "json", "", "append one JSON line per measurement to this file")
	flag.StringVar(&o.results, "results", "", "also write the table and plots into this Markdown `FILE` (its many-zones section; bench/RESULTS.md), the plots beside it in results/")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory")
	flag.StringVar(&o.profile, "profile", "", "write xdpns CPU and heap profiles (serve -cpuprofile, -memprofile) into `DIR`")
	flag.Parse()
	o.servers = strings.Split(servers, ",")
	for _, s := range o.servers {
		if !slices.Contains(allServers, s) {
			log.Fatalf("unknown server %q (want some of %s)", s, strings.Join(allServers, ","))
		}
	}
	if o.zones < 1 || o.names < 1 || o.rounds < 1 {
		log.Fatal("-zones, -names and -rounds must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// result is one measurement.
type result struct {
	Server  string  `json:"server"`
	Round   int     `json:"round"`
	Zones   int     `json:"zones"`
	Names   int     `json:"names"`
	Records int     `json:"records"`
	Serving float64 `json:"serving_s"` // start to every zone answering
	// Compiled: start to every zone's answers compiled (xdpns only; it
	// serves zones from the engine first at start).
	Compiled float64 `json:"compiled_s,omitempty"`
	RSSMiB   float64 `json:"rss_mib"`  // after settle
	PeakMiB  float64 `json:"peak_mib"` // VmHWM
	Err      string  `json:"error,omitempty"`
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "xdpns-manyzones-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if o.xdpnsBin, err = filepath.Abs(o.xdpnsBin); err != nil {
		return err
	}
	f := fleet{dir: filepath.Join(dir, "zones"), zones: o.zones, names: o.names}
	t0 := time.Now()
	if err := f.write(); err != nil {
		return err
	}
	log.Printf("wrote %d zones of %d names (%d records) in %v", o.zones, o.names, f.records, time.Since(t0).Round(time.Millisecond))
	var jf *os.File
	if o.json != "" {
		if jf, err = os.OpenFile(o.json, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		defer jf.Close()
	}
	var results []result
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.servers {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := measure(ctx, o, &f, name, filepath.Join(dir, fmt.Sprintf("%s-%d", name, round)))
			r.Round = round
			results = append(results, r)
			if r.Err != "" {
				log.Printf("round %d %s: %s", round, name, r.Err)
			} else {
				log.Printf("round %d %-12s every zone served after %6.2f s (compiled %5.2f s), RSS %7.1f MiB (peak %7.1f)", round, name, r.Serving, r.Compiled, r.RSSMiB, r.PeakMiB)
			}
			if jf != nil {
				b, _ := json.Marshal(r)
				fmt.Fprintln(jf, string(b))
			}
		}
	}
	md := table(o, f, results)
	fmt.Print(md)
	if o.results != "" {
		return writeResults(o.results, md, results, o.servers)
	}
	return nil
}

// measure starts one server on the fleet and waits for every zone.
func measure(ctx context.Context, o options, f *fleet, name, dir string) (r result) {
	r = result{Server: name, Zones: f.zones, Names: f.names, Records: f.records}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	start := starters[name]
	if name == "xdpns-state" {
		// The state directory is made by a first run, not measured.
		p, err := startXdpnsSecondary(o, f, dir, true)
		if err == nil {
			err = f.waitAll(ctx, p, o.timeout)
			p.Stop()
		}
		if err != nil {
			r.Err = "preparing the state directory: " + err.Error()
			return r
		}
	}
	t0 := time.Now()
	p, err := start(o, f, dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer p.Stop()
	if err := f.waitAll(ctx, p, o.timeout); err != nil {
		r.Err = err.Error()
		return r
	}
	r.Serving = time.Since(t0).Seconds()
	if waitCompiled(ctx, p, f.zones, o.timeout) {
		r.Compiled = time.Since(t0).Seconds()
	}
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

var starters = map[string]func(options, *fleet, string) (*lab.Proc, error){
	"xdpns": startXdpnsFiles,
	"xdpns-state": func(o options, f *fleet, dir string) (*lab.Proc, error) {
		return startXdpnsSecondary(o, f, dir, false)
	},
	"knot": startKnot,
	"nsd":  startNSD,
	"bind": startBind,
}
