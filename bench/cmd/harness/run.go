package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/bench/internal/report"
)

// result is a whole benchmark.
type result struct {
	meta    report.Meta
	runs    []report.Run
	setups  []report.ServerSetup
	jsonl   *report.JSONL
	jsonlTo string
}

// link describes the lab for the report.
const link = "veth pair per server (server and client network namespaces), threaded NAPI on both ends, GRO on, TSO off; " +
	"server and its NAPI thread on one CPU, generator and its NAPI thread on the other"

// loadNote says where the servers loaded their zones.
func loadNote(o *options) string {
	if o.pinLoad || o.serverCPU < 0 {
		return ""
	}
	return "; a server of the large zone loads it on every CPU, and is pinned to its one once it answers"
}

// runSecs estimates how long one load run takes: its sending time, the
// idle wait before it, kxdpgun's second of listening for late replies.
func runSecs(o *options, ld load) float64 {
	s := o.duration.Seconds() + 0.5
	if ld.gen == genKxdpgun {
		s += 1.2
	}
	return s
}

// plan counts the load runs and estimates the whole benchmark's time.
func plan(o *options, groups []*group) (runs int, est time.Duration) {
	secs := 20.0 // build, lock, machine
	nsrv := len(o.serverList())
	for _, g := range groups {
		names := o.names
		if g.name == "large" {
			names = o.largeNames
		}
		// Zone, start and check of every server: xdpns about 3 s per
		// 100k records (it compiles every answer), the others about
		// 0.3 s; at least 1 s each.
		for _, n := range o.serverList() {
			per := 0.3
			if strings.HasPrefix(n, "xdpns") {
				per = 3
			}
			secs += max(1, per*float64(2*names)/100000)
		}
		if g.name == "signed" || strings.HasPrefix(g.name, "nsec") {
			secs += 2 + float64(names)/10000
		}
		for _, sc := range g.scenarios {
			for _, ld := range o.loads(sc) {
				runs += o.rounds * nsrv
				secs += float64(o.rounds*nsrv) * runSecs(o, ld)
				if sc == "updates" {
					secs += float64(o.rounds*nsrv) * 0.5
				}
			}
		}
	}
	return runs, time.Duration(secs * float64(time.Second))
}

// run does the whole benchmark. Whatever happens, it stops every process
// it started and deletes its namespaces and scratch directory (unless
// -keep) before returning.
func run(ctx context.Context, o *options) (*result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	for _, b := range []string{"kxdpgun", "knotd", "nsd", "named", "dnsperf", "ldns-keygen", "ldns-signzone", "nsenter", "taskset", "ip"} {
		if _, err := lab.LookSbin(b); err != nil {
			return nil, err
		}
	}
	var noAFXDP string
	if why := afXDPRefused(); why != "" {
		noAFXDP = o.withoutAFXDP(why)
		logf("%s", noAFXDP)
	}
	groups := planGroups(o.scenarioList())
	total, est := plan(o, groups)
	logf("%s mode: %d scenarios (%s), %d servers, %d rounds, %d load runs of %v: about %v",
		o.mode, len(o.scenarioList()), o.scenarios, len(o.serverList()), o.rounds, total, o.duration, est.Round(time.Second))

	if o.lock != "" {
		unlock, err := lockFile(ctx, o.lock)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	started := time.Now()
	res := &result{meta: report.Meta{Command: o.command, Mode: o.mode, Started: started.UTC(),
		Machine: lab.ThisMachine().String(), Link: link + loadNote(o)}}
	res.meta.Notes = append(res.meta.Notes, "generators: "+generatorVersions()+
		"; kxdpgun figures: saturation and fixed-rate runs, dnsperf figures: latency (and ipv6)")
	if noAFXDP != "" {
		res.meta.Notes = append(res.meta.Notes, noAFXDP)
	}

	dir, err := os.MkdirTemp("", "xdpns-harness-")
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
		logf("building xdpns from a clean worktree of HEAD")
		if o.xdpnsBin, err = buildXdpns(ctx, dir); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return nil, err
	}
	res.jsonlTo = filepath.Join(o.outDir, "runs.jsonl")
	if res.jsonl, err = report.OpenJSONL(res.jsonlTo); err != nil {
		return nil, err
	}
	defer res.jsonl.Close()
	if err := res.jsonl.Meta(res.meta); err != nil {
		return nil, err
	}
	// This program samples and waits on the client's CPU, never the
	// server's.
	if err := lab.PinSelf(o.clientCPU); err != nil {
		return nil, err
	}

	done := 0
	for _, g := range groups {
		if err := runGroup(ctx, o, g, res, &done, total, started, est); err != nil {
			return nil, err
		}
	}
	res.meta.Duration = time.Since(started)
	if err := res.jsonl.Meta(res.meta); err != nil {
		return nil, err
	}
	return res, nil
}

// runGroup prepares g's zone, starts and checks every server on it, runs
// g's scenarios (rounds, loads, servers interleaved) and stops the
// servers.
func runGroup(ctx context.Context, o *options, g *group, res *result, done *int, total int, started time.Time, est time.Duration) error {
	t0 := time.Now()
	if err := g.prepare(ctx, o, o.scratch); err != nil {
		return fmt.Errorf("%s zone: %w", g.name, err)
	}
	logf("%s: zone of %d names, %d records ready in %v", g.name, g.names, g.records, time.Since(t0).Round(time.Millisecond))
	var servers []*server
	defer func() {
		for i := len(servers) - 1; i >= 0; i-- {
			if err := servers[i].stop(); err != nil {
				logf("%v", err)
			}
		}
	}()
	for i, n := range o.serverList() {
		k, _ := kindByName(n)
		srv, err := startServer(ctx, k, i, o, g)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			servers = append(servers, srv)
			// A secondary, or xdpns filling its maps, may need a moment
			// after the SOA first answers.
			for try := 0; ; try++ {
				if err = check(ctx, srv, g); err == nil || try == 10 || ctx.Err() != nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			srv.ok = err == nil
		}
		setup := report.ServerSetup{Kind: "setup", Server: n, Version: versionOf(k, o), Names: g.names, Records: g.records}
		if srv != nil {
			setup.Version, setup.LoadSecs, setup.RSSBytes, setup.MapBytes = srv.Version, srv.setup.load.Seconds(), srv.setup.rss, srv.setup.mapBytes
			setup.Checked = srv.ok
		}
		if err != nil {
			setup.Error = err.Error()
			logf("%s on the %s zone: %v: its runs are left out", n, g.name, err)
		} else {
			logf("%s ready in %.2f s and answering correctly (%s, RSS %d MiB%s)", n, setup.LoadSecs, setup.Version, setup.RSSBytes>>20, mapNote(setup.MapBytes))
		}
		for _, sc := range g.scenarios {
			setup.Scenario = sc
			res.setups = append(res.setups, setup)
			if err := res.jsonl.Setup(setup); err != nil {
				return err
			}
		}
	}
	var churns map[*server]*churn
	if g.secondary {
		churns = map[*server]*churn{}
		for _, s := range servers {
			churns[s] = &churn{s: s, rate: o.updateRate, names: g.names}
		}
	}
	for _, sc := range g.scenarios {
		loads := o.loads(sc)
		for round := 1; round <= o.rounds; round++ {
			for _, ld := range loads {
				for _, s := range servers {
					*done++
					if !s.ok {
						continue
					}
					elapsed := time.Since(started)
					eta := est - elapsed
					if *done > 1 { // the runs so far, setup included, at the same pace
						eta = time.Duration(float64(elapsed) / float64(*done-1) * float64(total-*done+1))
					}
					fmt.Fprintf(os.Stderr, "harness: [%d/%d] %s %s %s %s round %d/%d  elapsed %v, about %v left\n",
						*done, total, sc, s.Name, ld.gen, ld.phase, round, o.rounds, elapsed.Round(time.Second), eta.Round(time.Second))
					resume := freezeOthers(servers, s)
					r, err := measure(ctx, o, s, g, sc, ld, round, churns[s])
					resume()
					if err != nil {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						// One failed run (a generator that ended early) does
						// not end an hour-long benchmark: it is noted and left
						// out of the medians.
						note := fmt.Sprintf("failed run: %s %s %s %s round %d: %v", sc, s.Name, ld.gen, ld.phase, round, err)
						res.meta.Notes = append(res.meta.Notes, note)
						logf("%s", note)
						continue
					}
					if ch := churns[s]; ch != nil {
						u := ch.settle(ctx, 10*time.Second)
						note := fmt.Sprintf("updates: %s round %d (%s %s): %d updates at %d/s accepted by the primary, %d failed; the secondary moved %d serials, in sync %v (%v after the run)",
							s.Name, round, ld.gen, ld.phase, u.Sent, o.updateRate, u.Failed, u.Applied, u.InSync, u.Lag.Round(time.Millisecond))
						res.meta.Notes = append(res.meta.Notes, note)
						logf("%s", note)
					}
					if r.Note != "" {
						res.meta.Notes = append(res.meta.Notes, r.Note)
						logf("%s", r.Note)
					}
					res.runs = append(res.runs, r)
					if err := res.jsonl.Run(r); err != nil {
						return err
					}
					logf("  answered %.0f/s of %.0f sent/s (%.1f%%), %.1f%% %s; server CPU %.1f%% (NAPI %.1f%% + process %.1f%%), %.2f CPU-s per million%s%s",
						r.QPS, float64(r.Sent)/max(r.Seconds, 1e-9), 100*r.AnswerRatio, 100*r.Correct, expectedRcode(sc),
						100*r.ServerCPU, 100*r.ServerNAPI, 100*r.ServerProc, r.CPUPerMillion, xdpNote(r), latNote(r))
					if r.Answered > 0 && r.Correct < 0.99 {
						logf("  %s: only %.1f%% of the answers were %s", s.Name, 100*r.Correct, expectedRcode(sc))
					}
				}
			}
		}
	}
	// Still answering correctly after all that (not the secondaries: the
	// updates changed their zone).
	if !g.secondary {
		for _, s := range servers {
			if s.ok {
				if err := check(ctx, s, g); err != nil {
					return fmt.Errorf("after the runs: %w", err)
				}
			}
		}
	}
	return nil
}

func versionOf(k kind, o *options) string {
	switch k.Name {
	case "knot-xdp", "knot-udp":
		return lab.KnotVersion()
	case "nsd":
		return lab.NSDVersion()
	case "bind":
		return lab.NamedVersion()
	}
	return xdpnsVersion(o.xdpnsBin)
}

func mapNote(b int64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf(", BPF maps %d MiB", b>>20)
}

func xdpNote(r report.Run) string {
	if r.InXDP < 0 {
		return ""
	}
	return fmt.Sprintf(", %.1f%% in XDP", 100*r.InXDP)
}

func latNote(r report.Run) string {
	if r.Latency == nil {
		return ""
	}
	return fmt.Sprintf(", latency p50 %.0f µs p99 %.0f µs", r.Latency.P50, r.Latency.P99)
}

// freezeOthers stops (SIGSTOP) the process trees of every server but
// keep while keep is measured, and returns how to continue them: they all
// share the server CPU, and one still busy after its own run (a garbage
// collection after a large zone, a backlog) would count against keep.
func freezeOthers(all []*server, keep *server) (resume func()) {
	var pids []int
	for _, s := range all {
		if s != keep && s.proc != nil && s.proc.Exited() == nil {
			pids = append(pids, lab.Tree(s.proc.Pid())...)
		}
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	return func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
}

// generatorVersions names the load generators' versions.
func generatorVersions() string {
	gun := "kxdpgun ?"
	if bin, err := lab.LookSbin("kxdpgun"); err == nil {
		v := lab.FirstLine(exec.Command(bin, "-V")) // kxdpgun (Knot DNS), version 3.2.6
		if _, after, ok := strings.Cut(v, "version "); ok {
			gun = "kxdpgun " + after
		}
	}
	perf := "dnsperf ?"
	out, _ := exec.Command("dnsperf", "-h").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version "); ok {
			perf = "dnsperf " + v
		}
	}
	return gun + ", " + perf
}
