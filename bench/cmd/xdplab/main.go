// Command xdplab benchmarks xdpns's XDP fast path against Knot DNS in XDP
// mode on the veth lab of DESIGN.md, side by side in one run:
//
//   - xdpns-native: xdpns with XDP in the veth driver;
//   - xdpns-generic: xdpns with generic XDP;
//   - xdpns-user: xdpns without XDP (its Go UDP server);
//   - knot-xdp: knotd with `xdp: listen: IF@53` (AF_XDP).
//
// Each server gets a lab of its own: a server and a client network
// namespace joined by a veth pair (198.18.0.0/15, 2001:2::/48, no default
// route), threaded NAPI on both ends, GRO on, TSO off. All serve the same
// generated zone (-names names, one A and one AAAA each) and are checked
// with kdig before anything is measured. Load comes from kxdpgun in the
// client namespace (its own XDP program on the client end), reading A and
// AAAA of every name in a fixed shuffled order. The server, its
// process and its end's NAPI thread, runs on -server-cpu; kxdpgun and the
// client end's NAPI thread on -client-cpu.
//
// Each round runs every server at saturation (-saturation q/s offered),
// then at each -sweep rate (a server that collapses under overload shows
// its best there), then at -rate (A B C D A B C D ...); the report gives
// medians over -rounds rounds: answered q/s, the answer ratio, each
// server's best, and the CPU at the fixed rate, split into the server
// end's NAPI thread (where XDP runs) and the server's process, from
// per-thread run times (/proc/PID/task/*/schedstat) and the CPU's idle
// time, not tick samples. Before each run it waits (-quiet) until both
// CPUs are idle, so that other work on the machine does not land in it.
//
// xdpns runs as `xdpns serve` (the binary from -xdpns-bin, else built from
// the tree) with an xdp section. A build whose serve does not attach XDP
// yet is replaced by this program's serve-inproc mode, which wires the
// loader and the Go server in one process the same way (-attach).
//
//	go run ./bench/cmd/xdplab -json bench/out/xdplab.jsonl
//
// Everything it sends stays inside the namespaces it creates; every load
// run is bounded by -duration. On the way out, also on error and Ctrl-C,
// it stops every process it started (by pid) and deletes the namespaces
// (and with them the interfaces and XDP programs). A measuring run holds
// an exclusive lock on -lock for its whole length, waiting for it when
// another benchmark holds it. See bench/README.md for figures.
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
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

const origin = "bench.test."

type options struct {
	names      int
	rounds     int
	duration   time.Duration
	warm       time.Duration
	rate       int
	saturation int
	batch      int
	satBatch   int
	sweep      string
	edns       bool
	servers    string
	xdpnsBin   string
	attach     string
	serverCPU  int
	clientCPU  int
	lock       string
	quietMax   time.Duration
	jsonPath   string
	reportPath string
	keep       bool
	command    string // how the run was started, for the report

	scratch string // set by run
	queries string // set by run
}

func defaults() options {
	return options{
		names:      10000,
		rounds:     3,
		duration:   10 * time.Second,
		warm:       1500 * time.Millisecond,
		rate:       100000,
		saturation: 10_000_000,
		batch:      10,
		satBatch:   64,
		sweep:      "300000,450000,600000",
		edns:       true,
		servers:    "xdpns-native,xdpns-generic,xdpns-user,knot-xdp",
		attach:     "auto",
		serverCPU:  0,
		clientCPU:  1,
		lock:       "/tmp/xdpns-bench.lock",
		quietMax:   5 * time.Minute,
	}
}

func main() {
	if runInproc() {
		return
	}
	log.SetFlags(0)
	log.SetPrefix("xdplab: ")
	o := defaults()
	flag.IntVar(&o.names, "names", o.names, "names in the zone (one A and one AAAA each)")
	flag.IntVar(&o.rounds, "rounds", o.rounds, "interleaved rounds; medians are over them")
	flag.DurationVar(&o.duration, "duration", o.duration, "kxdpgun -t: sending time of one run")
	flag.DurationVar(&o.warm, "warm", o.warm, "CPU is measured from this long after kxdpgun starts until this long before it stops sending")
	flag.IntVar(&o.rate, "rate", o.rate, "offered q/s of the fixed-rate runs, where CPU is compared; 0: none")
	flag.IntVar(&o.saturation, "saturation", o.saturation, "offered q/s of the saturation runs (kxdpgun -Q: as fast as it can when above that); 0: none")
	flag.StringVar(&o.sweep, "sweep", o.sweep, "offered q/s of runs between the fixed rate and saturation, comma-separated (batch as at saturation): a server that collapses under overload shows its best here; empty: none")
	flag.IntVar(&o.batch, "batch", o.batch, "kxdpgun -b of the fixed-rate runs: queries sent at once (its default, 10: a smoother load)")
	flag.IntVar(&o.satBatch, "saturation-batch", o.satBatch, "kxdpgun -b of the saturation runs (larger batches cost the client less per query, so the server, not kxdpgun, sets the pace)")
	flag.BoolVar(&o.edns, "edns", o.edns, "queries carry EDNS (payload 1232, no DO), as resolvers send them")
	flag.StringVar(&o.servers, "servers", o.servers, "servers, in interleaving order: xdpns-native, xdpns-generic, xdpns-user, knot-xdp")
	flag.StringVar(&o.xdpnsBin, "xdpns-bin", "", "xdpns binary to run as 'xdpns serve -c'; empty: build ./cmd/xdpns into the scratch directory")
	flag.StringVar(&o.attach, "attach", o.attach, "who attaches xdpns's XDP: daemon (xdpns serve's xdp section, else fail), harness (serve-inproc), auto (daemon, else harness)")
	flag.IntVar(&o.serverCPU, "server-cpu", o.serverCPU, "CPU of the server and its NAPI thread (-1: no pinning)")
	flag.IntVar(&o.clientCPU, "client-cpu", o.clientCPU, "CPU of kxdpgun, its NAPI thread and this program (-1: no pinning)")
	flag.StringVar(&o.lock, "lock", o.lock, "file locked (flock) for the whole run, so benchmarks on this machine take turns; empty: none")
	flag.DurationVar(&o.quietMax, "quiet", o.quietMax, "before each run, wait up to this long for both CPUs to be 90% idle (other work on the machine); 0: do not wait")
	flag.StringVar(&o.jsonPath, "json", "", "write JSON lines (machine, run, summary) to this file")
	flag.StringVar(&o.reportPath, "report", "", "also write the Markdown report to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (zone, configurations, logs)")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments: %v", flag.Args())
	}
	o.command = strings.Join(append([]string{"go run ./bench/cmd/xdplab"}, os.Args[1:]...), " ")

	// Ctrl-C or SIGTERM cancels the run; run then stops what it started,
	// deletes its namespaces and scratch directory before returning.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, &o)
	if errors.Is(err, context.Canceled) {
		log.Fatal("interrupted: servers stopped, namespaces and scratch directory removed")
	}
	if err != nil {
		log.Fatal(err)
	}
	var out io.Writer = os.Stdout
	if o.reportPath != "" {
		f, err := os.Create(o.reportPath)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	markdown(out, &o, res)
}

// validate checks o and fills in what depends on the machine.
func (o *options) validate() error {
	if o.names < 10 {
		return fmt.Errorf("-names %d: at least 10", o.names)
	}
	if o.rounds < 1 {
		return fmt.Errorf("-rounds %d: at least 1", o.rounds)
	}
	if o.duration-2*o.warm < 500*time.Millisecond {
		return fmt.Errorf("-duration %v with -warm %v leaves no time to measure", o.duration, o.warm)
	}
	sweep, err := o.sweepRates()
	if err != nil {
		return err
	}
	if o.rate < 0 || o.saturation < 0 || o.rate == 0 && o.saturation == 0 && len(sweep) == 0 {
		return errors.New("-rate and -saturation: not negative; -rate, -saturation and -sweep not all off")
	}
	if o.batch < 1 || o.satBatch < 1 {
		return fmt.Errorf("-batch %d, -saturation-batch %d: at least 1", o.batch, o.satBatch)
	}
	switch o.attach {
	case "auto", "daemon", "harness":
	default:
		return fmt.Errorf("-attach %q: auto, daemon or harness", o.attach)
	}
	seen := map[string]bool{}
	for _, n := range o.serverNames() {
		if _, ok := kindByName(n); !ok || seen[n] {
			return fmt.Errorf("-servers %q: each of xdpns-native, xdpns-generic, xdpns-user, knot-xdp at most once", o.servers)
		}
		seen[n] = true
	}
	if n := runtime.NumCPU(); o.serverCPU >= n || o.clientCPU >= n || o.serverCPU >= 0 && o.serverCPU == o.clientCPU {
		return fmt.Errorf("-server-cpu %d and -client-cpu %d: two different CPUs of %d (or -1)", o.serverCPU, o.clientCPU, n)
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

func (o *options) serverNames() []string { return strings.Split(o.servers, ",") }

// sweepRates parses -sweep.
func (o *options) sweepRates() ([]int, error) {
	var out []int
	for _, f := range strings.Split(o.sweep, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-sweep %q: positive rates, comma-separated", o.sweep)
		}
		out = append(out, n)
	}
	return out, nil
}

// result is a whole run.
type result struct {
	Start   time.Time     `json:"start"`
	Machine lab.Machine   `json:"machine"`
	LoadAvg string        `json:"load_avg"` // at the start
	Waited  time.Duration `json:"lock_wait_ns"`
	Servers []*server     `json:"-"`
	Runs    []runResult   `json:"-"`
	Gun     string        `json:"kxdpgun"`
}

// run does the whole benchmark. Whatever happens, it stops every process
// it started and deletes its namespaces and scratch directory (unless
// -keep) before returning.
func run(ctx context.Context, o *options) (*result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	for _, b := range []string{"kxdpgun", "kdig", "knotd", "nsenter", "taskset", "ip"} {
		if _, err := lab.LookSbin(b); err != nil {
			return nil, err
		}
	}
	res := &result{Machine: lab.ThisMachine()}
	if o.lock != "" {
		unlock, waited, err := lockFile(ctx, o.lock)
		if err != nil {
			return nil, err
		}
		defer unlock()
		res.Waited = waited
	}
	res.Start, res.LoadAvg = time.Now().UTC(), loadAvg()

	dir, err := os.MkdirTemp("", "xdpns-xdplab-")
	if err != nil {
		return nil, err
	}
	o.scratch = dir
	if o.keep {
		logf("scratch directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.xdpnsBin == "" {
		logf("building xdpns from the tree")
		if o.xdpnsBin, err = buildXdpns(ctx, dir); err != nil {
			return nil, err
		}
	}
	zoneFile := filepath.Join(dir, "bench.test.zone")
	if _, err := lab.WriteZone(zoneFile, origin, o.names); err != nil {
		return nil, err
	}
	o.queries = filepath.Join(dir, "queries.txt")
	if err := writeQueries(o.queries, origin, o.names, o.edns); err != nil {
		return nil, err
	}
	if gunBin, err := lab.LookSbin("kxdpgun"); err == nil {
		res.Gun = firstLine(exec.Command(gunBin, "-V"))
	}
	// This program samples and waits on the client's CPU, never the
	// server's.
	if err := lab.PinSelf(o.clientCPU); err != nil {
		return nil, err
	}

	defer func() {
		for i := len(res.Servers) - 1; i >= 0; i-- {
			if err := res.Servers[i].stop(); err != nil {
				logf("%v", err)
			}
		}
	}()
	s := setup{dir: dir, zoneFile: zoneFile, origin: origin, cpu: o.serverCPU, xdpnsBin: o.xdpnsBin, attach: o.attach}
	for i, n := range o.serverNames() {
		k, _ := kindByName(n)
		srv, err := startServer(ctx, k, i, s)
		if err != nil {
			return nil, err
		}
		res.Servers = append(res.Servers, srv)
		if err := check(ctx, srv, o.names); err != nil {
			return nil, err
		}
		how := ""
		if srv.AttachedBy != "" {
			how = fmt.Sprintf(", XDP %s attached by %s", srv.Mode, srv.AttachedBy)
		}
		logf("%s ready and answering correctly (%s, pid %d%s)", srv.Name, srv.Version, srv.proc.Pid(), how)
	}

	var jw *jsonWriter
	if o.jsonPath != "" {
		f, err := os.Create(o.jsonPath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		jw = &jsonWriter{w: f}
		jw.put(struct {
			Kind string `json:"kind"`
			*result
			Command string `json:"command"`
		}{"machine", res, o.command})
	}

	type phase struct {
		name        string
		rate, batch int
	}
	var phases []phase
	if o.saturation > 0 {
		phases = append(phases, phase{phaseSaturation, o.saturation, o.satBatch})
	}
	sweep, _ := o.sweepRates()
	for _, rate := range sweep {
		phases = append(phases, phase{phaseSweep, rate, o.satBatch})
	}
	if o.rate > 0 {
		phases = append(phases, phase{phaseFixed, o.rate, o.batch})
	}
	total := o.rounds * len(phases) * len(res.Servers)
	for round := 1; round <= o.rounds; round++ {
		for _, ph := range phases {
			for _, srv := range res.Servers {
				r, err := measure(ctx, o, srv, ph.name, round, ph.rate, ph.batch)
				if err != nil {
					return nil, fmt.Errorf("%s, %s, round %d: %w", srv.Name, ph.name, round, err)
				}
				res.Runs = append(res.Runs, r)
				if jw != nil {
					jw.put(r)
				}
				logf("[%d/%d] round %d %-10s %-13s offered %8d  sent %8.0f/s  answered %8.0f/s (%5.1f%%)  server CPU %5.1f%% (NAPI %5.1f%% + process %5.1f%%; CPU %d busy %5.1f%%)  client CPU %d busy %5.1f%%%s",
					len(res.Runs), total, round, ph.name, srv.Name, ph.rate, r.SentQPS, r.ReplyQPS, 100*r.AnswerRatio,
					100*r.ServerCPU(), 100*r.ServerNAPI, 100*r.ServerProc, o.serverCPU, 100*r.ServerCPU0, o.clientCPU, 100*r.ClientCPU1, xdpShare(r))
				if r.NoError < 0.999 && r.Replies > 0 {
					return nil, fmt.Errorf("%s: answers other than NOERROR: %v", srv.Name, r.Rcodes)
				}
			}
		}
	}
	// Still answering correctly after all that.
	for _, srv := range res.Servers {
		if err := check(ctx, srv, o.names); err != nil {
			return nil, fmt.Errorf("after the runs: %w", err)
		}
	}
	if jw != nil {
		sums := summarize(o, res)
		for _, sm := range sums {
			jw.put(sm)
		}
		for _, p := range peaks(res, sums) {
			jw.put(p)
		}
		if jw.err != nil {
			return nil, fmt.Errorf("%s: %w", o.jsonPath, jw.err)
		}
	}
	return res, nil
}

func xdpShare(r runResult) string {
	if r.XDPAnswers == 0 && r.XDPPassed == 0 {
		return ""
	}
	return fmt.Sprintf("  in XDP %.1f%%", 100*float64(r.XDPAnswers)/float64(max(r.Replies, 1)))
}

// lockFile takes an exclusive flock on path, waiting while another
// benchmark holds it, and returns how to release it and how long it
// waited.
func lockFile(ctx context.Context, path string) (func(), time.Duration, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, 0, fmt.Errorf("lock %s: %w", path, err)
		}
		logf("%s is held by another benchmark: waiting", path)
		for {
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, 0, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		logf("got %s after %v", path, time.Since(t0).Round(time.Second))
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, time.Since(t0), nil
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func logf(format string, args ...any) {
	log.Printf(format, args...)
}
