package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// run is one dnsperf run against one server.
type run struct {
	QPS        float64 // completed queries per second
	Sent, Lost int
	AvgLatency time.Duration
	MaxLatency time.Duration
	StdDev     time.Duration
	CPU        float64 // server CPU time / wall time, 1.0 = one CPU
	ClientCPU  float64 // dnsperf's CPU time / wall time
	Output     string
}

var (
	reQPS    = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reSent   = regexp.MustCompile(`Queries sent:\s+([0-9]+)`)
	reLost   = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	reLat    = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)(?: \(min ([0-9.]+), max ([0-9.]+)\))?`)
	reStdDev = regexp.MustCompile(`Latency StdDev \(s\):\s+([0-9.]+)`)
)

// parseDnsperf reads the statistics dnsperf prints at the end of a run.
func parseDnsperf(out string) (run, error) {
	r := run{Output: out}
	m := reQPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no 'Queries per second' in dnsperf output:\n%s", out)
	}
	r.QPS, _ = strconv.ParseFloat(m[1], 64)
	if m := reSent.FindStringSubmatch(out); m != nil {
		r.Sent, _ = strconv.Atoi(m[1])
	}
	if m := reLost.FindStringSubmatch(out); m != nil {
		r.Lost, _ = strconv.Atoi(m[1])
	}
	if m := reLat.FindStringSubmatch(out); m != nil {
		r.AvgLatency = seconds(m[1])
		if m[3] != "" {
			r.MaxLatency = seconds(m[3])
		}
	}
	if m := reStdDev.FindStringSubmatch(out); m != nil {
		r.StdDev = seconds(m[1])
	}
	return r, nil
}

func seconds(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second))
}

// perfConfig is how dnsperf is run.
type perfConfig struct {
	bin      string
	queries  string
	duration time.Duration
	clients  int
	rate     int // -Q; 0 = as fast as it can (saturation)
	cpu      int
}

// dnsperf runs one load against p and measures the server's CPU time.
func dnsperf(c perfConfig, p *lab.Proc) (run, error) {
	args := []string{c.bin, "-s", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-d", c.queries,
		"-l", strconv.Itoa(int(c.duration.Seconds())), "-c", strconv.Itoa(c.clients)}
	if c.rate > 0 {
		args = append(args, "-Q", strconv.Itoa(c.rate))
	}
	argv := lab.Pinned(c.cpu, args)
	cpu0 := lab.TreeRuntime(p.Cmd.Process.Pid)
	start := time.Now()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	cpu1 := lab.TreeRuntime(p.Cmd.Process.Pid)
	if err != nil {
		return run{Output: string(out)}, fmt.Errorf("dnsperf against %s: %v\n%s", p.Name, err, out)
	}
	r, err := parseDnsperf(string(out))
	if err != nil {
		return r, err
	}
	r.CPU = float64(cpu1-cpu0) / float64(wall)
	if ps := cmd.ProcessState; ps != nil {
		r.ClientCPU = float64(ps.UserTime()+ps.SystemTime()) / float64(wall)
	}
	return r, nil
}
