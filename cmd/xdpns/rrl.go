package main

import (
	"fmt"
	"io"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/rrl"
)

// rrlConfig is server.rrl for package rrl.
func rrlConfig(c config.RRL) rrl.Config {
	return rrl.Config{
		ResponsesPerSecond: c.ResponsesPerSecond,
		NXDomainsPerSecond: c.NXDomainsPerSecond,
		ErrorsPerSecond:    c.ErrorsPerSecond,
		Window:             c.Window,
		Slip:               c.Slip,
		IPv4PrefixLen:      c.IPv4PrefixLen,
		IPv6PrefixLen:      c.IPv6PrefixLen,
		Exempt:             c.Exempt,
	}
}

// newLimiter configures RRL in XDP (off too: a pinned program's maps are
// not kept, but say so anyway) and makes the Go server's limiter: over
// XDP's bucket map when XDP is loaded, so both spend one budget, else
// over an in-process table. nil when server.rrl is off.
func (d *daemon) newLimiter(cfg *config.Config) *rrl.Limiter {
	rc := rrlConfig(cfg.Server.RRL)
	var table rrl.Table
	if d.xdp != nil {
		if err := d.xdp.x.SetRRL(rc); err != nil {
			d.log.Error("RRL not configured in XDP: XDP answers without limits", "err", err)
		} else {
			table = d.xdp.x.RRLTable(nil)
		}
	}
	if !rc.Enabled() {
		return nil
	}
	d.rrl = rrl.New(rc, table)
	d.log.Info("response rate limiting", "responses_per_second", rc.ResponsesPerSecond,
		"nxdomains_per_second", rc.NXDomainsPerSecond, "errors_per_second", rc.ErrorsPerSecond,
		"window", rc.Window, "slip", rc.Slip, "exempt", len(rc.Exempt), "shared_with_xdp", table != nil)
	return d.rrl
}

// rrlCounters are the limiter's counters in `xdpns xdp stats`: the Go
// server's and XDP's, each since its start.
type rrlCounters struct {
	Userspace map[string]uint64 `json:"userspace"`
	XDP       map[string]uint64 `json:"xdp,omitempty"`
}

// rrlCounters reads them; nil when RRL is off.
func (d *daemon) rrlCounters() *rrlCounters {
	if d.rrl == nil {
		return nil
	}
	s := &d.rrl.Stats
	c := &rrlCounters{Userspace: map[string]uint64{
		"rrl__sent": s.Sent.Load(), "rrl__slipped": s.Slipped.Load(),
		"rrl__dropped": s.Dropped.Load(), "rrl__exempt": s.Exempt.Load(),
	}}
	if d.xdp != nil && !d.xdp.isClosed() {
		d.xdp.mu.Lock()
		if !d.xdp.closed {
			c.XDP, _ = d.xdp.x.RRLStats()
		}
		d.xdp.mu.Unlock()
	}
	return c
}

// printRRL writes the limiter's counters of `xdpns xdp stats`.
func printRRL(w io.Writer, c *rrlCounters) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "%-24s %12s %12s\n", "rate limiting (RRL)", "userspace", "XDP")
	for _, n := range loader.RRLStatNames() {
		x := "-"
		if c.XDP != nil {
			x = fmt.Sprint(c.XDP[n])
		}
		fmt.Fprintf(w, "  %-22s %12d %12s\n", n, c.Userspace[n], x)
	}
}

var rrlResponses = counter("xdpns_rrl_responses_total", "UDP responses of rate-limited kinds, by decision (sent, slipped: sent truncated, dropped; exempt: from an exempt network) and by who answered (userspace, xdp).", "path", "decision")

// collectRRL writes the limiter's counters to the metrics.
func (d *daemon) collectRRL(s sink) {
	c := d.rrlCounters()
	if c == nil {
		return
	}
	for _, n := range loader.RRLStatNames() {
		dec := n[len("rrl__"):]
		s.uint(rrlResponses, c.Userspace[n], "userspace", dec)
		if c.XDP != nil {
			s.uint(rrlResponses, c.XDP[n], "xdp", dec)
		}
	}
}
