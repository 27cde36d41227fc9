package main

import (
	"fmt"
	"strings"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// report is a Markdown table of medians per server, with ratios to the best
// peer (Knot, NSD, BIND) measured in the same run.
func report(o options, f fleet, results []result) string {
	var b strings.Builder
	m := lab.ThisMachine()
	fmt.Fprintf(&b, "\n## many-zones: %d zones of %d names (%d records), %d rounds, medians\n\n", f.zones, f.names, f.records, o.rounds)
	fmt.Fprintf(&b, "Machine: %s. Each server pinned to CPU %d, loopback; `go run ./bench/cmd/manyzones -xdpns-bin bin/xdpns -zones %d -names %d -rounds %d`.\n\n", m, o.cpu, f.zones, f.names, o.rounds)
	fmt.Fprintf(&b, "| server | start to every zone served (s) | RSS settled (MiB) | peak RSS (MiB) | errors |\n|---|--:|--:|--:|--:|\n")
	type agg struct {
		serve, rss, peak []float64
		errs             int
	}
	by := map[string]*agg{}
	for _, r := range results {
		a := by[r.Server]
		if a == nil {
			a = &agg{}
			by[r.Server] = a
		}
		if r.Err != "" {
			a.errs++
			continue
		}
		a.serve, a.rss, a.peak = append(a.serve, r.Serving), append(a.rss, r.RSSMiB), append(a.peak, r.PeakMiB)
	}
	for _, s := range o.servers {
		a := by[s]
		if a == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.0f | %.0f | %d |\n", s, lab.Median(a.serve), lab.Median(a.rss), lab.Median(a.peak), a.errs)
	}
	return b.String()
}
