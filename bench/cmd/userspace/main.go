// Command userspace benchmarks the xdpns userspace responder against NSD and
// Knot (plain UDP) on loopback with dnsperf: the same generated zone in each
// server, runs interleaved (xdpns, NSD, Knot, xdpns, ...) for a number of
// rounds, medians reported with the ratio to NSD. The server is pinned to
// one CPU and dnsperf to the other when taskset is there.
//
//	go run ./bench/cmd/userspace                      # 10k names, 3 rounds of 10 s
//	go run ./bench/cmd/userspace -xdpns-bin ./xdpns   # the real binary (xdpns serve)
//
// It sends only to 127.0.0.1, to ports it picked, and every run is bounded by
// -duration. See bench/README.md for figures measured with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

const origin = "bench.test."

type options struct {
	names     int
	rounds    int
	duration  time.Duration
	clients   int
	rate      int
	servers   string
	xdpnsBin  string
	serverCPU int
	clientCPU int
	keep      bool
	report    string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	var o options
	flag.IntVar(&o.names, "names", 10000, "names in the zone (one A and one AAAA each)")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one dnsperf run (whole seconds)")
	flag.IntVar(&o.clients, "clients", 4, "dnsperf -c: client sockets")
	flag.IntVar(&o.rate, "rate", 0, "dnsperf -Q: offered queries/s; 0 = as fast as dnsperf can")
	flag.StringVar(&o.servers, "servers", "xdpns,nsd,knot", "servers to run, in interleaving order")
	flag.StringVar(&o.xdpnsBin, "xdpns-bin", "", "xdpns binary to run as 'xdpns serve -c'; empty = this program's built-in server")
	flag.IntVar(&o.serverCPU, "server-cpu", 0, "CPU the server is pinned to (-1: no pinning)")
	flag.IntVar(&o.clientCPU, "client-cpu", 1, "CPU dnsperf is pinned to (-1: no pinning)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (zone, configs, logs)")
	flag.StringVar(&o.report, "report", "", "also write the report to this file")
	serveZone := flag.String("serve-xdpns", "", "internal: serve this zone file with the userspace server")
	serveOrigin := flag.String("origin", origin, "internal: origin for -serve-xdpns")
	serveListen := flag.String("listen", "127.0.0.1:0", "internal: address for -serve-xdpns")
	flag.Parse()

	if *serveZone != "" {
		if err := serveXdpns(*serveZone, *serveOrigin, *serveListen); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := bench(o); err != nil {
		log.Fatal(err)
	}
}

type starter func(setup) (*lab.Proc, error)

var starters = map[string]starter{"xdpns": startXdpns, "nsd": startNSD, "knot": startKnot}

func bench(o options) error {
	names := strings.Split(o.servers, ",")
	for _, n := range names {
		if starters[n] == nil {
			return fmt.Errorf("unknown server %q (xdpns, nsd, knot)", n)
		}
	}
	perf, err := exec.LookPath("dnsperf")
	if err != nil {
		return errors.New("dnsperf not found (Debian package dnsperf; run .ci/deps.sh as root)")
	}
	if o.xdpnsBin != "" {
		if o.xdpnsBin, err = filepath.Abs(o.xdpnsBin); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "xdpns-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		log.Printf("scratch directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	zoneFile := filepath.Join(dir, "bench.test.zone")
	nrr, err := lab.WriteZone(zoneFile, origin, o.names)
	if err != nil {
		return err
	}
	queries := filepath.Join(dir, "queries.txt")
	if err := writeQueries(queries, origin, o.names); err != nil {
		return err
	}

	s := setup{dir: dir, zoneFile: zoneFile, origin: origin, cpu: o.serverCPU, xdpnsBin: o.xdpnsBin}
	var procs []*lab.Proc
	stopAll := func() {
		for _, p := range procs {
			p.Stop()
		}
	}
	defer stopAll()
	// An interrupted benchmark must not leave servers behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		stopAll()
		os.Exit(1)
	}()

	for _, n := range names {
		p, err := starters[n](s)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		if err := p.WaitReady(context.Background(), origin, 60*time.Second); err != nil {
			return err
		}
		if err := sanity(p); err != nil {
			return err
		}
	}
	log.Printf("zone %s: %d names, %d records; servers ready: %s", origin, o.names, nrr, describe(procs))

	pc := perfConfig{bin: perf, queries: queries, duration: o.duration, clients: o.clients, rate: o.rate, cpu: o.clientCPU}
	runs := map[string][]run{}
	for round := 1; round <= o.rounds; round++ {
		for _, p := range procs {
			r, err := dnsperf(pc, p)
			if err != nil {
				return err
			}
			runs[p.Name] = append(runs[p.Name], r)
			log.Printf("round %d %-5s %9.0f q/s  lost %5.2f%%  avg latency %v  CPU server %3.0f%% dnsperf %3.0f%%",
				round, p.Name, r.QPS, lostPct(r), r.AvgLatency.Round(time.Microsecond), 100*r.CPU, 100*r.ClientCPU)
		}
	}

	var out io.Writer = os.Stdout
	if o.report != "" {
		f, err := os.Create(o.report)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	report(out, o, nrr, names, runs)
	return nil
}

// sanity checks that the server answers a name of the zone correctly, so a
// server that answers fast with the wrong thing is never measured.
func sanity(p *lab.Proc) error {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion("host0."+origin, dns.TypeA), p.Addr())
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "198.18.1.1") {
		return fmt.Errorf("%s answers host0 A wrongly:\n%v", p.Name, r)
	}
	return nil
}

func describe(ps []*lab.Proc) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s on %s (pid %d)", p.Name, p.Addr(), p.Cmd.Process.Pid))
	}
	return strings.Join(s, ", ")
}

func lostPct(r run) float64 {
	if r.Sent == 0 {
		return 0
	}
	return 100 * float64(r.Lost) / float64(r.Sent)
}

func pick(rs []run, f func(run) float64) []float64 {
	var out []float64
	for _, r := range rs {
		out = append(out, f(r))
	}
	return out
}

func report(w io.Writer, o options, nrr int, names []string, runs map[string][]run) {
	host, _ := os.Hostname()
	rate := "unlimited (saturation)"
	if o.rate > 0 {
		rate = fmt.Sprintf("%d q/s", o.rate)
	}
	fmt.Fprintf(w, "\nxdpns userspace benchmark, %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), host)
	fmt.Fprintf(w, "zone: %d names, %d records; queries: A and AAAA of every name, shuffled\n", o.names, nrr)
	fmt.Fprintf(w, "dnsperf -c %d, %v per run, offered rate %s; %d interleaved rounds; server on CPU %d, dnsperf on CPU %d\n\n",
		o.clients, o.duration, rate, o.rounds, o.serverCPU, o.clientCPU)
	nsd := lab.Median(pick(runs["nsd"], func(r run) float64 { return r.QPS }))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tmedian q/s\tmin\tmax\tvs NSD\tlost\tavg latency\tlatency sd\tserver CPU\tCPU/query\tdnsperf CPU\t")
	for _, n := range names {
		rs := runs[n]
		qps := pick(rs, func(r run) float64 { return r.QPS })
		ratio := "-"
		if nsd > 0 {
			ratio = fmt.Sprintf("%.2f", lab.Median(qps)/nsd)
		}
		lat := time.Duration(lab.Median(pick(rs, func(r run) float64 { return float64(r.AvgLatency) })))
		sd := time.Duration(lab.Median(pick(rs, func(r run) float64 { return float64(r.StdDev) })))
		perQuery := time.Duration(lab.Median(pick(rs, func(r run) float64 { return r.CPU / r.QPS * float64(time.Second) })))
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%s\t%.2f%%\t%v\t%v\t%.0f%%\t%v\t%.0f%%\t\n", n, lab.Median(qps), slices.Min(qps), slices.Max(qps), ratio,
			lab.Median(pick(rs, lostPct)), lat.Round(time.Microsecond), sd.Round(time.Microsecond),
			100*lab.Median(pick(rs, func(r run) float64 { return r.CPU })), perQuery.Round(10*time.Nanosecond),
			100*lab.Median(pick(rs, func(r run) float64 { return r.ClientCPU })))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nmedians over the rounds; lost = queries dnsperf gave up on (UDP drops under overload); server CPU = CPU time of the server's threads / wall time (schedstat); CPU/query = server CPU time per answered query; dnsperf CPU likewise (rusage): near 100% means the load generator, not the server, set the pace")
}
