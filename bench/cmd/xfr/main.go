// Command xfr benchmarks xdpns as a secondary against Knot and NSD, side by
// side, behind one BIND primary on loopback:
//
//  1. transfer + load: a generated zone of about -records records (SOA, NS,
//     then names with one A and one AAAA each) is loaded into named; each
//     secondary in turn is started with nothing on disk and timed from its
//     start to its first correct answer for the zone's last name; its memory
//     is read once every secondary has loaded and gone idle;
//  2. propagation: -updates dynamic UPDATEs at the primary, one at a time,
//     each adding a name or replacing a name's A record; from the primary's
//     answer to the UPDATE, the three secondaries are polled at once, each
//     every -poll over its own UDP socket, until each answers with the new
//     data (or -timeout); median, p90 and max per secondary.
//
// The secondaries run pinned to one CPU (-secondary-cpu), named and this
// program to another (-primary-cpu), with taskset. Everything talks to
// 127.0.0.1 only, on ports picked at start; NOTIFY goes only to the
// secondaries' ports. Every wait is bounded; the scratch directory and every
// process started are removed and stopped at the end, on error and on
// Ctrl-C.
//
//	go run ./bench/cmd/xfr -records 1000000 -updates 50 -json out.jsonl -append bench/README.md
//
// See bench/README.md for figures measured with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const origin = "bench.test."

type options struct {
	records      int
	updates      int
	servers      string
	xdpnsBin     string
	xdpnsLog     string
	poll         time.Duration
	timeout      time.Duration
	gap          time.Duration
	loadPoll     time.Duration
	loadTimeout  time.Duration
	secondaryCPU int
	primaryCPU   int
	jsonPath     string
	appendPath   string
	keep         bool
	command      string // how the run was started, for the report
}

func defaults() options {
	return options{
		records:      1_000_000,
		updates:      50,
		servers:      "xdpns,knot,nsd",
		xdpnsLog:     "debug",
		poll:         500 * time.Microsecond,
		timeout:      5 * time.Second,
		gap:          100 * time.Millisecond,
		loadPoll:     5 * time.Millisecond,
		loadTimeout:  10 * time.Minute,
		secondaryCPU: 0,
		primaryCPU:   1,
	}
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench-xfr: ")
	o := defaults()
	flag.IntVar(&o.records, "records", o.records, "records in the zone, about: SOA, NS, glue, then records/2 names with one A and one AAAA each")
	flag.IntVar(&o.updates, "updates", o.updates, "dynamic updates at the primary, one at a time (at most 60000)")
	flag.StringVar(&o.servers, "servers", o.servers, "secondaries, in the order they are loaded (xdpns, knot, nsd)")
	flag.StringVar(&o.xdpnsBin, "xdpns-bin", "", "xdpns binary to run as 'xdpns serve -c'; empty: build ./cmd/xdpns into the scratch directory")
	flag.StringVar(&o.xdpnsLog, "xdpns-log", o.xdpnsLog, "xdpns log level (debug logs the journal appends, read for the report)")
	flag.DurationVar(&o.poll, "poll", o.poll, "interval between polls of one secondary while waiting for a change")
	flag.DurationVar(&o.timeout, "timeout", o.timeout, "give up on a secondary seeing a change after this long")
	flag.DurationVar(&o.gap, "gap", o.gap, "pause after every secondary saw a change, before the next update")
	flag.DurationVar(&o.loadPoll, "load-poll", o.loadPoll, "interval between polls while a secondary loads the zone")
	flag.DurationVar(&o.loadTimeout, "load-timeout", o.loadTimeout, "give up on a secondary loading the zone after this long")
	flag.IntVar(&o.secondaryCPU, "secondary-cpu", o.secondaryCPU, "CPU the secondaries are pinned to (-1: no pinning)")
	flag.IntVar(&o.primaryCPU, "primary-cpu", o.primaryCPU, "CPU named and this program are pinned to (-1: no pinning)")
	flag.StringVar(&o.jsonPath, "json", "", "write JSON lines (run, load, update, summary) to this file")
	flag.StringVar(&o.appendPath, "append", "", "append the Markdown report to this file (e.g. bench/README.md)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (zone, configurations, logs)")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments: %v", flag.Args())
	}
	o.command = strings.Join(append([]string{"go run ./bench/cmd/xfr"}, os.Args[1:]...), " ")

	// Ctrl-C or SIGTERM cancels the run; run then stops what it started
	// and removes its scratch directory before returning.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if errors.Is(err, context.Canceled) {
		log.Fatal("interrupted: servers stopped, scratch directory removed")
	}
	if err != nil {
		log.Fatal(err)
	}
	var out io.Writer = os.Stdout
	if o.appendPath != "" {
		f, err := os.OpenFile(o.appendPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	if err := markdown(out, o, res); err != nil {
		log.Fatal(err)
	}
}

// validate checks o and fills in what depends on the machine.
func (o *options) validate() error {
	if o.records < 10 {
		return fmt.Errorf("-records %d: at least 10", o.records)
	}
	if o.updates < 1 || o.updates > 60000 {
		return fmt.Errorf("-updates %d: 1 to 60000", o.updates)
	}
	if o.poll <= 0 || o.timeout <= 0 || o.loadPoll <= 0 || o.loadTimeout <= 0 || o.gap < 0 {
		return fmt.Errorf("-poll, -timeout, -load-poll and -load-timeout must be positive, -gap not negative")
	}
	seen := map[string]bool{}
	for _, n := range o.names() {
		if _, ok := secondaries[n]; !ok || seen[n] {
			return fmt.Errorf("-servers %q: each of xdpns, knot, nsd at most once", o.servers)
		}
		seen[n] = true
	}
	switch o.xdpnsLog {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-xdpns-log %q: debug, info, warn or error", o.xdpnsLog)
	}
	if o.xdpnsBin != "" {
		abs, err := filepath.Abs(o.xdpnsBin)
		if err != nil {
			return err
		}
		o.xdpnsBin = abs
	}
	return nil
}

func (o *options) names() []string { return strings.Split(o.servers, ",") }
