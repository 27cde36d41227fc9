package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
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
func dnsperf(c perfConfig, p *proc) (run, error) {
	args := []string{c.bin, "-s", "127.0.0.1", "-p", strconv.Itoa(p.port), "-d", c.queries,
		"-l", strconv.Itoa(int(c.duration.Seconds())), "-c", strconv.Itoa(c.clients)}
	if c.rate > 0 {
		args = append(args, "-Q", strconv.Itoa(c.rate))
	}
	argv := pinned(c.cpu, args)
	cpu0 := treeRuntime(p.cmd.Process.Pid)
	start := time.Now()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	cpu1 := treeRuntime(p.cmd.Process.Pid)
	if err != nil {
		return run{Output: string(out)}, fmt.Errorf("dnsperf against %s: %v\n%s", p.name, err, out)
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

// treeRuntime sums the CPU time of every thread of pid and of its
// descendants (NSD serves from forked children), from schedstat: precise
// run time in nanoseconds, not tick samples.
func treeRuntime(pid int) time.Duration {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var total time.Duration
	var walk func(int)
	walk = func(p int) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", p, t.Name()))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return total
}
