package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/bench/internal/report"
	"github.com/xdpns/xdpns/loader"
)

// Generators and phases.
const (
	genKxdpgun = "kxdpgun"
	genDnsperf = "dnsperf"

	phaseSaturation = "saturation"
	phaseFixed      = "fixed"
)

// load is one kind of run in a scenario: a generator in a phase.
type load struct{ gen, phase string }

// loadsFor lists the runs of a scenario, in order. Quick mode keeps what
// fits in its five minutes: saturation everywhere, CPU at the fixed rate
// and dnsperf's latency where they say most.
func loadsFor(mode, sc string) []load {
	sat := load{genKxdpgun, phaseSaturation}
	fixed := load{genKxdpgun, phaseFixed}
	perf := load{genDnsperf, phaseFixed}
	if sc == "rrl-flood" { // its own generator, at its own rates
		return []load{{genFlood, phaseFixed}}
	}
	if mode == "smoke" { // the test: one short run of each generator
		if sc == "miss" {
			return []load{perf}
		}
		return []load{fixed}
	}
	if sc == "ipv6" {
		// kxdpgun 3.2 over IPv6 gets no answer from socket servers (the
		// server's replies come back to the server: Udp6NoPorts counts
		// them), so IPv6 is measured with dnsperf, at saturation too.
		if mode == "quick" {
			return []load{perf}
		}
		return []load{{genDnsperf, phaseSaturation}, perf}
	}
	if mode == "quick" {
		switch sc {
		case "hit":
			return []load{sat, fixed, perf}
		case "mixed":
			return []load{sat, perf}
		case "updates":
			return []load{fixed}
		default:
			return []load{sat}
		}
	}
	if sc == "updates" || slices.Contains(coverageScenarios, sc) {
		return []load{sat, fixed}
	}
	return []load{sat, fixed, perf}
}

// expectedRcodes are the rcodes an answer of a scenario may have
// (random-subdomain: NOERROR under the wildcard and for names of the
// zone, NXDOMAIN for the rest).
func expectedRcodes(sc string) []string {
	switch {
	case sc == "miss" || strings.HasPrefix(sc, "nxdomain-"):
		return []string{"NXDOMAIN"}
	case sc == "random-subdomain":
		return []string{"NOERROR", "NXDOMAIN"}
	}
	return []string{"NOERROR"}
}

func expectedRcode(sc string) string { return strings.Join(expectedRcodes(sc), " or ") }

// xdpAnswers counts the answers xdpns's XDP program sent (its stats map).
func xdpAnswers(d loader.Stats) float64 {
	return float64(d.Get("tx__answer") + d.Get("tx__truncated") + d.Get("tx__nxdomain") + d.Get("tx__wildcard") + d.Get("tx__referral"))
}

// sample is one reading of every clock the CPU figures come from.
type sample struct {
	at         time.Time
	cpu1       lab.CPUTimes
	srvNAPI    time.Duration
	proc       time.Duration
	clientBusy time.Duration
}

func takeSample(o *options, srvNAPI []int, proc int) sample {
	s := sample{at: time.Now()}
	if o.clientCPU >= 0 {
		s.cpu1, _ = lab.ReadCPU(o.clientCPU)
	}
	s.srvNAPI = lab.TasksRuntime(srvNAPI)
	s.proc = lab.TreeRuntime(proc)
	return s
}

// generator is a running kxdpgun or dnsperf.
type generator interface {
	Pid() int
	Done() <-chan struct{}
	Stop()
}

// measure runs one load against s and reads the CPU of both sides over a
// window inside the sending time (from o.warm after the generator starts
// until o.warm before it stops).
func measure(ctx context.Context, o *options, s *server, g *group, sc string, ld load, round int, ch *churn) (report.Run, error) {
	if ld.gen == genFlood {
		r, note, err := measureFlood(ctx, o, s, sc, ld, round)
		r.Note = note
		return r, err
	}
	r := report.Run{Kind: "run", Time: time.Now().UTC(), Scenario: sc, Server: s.Name, Generator: ld.gen,
		Phase: ld.phase, Round: round, Offered: o.rate, InXDP: -1}
	if ld.phase == phaseSaturation {
		r.Offered = o.saturation
	}
	if err := waitQuiet(ctx, o); err != nil {
		return r, err
	}
	srvNAPI, _, err := s.v.PinNAPI(o.serverCPU, o.clientCPU)
	if err != nil {
		return r, err
	}
	before, err := s.xdpStats()
	if err != nil {
		return r, err
	}
	if ch != nil {
		ch.start(ctx)
		defer ch.stop()
	}
	v6 := sc == "ipv6"
	name := fmt.Sprintf("%s-%s-%s-%s-%d", sc, s.Name, ld.gen, ld.phase, round)
	var gen generator
	var gunProc *lab.Proc
	var perf *perfRun
	if ld.gen == genKxdpgun {
		// kxdpgun brings its own XDP program to the client end.
		if err := s.v.ClientPass(false); err != nil {
			return r, err
		}
		defer func() {
			if err := s.v.ClientPass(true); err != nil {
				logf("%s: %v", s.Name, err)
			}
		}()
		batch := o.batch
		if ld.phase == phaseSaturation {
			batch = o.satBatch
		}
		gunProc, err = startGun(gunConfig{queries: g.gunFile[sc], duration: o.duration, rate: r.Offered, batch: batch,
			cpu: o.clientCPU, dir: o.scratch, name: name, v6: v6}, s.v)
		gen = gunProc
	} else {
		inFlight, clients := 100, 1
		if ld.phase == phaseSaturation {
			inFlight, clients = 1000, 8
		}
		perf, err = startPerf(perfConfig{queries: g.perfFile[sc], duration: o.duration, rate: r.Offered, inFlight: inFlight, clients: clients,
			do: sc == "mixed" || strings.HasPrefix(sc, "nxdomain-"), v6: v6, cpu: o.clientCPU, dir: o.scratch, name: name}, s.v)
		gen = perf
	}
	if err != nil {
		return r, err
	}
	defer gen.Stop()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(o.warm):
	}
	a := takeSample(o, srvNAPI, s.proc.Pid())
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-gen.Done():
		return r, fmt.Errorf("%s ended early", ld.gen)
	case <-time.After(o.duration - 2*o.warm):
	}
	b := takeSample(o, srvNAPI, s.proc.Pid())

	var res gunResult
	if gunProc != nil {
		if err := waitGun(ctx, gunProc, o.duration+30*time.Second); err != nil {
			return r, err
		}
		if res, err = parseGun(gunProc.Output()); err != nil {
			return r, err
		}
		r.Seconds = o.duration.Seconds()
	} else {
		select {
		case <-perf.Done():
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(o.duration + 30*time.Second):
			perf.Stop()
			return r, fmt.Errorf("dnsperf still running after %v: stopped", o.duration+30*time.Second)
		}
		if perf.err != nil {
			return r, perf.err
		}
		res = perf.res
		r.Seconds = float64(res.Sent) / max(res.SentQPS, 1)
		r.Latency = perf.hist.latency()
	}
	if ch != nil {
		ch.stop()
	}
	r.Sent, r.Answered = int64(res.Sent), int64(res.Replies)
	r.QPS = res.ReplyQPS
	if r.Seconds > 0 {
		r.QPS = float64(r.Answered) / r.Seconds
	}
	if r.Sent > 0 {
		r.AnswerRatio = float64(r.Answered) / float64(r.Sent)
	}
	if r.Answered > 0 {
		var ok uint64
		for _, rc := range expectedRcodes(sc) {
			ok += res.Rcodes[rc]
		}
		r.Correct = float64(ok) / float64(r.Answered)
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
		return r, err
	}
	if after != nil && r.Answered > 0 {
		d := after.Sub(before)
		r.InXDP = xdpAnswers(d) / float64(r.Answered)
	}
	return r, nil
}

// Before a run both CPUs must be o.quietIdle idle over quietSample.
const quietSample = 300 * time.Millisecond

// waitQuiet waits until the server's and the client's CPUs are idle, for
// at most o.quietMax, so that a run does not start while something else
// (a test run, a build) is busy on the machine.
func waitQuiet(ctx context.Context, o *options) error {
	if o.quietMax <= 0 || o.serverCPU < 0 || o.clientCPU < 0 {
		return nil
	}
	t0 := time.Now()
	said := false
	for {
		a0, _ := lab.ReadCPU(o.serverCPU)
		a1, _ := lab.ReadCPU(o.clientCPU)
		start := time.Now()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(quietSample):
		}
		wall := time.Since(start)
		b0, _ := lab.ReadCPU(o.serverCPU)
		b1, _ := lab.ReadCPU(o.clientCPU)
		idle0 := float64(b0.Idle-a0.Idle) / float64(wall)
		idle1 := float64(b1.Idle-a1.Idle) / float64(wall)
		if idle0 >= o.quietIdle && idle1 >= o.quietIdle {
			return nil
		}
		if time.Since(t0) > o.quietMax {
			logf("the machine is still busy after %v (CPU %d %.0f%% idle, CPU %d %.0f%% idle): running anyway", o.quietMax, o.serverCPU, 100*idle0, o.clientCPU, 100*idle1)
			return nil
		}
		if !said {
			logf("waiting for the machine to be idle (CPU %d %.0f%% idle, CPU %d %.0f%% idle)", o.serverCPU, 100*idle0, o.clientCPU, 100*idle1)
			said = true
		}
	}
}

func (l load) String() string { return l.gen + " " + l.phase }
