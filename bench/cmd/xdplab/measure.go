package main

import (
	"context"
	"fmt"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// Phases of a round.
const (
	phaseSaturation = "saturation"
	phaseSweep      = "sweep"
	phaseFixed      = "fixed"
)

// runResult is one kxdpgun run against one server.
type runResult struct {
	Kind    string `json:"kind"` // "run"
	Server  string `json:"server"`
	Phase   string `json:"phase"`
	Round   int    `json:"round"`
	Offered int    `json:"offered_qps"` // kxdpgun -Q
	Batch   int    `json:"batch"`       // kxdpgun -b
	gunResult
	AnswerRatio float64 `json:"answer_ratio"` // replies / sent
	NoError     float64 `json:"noerror_ratio"`

	// CPU over the measurement window, as a fraction of one CPU.
	Window     float64 `json:"window_s"`
	ServerNAPI float64 `json:"server_napi"` // the server end's NAPI thread: the driver, XDP, the stack
	ServerProc float64 `json:"server_proc"` // the server's threads
	ServerCPU0 float64 `json:"server_cpu_busy"`
	ClientGun  float64 `json:"client_gun"`
	ClientNAPI float64 `json:"client_napi"`
	ClientCPU1 float64 `json:"client_cpu_busy"`
	Steal      float64 `json:"steal"` // both CPUs, taken by the hypervisor

	// xdpns with XDP: verdicts over the whole run.
	XDPAnswers uint64 `json:"xdp_answers,omitempty"`
	XDPPassed  uint64 `json:"xdp_passed,omitempty"`
	// QuietWait is how long the run waited for the machine to be idle
	// (other work on it: tests, builds) before it started.
	QuietWait float64 `json:"quiet_wait_s"`

	// XDPQPS is XDPAnswers over the sending time: what the server sent,
	// whether or not the client took it in.
	XDPQPS float64 `json:"xdp_answers_qps,omitempty"`
}

// ServerCPU is the CPU the server costs: its NAPI thread and its process.
func (r runResult) ServerCPU() float64 { return r.ServerNAPI + r.ServerProc }

// sample is one reading of every clock the figures come from.
type sample struct {
	at               time.Time
	cpu0, cpu1       lab.CPUTimes
	srvNAPI, cliNAPI time.Duration
	proc, gun        time.Duration
}

func takeSample(serverCPU, clientCPU int, srvNAPI, cliNAPI []int, proc, gun int) sample {
	s := sample{at: time.Now()}
	if serverCPU >= 0 {
		s.cpu0, _ = lab.ReadCPU(serverCPU)
	}
	if clientCPU >= 0 {
		s.cpu1, _ = lab.ReadCPU(clientCPU)
	}
	s.srvNAPI = lab.TasksRuntime(srvNAPI)
	s.cliNAPI = lab.TasksRuntime(cliNAPI)
	s.proc = lab.TreeRuntime(proc)
	s.gun = lab.TreeRuntime(gun)
	return s
}

// measure runs kxdpgun once against s at rate and reads the CPU of both
// sides over a window inside the sending time: from warm after kxdpgun
// starts (it loads its XDP program and opens its socket first) until
// warm before the sending ends.
func measure(ctx context.Context, o *options, s *server, phase string, round, rate, batch int) (runResult, error) {
	r := runResult{Kind: "run", Server: s.Name, Phase: phase, Round: round, Offered: rate, Batch: batch}
	quiet, err := waitQuiet(ctx, o)
	if err != nil {
		return r, err
	}
	r.QuietWait = quiet
	srvNAPI, cliNAPI, err := s.v.PinNAPI(o.serverCPU, o.clientCPU)
	if err != nil {
		return r, err
	}
	before, err := s.xdpStats()
	if err != nil {
		return r, err
	}
	// kxdpgun brings its own XDP program to the client end.
	if err := s.v.ClientPass(false); err != nil {
		return r, err
	}
	defer func() {
		if err := s.v.ClientPass(true); err != nil {
			logf("%s: %v", s.Name, err)
		}
	}()
	gun, err := startGun(gunConfig{queries: o.queries, duration: o.duration, rate: rate, batch: batch, cpu: o.clientCPU,
		dir: o.scratch, name: fmt.Sprintf("kxdpgun-%s-%s-%d", s.Name, phase, round)}, s.v)
	if err != nil {
		return r, err
	}
	defer gun.Stop()
	window := o.duration - 2*o.warm
	var a, b sample
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(o.warm):
	}
	a = takeSample(o.serverCPU, o.clientCPU, srvNAPI, cliNAPI, s.proc.Pid(), gun.Pid())
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-gun.Done():
		return r, fmt.Errorf("kxdpgun ended early:\n%s", tail(gun.Output(), 20))
	case <-time.After(window):
	}
	b = takeSample(o.serverCPU, o.clientCPU, srvNAPI, cliNAPI, s.proc.Pid(), gun.Pid())
	if err := waitGun(ctx, gun, o.duration+30*time.Second); err != nil {
		return r, err
	}
	if r.gunResult, err = parseGun(gun.Output()); err != nil {
		return r, err
	}
	if r.Sent > 0 {
		r.AnswerRatio = float64(r.Replies) / float64(r.Sent)
	}
	if r.Replies > 0 {
		r.NoError = float64(r.Rcodes["NOERROR"]) / float64(r.Replies)
	}

	wall := b.at.Sub(a.at)
	frac := func(d time.Duration) float64 { return float64(d) / float64(wall) }
	r.Window = wall.Seconds()
	r.ServerNAPI = frac(b.srvNAPI - a.srvNAPI)
	r.ServerProc = frac(b.proc - a.proc)
	r.ClientGun = frac(b.gun - a.gun)
	r.ClientNAPI = frac(b.cliNAPI - a.cliNAPI)
	if o.serverCPU >= 0 {
		r.ServerCPU0 = 1 - frac(b.cpu0.Idle-a.cpu0.Idle)
	}
	if o.clientCPU >= 0 {
		r.ClientCPU1 = 1 - frac(b.cpu1.Idle-a.cpu1.Idle)
	}
	r.Steal = frac(b.cpu0.Steal - a.cpu0.Steal + b.cpu1.Steal - a.cpu1.Steal)

	after, err := s.xdpStats()
	if err != nil {
		return r, err
	}
	if after != nil {
		d := after.Sub(before)
		r.XDPAnswers = d.Get("tx__answer") + d.Get("tx__truncated")
		for _, v := range d {
			r.XDPPassed += v
		}
		r.XDPPassed -= r.XDPAnswers
		r.XDPQPS = float64(r.XDPAnswers) / o.duration.Seconds()
	}
	return r, nil
}

// Before a run both CPUs must be this idle, over quietSample.
const (
	quietIdle   = 0.90
	quietSample = 500 * time.Millisecond
)

// waitQuiet waits until the server's and the client's CPUs are idle (at
// least quietIdle over quietSample), for at most o.quietMax, so that a run
// does not start while something else (a test run, a build) is busy on the
// machine. It returns how long it waited; past o.quietMax it goes on and
// says so.
func waitQuiet(ctx context.Context, o *options) (float64, error) {
	if o.quietMax <= 0 || o.serverCPU < 0 || o.clientCPU < 0 {
		return 0, nil
	}
	t0 := time.Now()
	said := false
	for {
		a0, _ := lab.ReadCPU(o.serverCPU)
		a1, _ := lab.ReadCPU(o.clientCPU)
		start := time.Now()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(quietSample):
		}
		wall := time.Since(start)
		b0, _ := lab.ReadCPU(o.serverCPU)
		b1, _ := lab.ReadCPU(o.clientCPU)
		idle0 := float64(b0.Idle-a0.Idle) / float64(wall)
		idle1 := float64(b1.Idle-a1.Idle) / float64(wall)
		if idle0 >= quietIdle && idle1 >= quietIdle {
			return time.Since(t0).Seconds(), nil
		}
		if time.Since(t0) > o.quietMax {
			logf("the machine is still busy after %v (CPU %d %.0f%% idle, CPU %d %.0f%% idle): running anyway", o.quietMax, o.serverCPU, 100*idle0, o.clientCPU, 100*idle1)
			return time.Since(t0).Seconds(), nil
		}
		if !said {
			logf("waiting for the machine to be idle (CPU %d %.0f%% idle, CPU %d %.0f%% idle: something else is running)", o.serverCPU, 100*idle0, o.clientCPU, 100*idle1)
			said = true
		}
	}
}
