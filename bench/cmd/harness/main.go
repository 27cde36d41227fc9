// Command harness benchmarks xdpns against its peers on the veth lab of
// DESIGN.md, side by side in one run, and writes JSON lines, a Markdown
// report and plots (bench/README.md, "The benchmark harness").
//
// Servers (-servers): xdpns-native (XDP in the veth driver), xdpns-generic
// (generic XDP), xdpns-user (xdpns serve without XDP), knot-xdp (knotd with
// AF_XDP), knot-udp, nsd, bind. Each runs in a lab of its own: a server
// and a client network namespace joined by a veth pair (198.18.0.0/15,
// 2001:2::/48, no default route), threaded NAPI on both ends; the server
// and its end's NAPI thread on -server-cpu, the load generators and the
// client end's NAPI thread on -client-cpu.
//
// Scenarios (-scenarios): hit (A/AAAA of every name), miss (random names:
// NXDOMAIN), mixed (a DNSSEC-signed copy of the zone: A, AAAA, MX, TXT,
// NS/SOA at the apex and types a name lacks; all with EDNS, half with DO),
// ipv6 (hit over IPv6), updates (every server the secondary of a named
// primary in its namespace while updates arrive at -update-rate), large
// (-large-names names); and the XDP coverage scenarios of issue 10:
// wildcard, random-subdomain, referral, nxdomain-nsec, nxdomain-nsec3,
// nxdomain-nsec3-iter (DO=1 negatives) and rrl-flood (one /24 over the
// RRL limit, another under it; coverage.go). Every server's answers are
// checked against the zone before any of its figures count.
//
// Load: kxdpgun (XDP, from the client namespace) at saturation and at the
// fixed -rate; dnsperf (sockets) at -rate for latency percentiles. Runs
// interleave the servers (A B C ... A B C ...) over -rounds rounds.
//
//	go run ./bench/cmd/harness -mode quick
//	go run ./bench/cmd/harness -mode full -results bench/RESULTS.md
//
// Everything it sends stays inside the namespaces it creates; every load
// run is bounded in time. On the way out, also on error and Ctrl-C, it
// stops every process it started (by pid) and deletes its namespaces (and
// with them the interfaces and XDP programs). A measuring run holds an
// exclusive lock on -lock for its whole length.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const origin = "bench.test."

var allScenarios = append([]string{"hit", "miss", "mixed", "ipv6", "updates", "large"}, coverageScenarios...)

type options struct {
	mode       string
	scenarios  string
	servers    string
	rounds     int
	duration   time.Duration
	warm       time.Duration
	rate       int
	saturation int
	batch      int
	satBatch   int
	names      int
	largeNames int
	updateRate int
	floodRate  int
	xdpnsBin   string
	serverCPU  int
	clientCPU  int
	pinLoad    bool // servers load on serverCPU too, not on every CPU
	lock       string
	quietMax   time.Duration
	quietIdle  float64
	outDir     string
	results    string
	keep       bool
	planOnly   bool
	command    string

	scratch string // set by run
	noAFXDP string // set by run: why Knot's XDP cannot run here (knotxdp.go)
}

// modeDefaults are the settings of -mode; flags given on the command line
// override them.
func modeDefaults(mode string) (options, error) {
	o := options{
		mode:       mode,
		servers:    strings.Join(serverNames(), ","),
		rate:       100000,
		saturation: 10_000_000,
		batch:      10,
		satBatch:   64,
		names:      10000,
		largeNames: 1_000_000,
		updateRate: 20,
		floodRate:  floodDefault,
		serverCPU:  0,
		clientCPU:  1,
		lock:       "/tmp/xdpns-bench.lock",
		quietIdle:  0.90,
	}
	switch mode {
	case "quick":
		o.scenarios = "hit,miss,mixed,ipv6,updates"
		o.rounds, o.duration, o.warm = 1, 2*time.Second, 400*time.Millisecond
		o.quietMax = 2 * time.Second
	case "full":
		o.scenarios = strings.Join(allScenarios, ",")
		o.rounds, o.duration, o.warm = 3, 10*time.Second, 1500*time.Millisecond
		o.quietMax = 5 * time.Minute
	default:
		return o, fmt.Errorf("-mode %q: quick or full", mode)
	}
	return o, nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("harness: ")
	// -mode decides the defaults of the other flags: parse it first.
	mode := "quick"
	for i, a := range os.Args[1:] {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "mode="); ok {
			mode = v
		} else if a == "mode" && i+2 < len(os.Args) {
			mode = os.Args[i+2]
		}
	}
	o, err := modeDefaults(mode)
	if err != nil {
		log.Fatal(err)
	}
	flag.StringVar(&o.mode, "mode", o.mode, "quick (about 5 minutes: 1 round, short runs, 10k names, no large zone) or full (3 rounds, 10 s runs, every scenario)")
	flag.StringVar(&o.scenarios, "scenarios", o.scenarios, "scenarios, comma-separated: "+strings.Join(allScenarios, ", ")+"; coverage: the last seven, nxdomain-dnssec: the three nxdomain-*")
	flag.StringVar(&o.servers, "servers", o.servers, "servers, in interleaving order: "+strings.Join(serverNames(), ", "))
	flag.IntVar(&o.rounds, "rounds", o.rounds, "interleaved rounds; medians are over them")
	flag.DurationVar(&o.duration, "duration", o.duration, "sending time of one load run")
	flag.DurationVar(&o.warm, "warm", o.warm, "CPU is measured from this long after a generator starts until this long before it stops")
	flag.IntVar(&o.rate, "rate", o.rate, "offered q/s of the fixed-rate runs (CPU and latency are compared there)")
	flag.IntVar(&o.saturation, "saturation", o.saturation, "offered q/s of the saturation runs (kxdpgun -Q: as fast as it can when above that)")
	flag.IntVar(&o.names, "names", o.names, "names in the zone (one A and one AAAA each)")
	flag.IntVar(&o.largeNames, "large-names", o.largeNames, "names in the zone of the large scenario")
	flag.IntVar(&o.updateRate, "update-rate", o.updateRate, "updates/s sent to the primary in the updates scenario")
	flag.IntVar(&o.floodRate, "flood-rate", o.floodRate, "q/s of the flooding network in rrl-flood (the limit is "+fmt.Sprint(rrlRate)+"/s per /24)")
	flag.StringVar(&o.xdpnsBin, "xdpns-bin", "", "xdpns binary; empty: build ./cmd/xdpns from a clean git worktree of HEAD")
	flag.IntVar(&o.serverCPU, "server-cpu", o.serverCPU, "CPU of the servers and their NAPI threads (-1: no pinning)")
	flag.BoolVar(&o.pinLoad, "pin-load", false, "pin the large zone's servers to -server-cpu while they load too (default: they load on every CPU, as on a real box, and are pinned once ready; the other scenarios' servers start pinned)")
	flag.IntVar(&o.clientCPU, "client-cpu", o.clientCPU, "CPU of the generators, their NAPI threads and this program (-1: no pinning)")
	flag.StringVar(&o.lock, "lock", o.lock, "file locked (flock) for the whole run, so benchmarks on this machine take turns; empty: none")
	flag.DurationVar(&o.quietMax, "quiet", o.quietMax, "before each run, wait up to this long for both CPUs to be idle; 0: do not wait")
	flag.StringVar(&o.outDir, "out", "", "directory for runs.jsonl, report.md and the plots; default bench/out/<timestamp>")
	flag.StringVar(&o.results, "results", "", "also write the Markdown report here (e.g. bench/RESULTS.md), the plots into results/ beside it")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (zones, configurations, logs)")
	flag.BoolVar(&o.planOnly, "plan", false, "print the runs and the time estimate, run nothing")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments: %v", flag.Args())
	}
	o.command = strings.Join(append([]string{"go run ./bench/cmd/harness"}, os.Args[1:]...), " ")
	if o.outDir == "" {
		o.outDir = filepath.Join("bench", "out", time.Now().UTC().Format("20060102-150405"))
	}

	// Ctrl-C or SIGTERM cancels the run; run stops what it started and
	// deletes its namespaces and scratch directory before returning.
	if o.planOnly {
		if err := o.validate(); err != nil {
			log.Fatal(err)
		}
		runs, est := plan(&o, planGroups(o.scenarioList()))
		fmt.Printf("%s mode: %d load runs of %v, about %v\n", o.mode, runs, o.duration, est.Round(time.Second))
		for _, sc := range o.scenarioList() {
			fmt.Printf("  %-19s %v\n", sc, loadsFor(o.mode, sc))
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, &o)
	if errors.Is(err, context.Canceled) {
		log.Fatal("interrupted: servers stopped, namespaces and scratch directory removed")
	}
	if err != nil {
		log.Fatal(err)
	}
	if err := res.write(&o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// validate checks o and makes paths absolute.
func (o *options) validate() error {
	if o.names < 10 || o.largeNames < 10 {
		return fmt.Errorf("-names %d, -large-names %d: at least 10", o.names, o.largeNames)
	}
	if o.rounds < 1 {
		return fmt.Errorf("-rounds %d: at least 1", o.rounds)
	}
	if o.duration-2*o.warm < 300*time.Millisecond {
		return fmt.Errorf("-duration %v with -warm %v leaves no time to measure", o.duration, o.warm)
	}
	if o.rate <= 0 || o.saturation <= 0 || o.updateRate <= 0 || o.floodRate <= 0 {
		return errors.New("-rate, -saturation, -update-rate, -flood-rate: positive")
	}
	seen := map[string]bool{}
	for _, n := range o.serverList() {
		if _, ok := kindByName(n); !ok || seen[n] {
			return fmt.Errorf("-servers %q: each of %s at most once", o.servers, strings.Join(serverNames(), ", "))
		}
		seen[n] = true
	}
	seen = map[string]bool{}
	for _, n := range o.scenarioList() {
		if !slices.Contains(allScenarios, n) || seen[n] {
			return fmt.Errorf("-scenarios %q: each of %s at most once", o.scenarios, strings.Join(allScenarios, ", "))
		}
		seen[n] = true
	}
	if n := runtime.NumCPU(); o.serverCPU >= n || o.clientCPU >= n || o.serverCPU >= 0 && o.serverCPU == o.clientCPU {
		return fmt.Errorf("-server-cpu %d and -client-cpu %d: two different CPUs of %d (or -1)", o.serverCPU, o.clientCPU, n)
	}
	var err error
	for _, p := range []*string{&o.xdpnsBin, &o.outDir, &o.results} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o *options) serverList() []string { return splitList(o.servers) }

// scenarioList is -scenarios with the aliases (coverage,
// nxdomain-dnssec) expanded.
func (o *options) scenarioList() []string {
	var out []string
	for _, sc := range splitList(o.scenarios) {
		if al, ok := scenarioAliases[sc]; ok {
			out = append(out, al...)
		} else {
			out = append(out, sc)
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// lockFile takes an exclusive flock on path, waiting while another
// benchmark holds it, and returns how to release it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !said {
			logf("%s is held by another benchmark: waiting", path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func logf(format string, args ...any) { log.Printf(format, args...) }
