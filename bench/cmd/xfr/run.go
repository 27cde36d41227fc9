package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// result is what a run measured.
type result struct {
	Start     time.Time
	Machine   lab.Machine
	Primary   string // BIND's version
	Records   int    // in the zone at the primary (AXFR count)
	LastName  string // the name whose answer marks a secondary as loaded
	LoadAvg   string // /proc/loadavg at the start: other work on the machine
	Pinned    bool   // taskset was used
	Servers   []*serverResult
	Changes   []change
	UpdateRTT []time.Duration // of each UPDATE at the primary
}

// serverResult is one secondary's figures.
type serverResult struct {
	Name      string
	Version   string
	Load      time.Duration // start to the first correct answer for the last name
	Mem       lab.Memory    // after every secondary loaded and went idle
	Obs       []observation // one per change
	Serial    uint32        // served at the end
	Converged bool          // Serial is the primary's, every change seen
	XdpnsLog  *xdpnsLog     // for xdpns: timings from its log
}

// seen returns the latencies of the changes the server showed in time.
func (s *serverResult) seen() []time.Duration {
	var out []time.Duration
	for _, o := range s.Obs {
		if o.Seen {
			out = append(out, o.Latency)
		}
	}
	return out
}

// seenKind is seen for the changes that added a name (add) or replaced an
// existing name's record (!add); changes[i] is the change of Obs[i].
func (s *serverResult) seenKind(changes []change, add bool) []time.Duration {
	var out []time.Duration
	for i, o := range s.Obs {
		if o.Seen && changes[i].add == add {
			out = append(out, o.Latency)
		}
	}
	return out
}

// run does the whole benchmark and returns its figures. Whatever happens, it
// stops every process it started and removes its scratch directory (unless
// -keep) before returning.
func run(ctx context.Context, o options) (*result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	res := &result{Start: time.Now().UTC(), Machine: lab.ThisMachine(), Primary: lab.NamedVersion(), LoadAvg: loadAvg()}
	if _, err := exec.LookPath("taskset"); err == nil {
		ncpu := runtime.NumCPU()
		if o.secondaryCPU >= ncpu || o.primaryCPU >= ncpu {
			logf("only %d CPUs: not pinning", ncpu)
			o.secondaryCPU, o.primaryCPU = -1, -1
		}
		res.Pinned = o.secondaryCPU >= 0 || o.primaryCPU >= 0
	} else if o.secondaryCPU >= 0 || o.primaryCPU >= 0 {
		logf("taskset not found: not pinning")
		o.secondaryCPU, o.primaryCPU = -1, -1
	}

	dir, err := os.MkdirTemp("", "xdpns-bench-xfr-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		logf("scratch directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var procs []*lab.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()

	var jw *jsonWriter
	if o.jsonPath != "" {
		f, err := os.Create(o.jsonPath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		jw = &jsonWriter{w: f}
	}

	if o.xdpnsBin == "" && slices.Contains(o.names(), "xdpns") {
		logf("building xdpns from the tree")
		if o.xdpnsBin, err = buildXdpns(ctx, dir); err != nil {
			return nil, err
		}
	}

	// Ports first: named's also-notify lists the secondaries'.
	primaryPort, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	ports := map[string]int{}
	var notify []int
	for _, n := range o.names() {
		p, err := lab.FreePort()
		for err == nil && (p == primaryPort || slices.Contains(notify, p)) {
			p, err = lab.FreePort()
		}
		if err != nil {
			return nil, err
		}
		ports[n] = p
		notify = append(notify, p)
	}

	pdir := filepath.Join(dir, "primary")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, err
	}
	names := o.records / 2
	written, err := lab.WriteZone(filepath.Join(pdir, "zone.db"), origin, names)
	if err != nil {
		return nil, err
	}
	logf("zone %s: %d records written; starting named", origin, written)
	named, err := startPrimary(pdir, primaryPort, notify, o.primaryCPU)
	if err != nil {
		return nil, err
	}
	procs = append(procs, named)
	if err := named.WaitReady(ctx, origin, o.loadTimeout); err != nil {
		return nil, err
	}
	// The driver shares the primary's CPU, away from the secondaries'.
	if err := lab.PinSelf(o.primaryCPU); err != nil {
		return nil, err
	}
	count, serial0, err := countAXFR(ctx, named.Addr())
	if err != nil {
		return nil, fmt.Errorf("AXFR from named: %w", err)
	}
	if count != written {
		return nil, fmt.Errorf("named serves %d records, the zone file has %d", count, written)
	}
	res.Records = count
	lastName := lab.Host(names-1) + "." + origin
	res.LastName = lastName
	lastAddr := lab.HostA(names - 1)
	logf("named serves %d records, serial %d (pid %d, port %d)", count, serial0, named.Pid(), named.Port)
	if jw != nil {
		jw.put(map[string]any{"kind": "run", "time": res.Start, "command": o.command, "machine": res.Machine,
			"primary": res.Primary, "records": count, "updates": o.updates, "servers": o.names(),
			"loadavg": res.LoadAvg, "poll_us": o.poll.Microseconds(), "timeout_ms": o.timeout.Milliseconds(), "gap_ms": o.gap.Milliseconds(),
			"secondary_cpu": o.secondaryCPU, "primary_cpu": o.primaryCPU})
	}

	// 1. Transfer and load, one secondary at a time, each after the others
	// went idle.
	running := []*lab.Proc{named}
	byName := map[string]*lab.Proc{}
	for _, n := range o.names() {
		sdir := filepath.Join(dir, n)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			return nil, err
		}
		s := setup{dir: sdir, port: ports[n], primary: primaryPort, cpu: o.secondaryCPU, xdpnsBin: o.xdpnsBin, xdpnsLog: o.xdpnsLog}
		sr := &serverResult{Name: n, Version: secondaries[n].version(s)}
		res.Servers = append(res.Servers, sr)
		pl, err := newPoller(n, net4(ports[n]))
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		p, err := secondaries[n].start(s)
		if err != nil {
			pl.close()
			return nil, err
		}
		procs = append(procs, p)
		ob, err := pl.observe(ctx, t0, lastName, lastAddr, o.loadPoll, o.loadTimeout, p.Done())
		pl.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, tail(p.Output(), 20))
		}
		if !ob.Seen {
			return nil, fmt.Errorf("%s did not answer %s correctly within %v\n%s", n, lastName, o.loadTimeout, tail(p.Output(), 20))
		}
		sr.Load = ob.Latency
		logf("%-5s loaded the zone in %v (pid %d, port %d)", n, sr.Load.Round(time.Millisecond), p.Pid(), p.Port)
		running = append(running, p)
		byName[n] = p
		if !waitIdle(ctx, running, 3*time.Minute) {
			logf("servers still busy after 3 minutes; going on")
		}
	}
	for _, sr := range res.Servers {
		sr.Mem = lab.TreeMemory(byName[sr.Name].Pid())
		if jw != nil {
			jw.put(map[string]any{"kind": "load", "server": sr.Name, "version": sr.Version,
				"load_ms": ms(sr.Load), "rss_bytes": sr.Mem.RSS, "pss_bytes": sr.Mem.PSS})
		}
	}

	// 2. Propagation: one update at a time, all secondaries polled at once.
	pollers := make([]*poller, len(res.Servers))
	for i, sr := range res.Servers {
		if pollers[i], err = newPoller(sr.Name, byName[sr.Name].Addr()); err != nil {
			return nil, err
		}
		defer pollers[i].close()
	}
	for i := range o.updates {
		c := changeFor(i, names)
		rtt, err := update(ctx, named.Addr(), c)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		res.Changes = append(res.Changes, c)
		res.UpdateRTT = append(res.UpdateRTT, rtt)
		obs := make([]observation, len(res.Servers))
		errs := make([]error, len(res.Servers))
		var wg sync.WaitGroup
		// Rotate who starts first, so no secondary's poller is always ahead.
		for k := range res.Servers {
			j := (i + k) % len(res.Servers)
			wg.Add(1)
			go func() {
				defer wg.Done()
				obs[j], errs[j] = pollers[j].observe(ctx, t0, c.qname, c.want, o.poll, o.timeout, byName[res.Servers[j].Name].Done())
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		line := fmt.Sprintf("update %d/%d (%s):", i+1, o.updates, c)
		for j, sr := range res.Servers {
			if errs[j] != nil {
				return nil, fmt.Errorf("%w\n%s", errs[j], tail(byName[sr.Name].Output(), 20))
			}
			sr.Obs = append(sr.Obs, obs[j])
			if obs[j].Seen {
				line += fmt.Sprintf(" %s %v", sr.Name, obs[j].Latency.Round(10*time.Microsecond))
			} else {
				line += fmt.Sprintf(" %s not seen in %v", sr.Name, o.timeout)
			}
			if jw != nil {
				jw.put(map[string]any{"kind": "update", "i": i, "change": c.String(), "t0": t0, "update_rtt_us": rtt.Microseconds(),
					"server": sr.Name, "seen": obs[j].Seen, "latency_us": obs[j].Latency.Microseconds(), "polls": obs[j].Polls})
			}
		}
		logf("%s", line)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.gap):
		}
	}

	// Every secondary must end with the primary's serial.
	want, err := serial(named.Addr())
	if err != nil {
		return nil, fmt.Errorf("named: %w", err)
	}
	for _, sr := range res.Servers {
		got, err := waitSerial(ctx, byName[sr.Name].Addr(), want, 10*time.Second)
		sr.Serial = got
		sr.Converged = err == nil && len(sr.seen()) == o.updates
		if err != nil {
			logf("%s: serial %d, the primary's is %d: %v", sr.Name, got, want, err)
		}
		if sr.Name == "xdpns" {
			l := parseXdpnsLog(byName[sr.Name].Output())
			sr.XdpnsLog = &l
		}
		if jw != nil {
			lat := sr.seen()
			m := map[string]any{"kind": "summary", "server": sr.Name, "version": sr.Version, "load_ms": ms(sr.Load),
				"rss_bytes": sr.Mem.RSS, "pss_bytes": sr.Mem.PSS, "seen": len(lat), "updates": o.updates,
				"median_us": pct(lat, 50).Microseconds(), "p90_us": pct(lat, 90).Microseconds(), "max_us": pct(lat, 100).Microseconds(),
				"median_add_us": pct(sr.seenKind(res.Changes, true), 50).Microseconds(), "median_replace_us": pct(sr.seenKind(res.Changes, false), 50).Microseconds(),
				"serial": sr.Serial, "converged": sr.Converged}
			if l := sr.XdpnsLog; l != nil {
				m["ixfr_took_median_us"] = pct(l.IXFR, 50).Microseconds()
				m["ixfr_took_p90_us"] = pct(l.IXFR, 90).Microseconds()
				m["journal_took_median_us"] = pct(l.Journal, 50).Microseconds()
				m["axfr_took_ms"] = ms(l.AXFR)
			}
			jw.put(m)
		}
	}
	if jw != nil && jw.err != nil {
		return nil, fmt.Errorf("%s: %w", o.jsonPath, jw.err)
	}
	return res, nil
}

// jsonWriter writes one JSON object a line; the first error sticks.
type jsonWriter struct {
	w   io.Writer
	err error
}

func (j *jsonWriter) put(v any) {
	if j.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		_, err = j.w.Write(append(b, '\n'))
	}
	j.err = err
}

func net4(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

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
