package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/bench/internal/report"
)

// section names what this command writes into the results file, between
// the markers report.ReplaceSection keeps: the harness's part and the
// hand-written notes around it stay as they are.
const section = "bench/cmd/manyzones"

// writeResults puts the table md and two bar plots (time to serve every
// zone; RSS settled and peak) into the many-zones section of mdPath, the
// plots in results/ beside it as the harness does.
func writeResults(mdPath, md string, results []result, servers []string) error {
	dir := filepath.Join(filepath.Dir(mdPath), "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	med := medians(results)
	var serve, mem report.Bars
	for _, s := range servers {
		m, ok := med[s]
		if !ok {
			continue
		}
		serve.Add("start to every zone served", s, m.Serving)
		if m.Compiled > 0 {
			serve.Add("start to every zone compiled", s, m.Compiled)
		}
		mem.Add("RSS settled", s, m.RSSMiB)
		mem.Add("peak RSS", s, m.PeakMiB)
	}
	var b strings.Builder
	b.WriteString(strings.TrimLeft(md, "\n"))
	for _, p := range []struct {
		bars           *report.Bars
		file, title, y string
	}{
		{&serve, "manyzones-serve.svg", "Many zones: start to every zone served", "seconds (median over rounds)"},
		{&mem, "manyzones-rss.svg", "Many zones: memory", "MiB (median over rounds)"},
	} {
		ok, err := p.bars.Save(filepath.Join(dir, p.file), p.title, "", p.y)
		if err != nil {
			return fmt.Errorf("plot %s: %w", p.file, err)
		}
		if ok {
			fmt.Fprintf(&b, "\n![%s](results/%s)\n", strings.TrimSuffix(p.file, ".svg"), p.file)
		}
	}
	return report.ReplaceSection(mdPath, section, []byte(b.String()))
}

// medians per server over the rounds without an error.
func medians(results []result) map[string]result {
	by := map[string][]result{}
	for _, r := range results {
		if r.Err == "" {
			by[r.Server] = append(by[r.Server], r)
		}
	}
	out := map[string]result{}
	for s, rs := range by {
		var serve, compiled, rss, peak []float64
		for _, r := range rs {
			serve, rss, peak = append(serve, r.Serving), append(rss, r.RSSMiB), append(peak, r.PeakMiB)
			compiled = append(compiled, r.Compiled)
		}
		out[s] = result{Server: s, Serving: lab.Median(serve), Compiled: lab.Median(compiled), RSSMiB: lab.Median(rss), PeakMiB: lab.Median(peak)}
	}
	return out
}
