package main

import (
	"fmt"
	"strings"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// table is a Markdown table of medians per server (medians), in the order
// of -servers, with the command that made it.
func table(o options, f fleet, results []result) string {
	var b strings.Builder
	m := lab.ThisMachine()
	fmt.Fprintf(&b, "\n## many-zones: %d zones of %d names (%d records), %d rounds, medians\n\n", f.zones, f.names, f.records, o.rounds)
	where, flag := "Each server runs on every CPU", ""
	if o.cpu >= 0 {
		where, flag = fmt.Sprintf("Each server pinned to CPU %d", o.cpu), fmt.Sprintf(" -cpu %d", o.cpu)
	}
	fmt.Fprintf(&b, "Machine: %s. %s, loopback; `go run ./bench/cmd/manyzones -xdpns-bin bin/xdpns -zones %d -names %d -rounds %d%s`.\n\n", m, where, f.zones, f.names, o.rounds, flag)
	fmt.Fprintf(&b, "| server | start to every zone served (s) | to every zone compiled (s) | RSS settled (MiB) | peak RSS (MiB) | errors |\n|---|--:|--:|--:|--:|--:|\n")
	errs := map[string]int{}
	for _, r := range results {
		if r.Err != "" {
			errs[r.Server]++
		}
	}
	med := medians(results)
	for _, s := range o.servers {
		md, ok := med[s]
		if !ok && errs[s] == 0 {
			continue
		}
		compiled := "(no compile step)"
		if md.Compiled > 0 {
			compiled = fmt.Sprintf("%.2f", md.Compiled)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %s | %.0f | %.0f | %d |\n", s, md.Serving, compiled, md.RSSMiB, md.PeakMiB, errs[s])
	}
	b.WriteString("\nxdpns serves every zone from its engine first and compiles the answers afterwards (XDP takes each zone over once compiled); \"compiled\" is read from its metrics (`xdpns_zone_compiled`).\n")
	return b.String()
}
