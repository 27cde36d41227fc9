package main

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// gunConfig is how kxdpgun is run.
type gunConfig struct {
	queries  string        // query file
	duration time.Duration // -t: how long it sends
	rate     int           // -Q: queries/s offered
	batch    int           // -b: queries sent at once
	cpu      int           // its threads (-F) and the process (taskset); -1: anywhere
	dir      string        // for its output
	name     string        // of its output file: NAME.log
	v6       bool          // to the server's IPv6 address
}

// startGun starts kxdpgun in the client namespace of v, aimed at the
// server end's IPv4 (or IPv6) address, with every address given (no route or
// neighbour lookups).
func startGun(g gunConfig, v *lab.Veth) (*lab.Proc, error) {
	bin, err := lab.LookSbin("kxdpgun")
	if err != nil {
		return nil, err
	}
	local, remote := v.Client4, v.Server4
	if g.v6 {
		local, remote = v.Client6, v.Server6
	}
	args := []string{bin,
		"-t", strconv.FormatFloat(g.duration.Seconds(), 'f', -1, 64),
		"-Q", strconv.Itoa(g.rate),
		"-b", strconv.Itoa(g.batch),
		"-I", v.ClientIf, "-l", localArg(local),
		"-L", v.ClientMAC.String(), "-R", v.ServerMAC.String(),
		"-i", g.queries,
	}
	if g.cpu >= 0 {
		args = append(args, "-F", strconv.Itoa(g.cpu))
	}
	args = append(args, remote.String())
	return lab.Launch(g.name, g.dir, nil, lab.Pinned(g.cpu, v.ClientArgv(args...)))
}

// gunResult is what kxdpgun printed at the end.
type gunResult struct {
	Sent     uint64            `json:"sent"`
	SentQPS  float64           `json:"sent_qps"`
	Replies  uint64            `json:"replies"`
	ReplyQPS float64           `json:"answered_qps"` // replies over the sending time
	Rcodes   map[string]uint64 `json:"rcodes"`
}

var (
	gunTotal   = regexp.MustCompile(`(?m)^total (queries|replies):\s+(\d+) \((\d+) pps\)`)
	gunRcode   = regexp.MustCompile(`(?m)^responded (\S+):\s+(\d+)`)
	gunThreads = regexp.MustCompile(`(?m)XDP threads (\d+)`)
)

// parseGun reads kxdpgun's summary:
//
//	total queries:     1000 (200 pps) (100%)
//	total replies:     1000 (200 pps) (100%)
//	responded NOERROR: 1000
func parseGun(out string) (gunResult, error) {
	var r gunResult
	seen := map[string]bool{}
	for _, m := range gunTotal.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.ParseUint(m[2], 10, 64)
		pps, _ := strconv.ParseFloat(m[3], 64)
		switch m[1] {
		case "queries":
			r.Sent, r.SentQPS = n, pps
		case "replies":
			r.Replies, r.ReplyQPS = n, pps
		}
		seen[m[1]] = true
	}
	if !seen["queries"] {
		return r, fmt.Errorf("kxdpgun printed no totals:\n%s", tail(out, 20))
	}
	r.Rcodes = map[string]uint64{}
	for _, m := range gunRcode.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.ParseUint(m[2], 10, 64)
		r.Rcodes[m[1]] = n
	}
	if m := gunThreads.FindStringSubmatch(out); m != nil && m[1] != "1" {
		return r, fmt.Errorf("kxdpgun ran %s threads, want 1 (one queue)", m[1])
	}
	return r, nil
}

// waitGun waits for kxdpgun to finish (it sends for the duration, then
// listens one more second for late replies), killing it after timeout.
func waitGun(ctx context.Context, p *lab.Proc, timeout time.Duration) error {
	select {
	case <-p.Done():
		if !p.Cmd.ProcessState.Success() {
			return fmt.Errorf("kxdpgun: %v\n%s", p.Cmd.ProcessState, tail(p.Output(), 20))
		}
		return nil
	case <-ctx.Done():
		p.Stop()
		return ctx.Err()
	case <-time.After(timeout):
		p.Stop()
		return fmt.Errorf("kxdpgun still running after %v: stopped", timeout)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// localArg is kxdpgun's -l for a source address.
func localArg(a netip.Addr) string {
	if a.Is6() {
		return a.String() + "/128"
	}
	return a.String()
}
