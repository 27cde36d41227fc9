package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/bench/internal/report"
)

// perfConfig is how dnsperf is run.
type perfConfig struct {
	queries  string        // query file ("name type" lines)
	duration time.Duration // -l
	rate     int           // -Q
	inFlight int           // -q
	clients  int           // -c: sockets (source ports)
	do       bool          // -D (DO on every query); else -e (EDNS)
	v6       bool          // to the server's IPv6 address
	cpu      int           // taskset; -1: anywhere
	dir      string        // for its stderr
	name     string
}

// perfRun is a running dnsperf whose per-query lines (-v) are parsed as
// they come, into a histogram: the output is a line per query and is never
// held whole.
type perfRun struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed once the output is parsed and the process reaped
	res    gunResult
	hist   *histogram
	stderr string
	err    error
}

func (p *perfRun) Pid() int              { return p.cmd.Process.Pid }
func (p *perfRun) Done() <-chan struct{} { return p.done }

// Stop ends dnsperf (its process group) and waits for it.
func (p *perfRun) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// startPerf starts dnsperf in the client namespace of v, one thread, a
// timeout of 1 s.
func startPerf(c perfConfig, v *lab.Veth) (*perfRun, error) {
	bin, err := exec.LookPath("dnsperf")
	if err != nil {
		return nil, fmt.Errorf("dnsperf not found (Debian package dnsperf): %w", err)
	}
	server := v.Server4.String()
	if c.v6 {
		server = v.Server6.String()
	}
	secs := int(math.Ceil(c.duration.Seconds()))
	args := []string{bin, "-s", server, "-d", c.queries, "-l", strconv.Itoa(secs),
		"-Q", strconv.Itoa(c.rate), "-c", strconv.Itoa(max(c.clients, 1)), "-T", "1", "-q", strconv.Itoa(c.inFlight), "-t", "1", "-v"}
	if c.do {
		args = append(args, "-D")
	} else {
		args = append(args, "-e")
	}
	argv := lab.Pinned(c.cpu, v.ClientArgv(args...))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errPath := filepath.Join(c.dir, c.name+".stderr")
	ef, err := os.Create(errPath)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	cmd.Stderr = ef
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dnsperf: %w", err)
	}
	p := &perfRun{cmd: cmd, done: make(chan struct{}), hist: newHistogram()}
	go func() {
		defer close(p.done)
		p.res, p.err = parsePerf(out, p.hist)
		io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil && p.err == nil {
			b, _ := os.ReadFile(errPath)
			p.err = fmt.Errorf("dnsperf: %v\n%s", err, tail(string(b), 10))
		}
	}()
	return p, nil
}

// parsePerf reads dnsperf -v output: a line per answered query
//
//	> NOERROR host1.bench.test. A 0.000530
//
// (lost ones: "> T ..."), then the statistics:
//
//	Queries sent:         5
//	Queries completed:    5 (100.00%)
//	Run time (s):         1.000123
func parsePerf(r io.Reader, h *histogram) (gunResult, error) {
	res := gunResult{Rcodes: map[string]uint64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var secs float64
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "> "); ok {
			f := strings.Fields(rest)
			if len(f) < 4 || f[0] == "T" {
				continue
			}
			if lat, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				res.Rcodes[f[0]]++
				h.add(lat * 1e6)
			}
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		switch k {
		case "Queries sent":
			res.Sent, _ = strconv.ParseUint(fs[0], 10, 64)
			seen = true
		case "Queries completed":
			res.Replies, _ = strconv.ParseUint(fs[0], 10, 64)
		case "Run time (s)":
			secs, _ = strconv.ParseFloat(fs[0], 64)
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if !seen {
		return res, fmt.Errorf("dnsperf printed no statistics")
	}
	if secs > 0 {
		res.SentQPS = float64(res.Sent) / secs
		res.ReplyQPS = float64(res.Replies) / secs
	}
	return res, nil
}

// histogram counts latencies in logarithmic buckets 1% wide, from 1 µs
// to 100 s: percentiles within 1% without holding every value.
type histogram struct {
	counts []uint64
	n      uint64
	max    float64
}

const (
	histMin   = 1.0  // µs: everything below lands in the first bucket
	histGrow  = 1.01 // bucket width ratio
	histCount = 2000 // up to histMin * histGrow^histCount ≈ 4e8 µs
)

func newHistogram() *histogram { return &histogram{counts: make([]uint64, histCount)} }

func (h *histogram) add(us float64) {
	i := 0
	if us > histMin {
		i = min(int(math.Log(us/histMin)/math.Log(histGrow)), histCount-1)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, us)
}

// upper is bucket i's upper bound in µs.
func (h *histogram) upper(i int) float64 { return histMin * math.Pow(histGrow, float64(i+1)) }

// quantile is the upper bound of the bucket holding the q-th value.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var sum uint64
	for i, c := range h.counts {
		sum += c
		if sum >= max(rank, 1) {
			return min(h.upper(i), h.max)
		}
	}
	return h.max
}

// latency is the distribution in report form: percentiles and a CDF of at
// most 200 points (one per non-empty bucket, thinned).
func (h *histogram) latency() *report.Latency {
	if h.n == 0 {
		return nil
	}
	l := &report.Latency{P50: h.quantile(0.50), P90: h.quantile(0.90), P99: h.quantile(0.99),
		P999: h.quantile(0.999), Max: h.max}
	var pts []report.CDFPoint
	var sum uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		sum += c
		pts = append(pts, report.CDFPoint{Micros: min(h.upper(i), h.max), Fraction: float64(sum) / float64(h.n)})
	}
	if len(pts) > 200 {
		// Keep every k-th point and the last.
		k := (len(pts) + 198) / 199
		var thin []report.CDFPoint
		for i := 0; i < len(pts)-1; i += k {
			thin = append(thin, pts[i])
		}
		pts = append(thin, pts[len(pts)-1])
	}
	l.CDF = pts
	return l
}
