package report

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Baselines the tables compare every server with, at saturation.
var baselines = []string{"knot-xdp", "nsd"}

// Markdown writes the report: how it ran, one table per scenario (one
// row per server), the setup table and links to plots, which are paths
// relative to where the Markdown will live.
func Markdown(w io.Writer, meta Meta, sums []Summary, setups []ServerSetup, plots []string) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("# Benchmark report\n\n")
	if meta.Command != "" {
		p("    %s\n\n", meta.Command)
	}
	if !meta.Started.IsZero() {
		p("- Date: %s", meta.Started.UTC().Format("2006-01-02 15:04 UTC"))
		if meta.Duration > 0 {
			p(", took %s", meta.Duration.Round(time.Second))
		}
		p("\n")
	}
	for _, kv := range [][2]string{{"Mode", meta.Mode}, {"Machine", meta.Machine}, {"Link", meta.Link}} {
		if kv[1] != "" {
			p("- %s: %s\n", kv[0], kv[1])
		}
	}
	for _, n := range meta.Notes {
		p("- %s\n", n)
	}

	if len(sums) > 0 {
		p("\nAnswered: answers over queries sent. Correct: share of answers with the expected rcode. " +
			"Server CPU: share of one CPU, the server end's NAPI thread (driver, XDP, kernel stack) + the server's processes. " +
			"In XDP: share of answers sent by the XDP program.\n")
	}
	for _, sc := range scenarios(sums) {
		p("\n## Scenario %s\n\n", sc)
		scenarioTable(p, sums, sc)
	}

	if len(setups) > 0 {
		p("\n## Setup\n\n")
		setupTable(p, sums, setups)
	}

	if len(plots) > 0 {
		p("\n## Plots\n\n")
		for _, pl := range plots {
			alt := strings.TrimSuffix(path.Base(pl), path.Ext(pl))
			p("![%s](%s)\n\n", alt, pl)
		}
	}
	return bw.Flush()
}

func scenarioTable(p func(string, ...any), sums []Summary, sc string) {
	var loads []string
	rounds := 0
	satGenerators := map[string]bool{}
	for _, s := range sums {
		if s.Scenario != sc {
			continue
		}
		l := fmt.Sprintf("%s with %s (offered %s)", phaseName(s.Phase), s.Generator, rate(s.Offered))
		if !slices.Contains(loads, l) {
			loads = append(loads, l)
		}
		rounds = max(rounds, s.Rounds)
		if s.Phase == "saturation" {
			satGenerators[s.Generator] = true
		}
	}
	p("Load: %s; medians over %d rounds. Answered q/s and the ratios at saturation, CPU at the fixed rate.\n\n",
		strings.Join(loads, ", "), rounds)

	p("| server | answered q/s, median (min–max) |")
	for _, b := range baselines {
		p(" vs %s |", b)
	}
	p(" answered | correct | server CPU: NAPI + process | CPU-s per M answers | in XDP | latency p50 / p99 |\n")
	p("|---|--:|%s--:|--:|--:|--:|--:|--:|\n", strings.Repeat("--:|", len(baselines)))

	for _, srv := range servers(sums, sc) {
		sat := saturationOf(sums, sc, srv)
		fixed := fixedOf(sums, sc, srv)
		lat := latencyOf(sums, sc, srv)
		main := cmp.Or(sat, fixed, anyOf(sums, sc, srv))

		p("| %s |", srv)
		if sat != nil {
			p(" %s (%s–%s)", qps(sat.QPS), qps(sat.QPSMin), qps(sat.QPSMax))
			if len(satGenerators) > 1 {
				p(" [%s]", sat.Generator)
			}
			p(" |")
		} else {
			p(" — |")
		}
		for _, b := range baselines {
			base := saturationOf(sums, sc, b)
			if sat == nil || base == nil || base.QPS <= 0 {
				p(" — |")
				continue
			}
			p(" %.2f× |", sat.QPS/base.QPS)
		}
		p(" %s | %s |", pct(main.AnswerRatio), pct(main.Correct))
		if fixed != nil {
			p(" %s (%s + %s) | %.2f s |", pct(fixed.ServerCPU), pct(fixed.ServerNAPI), pct(fixed.ServerProc), fixed.CPUPerMillion)
		} else {
			p(" — | — |")
		}
		p(" %s |", pct(main.InXDP))
		if lat != nil {
			p(" %s / %s |", micros(lat.Latency.P50), micros(lat.Latency.P99))
		} else {
			p(" — |")
		}
		p("\n")
	}
}

func setupTable(p func(string, ...any), sums []Summary, setups []ServerSetup) {
	rank := map[string]int{}
	for i, sc := range scenarios(sums) {
		rank[sc] = i
	}
	// Scenarios with setups but no runs (a failed setup) go last.
	byScenario := func(sc string) int {
		if r, ok := rank[sc]; ok {
			return r
		}
		return len(rank)
	}
	sorted := slices.Clone(setups)
	slices.SortStableFunc(sorted, func(a, b ServerSetup) int {
		return cmp.Or(cmp.Compare(byScenario(a.Scenario), byScenario(b.Scenario)), compareServers(a.Server, b.Server))
	})

	p("| scenario | server | version | zone | load | RSS | map memory | checked |\n")
	p("|---|---|---|--:|--:|--:|--:|---|\n")
	for _, s := range sorted {
		checked := "no"
		if s.Checked {
			checked = "yes"
		}
		if s.Error != "" {
			checked = "**failed**: " + strings.ReplaceAll(s.Error, "|", `\|`)
		}
		maps := "—"
		if s.MapBytes > 0 {
			maps = mib(s.MapBytes)
		}
		p("| %s | %s | %s | %d names, %d records | %.2f s | %s | %s | %s |\n",
			s.Scenario, s.Server, s.Version, s.Names, s.Records, s.LoadSecs, mib(s.RSSBytes), maps, checked)
	}
}

// Write summarizes runs, draws the plots into plotDir and writes the
// Markdown to mdPath, linking the plots relative to mdPath's directory.
func Write(mdPath, plotDir string, meta Meta, runs []Run, setups []ServerSetup) error {
	sums := Summarize(runs)
	// A plot that fails costs its image, not the tables: write the
	// Markdown with the plots that were drawn, then report the failure.
	plots, plotErr := Plots(plotDir, sums, setups)
	mdDir, err := filepath.Abs(filepath.Dir(mdPath))
	if err != nil {
		return fmt.Errorf("report path: %w", err)
	}
	links := make([]string, len(plots))
	for i, pl := range plots {
		abs, err := filepath.Abs(pl)
		if err != nil {
			return fmt.Errorf("plot path: %w", err)
		}
		rel, err := filepath.Rel(mdDir, abs)
		if err != nil {
			return fmt.Errorf("plot path: %w", err)
		}
		links[i] = filepath.ToSlash(rel)
	}

	var b bytes.Buffer
	if err := Markdown(&b, meta, sums, setups, links); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := ReplaceSection(mdPath, "bench/cmd/harness", b.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return plotErr
}

// ReplaceSection writes content into the file at path between the two
// comment lines that mark what the tool named by name wrote there last,
// keeping everything outside them: notes written by hand and other
// tools' sections (bench/RESULTS.md holds the harness's and the
// many-zones benchmark's). A file without the markers gets the section
// appended; a missing file is created.
func ReplaceSection(path, name string, content []byte) error {
	begin := []byte("<!-- begin: written by " + name + "; edits between these lines are lost -->\n")
	end := []byte("<!-- end: written by " + name + " -->\n")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var out bytes.Buffer
	i, j := bytes.Index(old, begin), bytes.Index(old, end)
	switch {
	case i >= 0 && j > i:
		out.Write(old[:i])
	default:
		out.Write(old)
		if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n\n")) {
			out.WriteString("\n")
		}
		j = len(old) - len(end) // nothing of old after the new section
	}
	out.Write(begin)
	out.Write(content)
	if !bytes.HasSuffix(content, []byte("\n")) {
		out.WriteString("\n")
	}
	out.Write(end)
	if rest := j + len(end); rest < len(old) {
		out.Write(old[rest:])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Through a temporary file, so an interrupted run leaves the old
	// report whole.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// scenarios in the order they first appear.
func scenarios(sums []Summary) []string {
	var out []string
	for _, s := range sums {
		if !slices.Contains(out, s.Scenario) {
			out = append(out, s.Scenario)
		}
	}
	return out
}

// servers of one scenario (all scenarios when sc is ""), in serverOrder.
func servers(sums []Summary, sc string) []string {
	var out []string
	for _, s := range sums {
		if (sc == "" || s.Scenario == sc) && !slices.Contains(out, s.Server) {
			out = append(out, s.Server)
		}
	}
	slices.SortFunc(out, compareServers)
	return out
}

// saturationOf is a server's best saturation point in a scenario: with
// several generators or offered rates, the one that got most answers.
func saturationOf(sums []Summary, sc, srv string) *Summary {
	var best *Summary
	for i, s := range sums {
		if s.Scenario == sc && s.Server == srv && s.Phase == "saturation" && (best == nil || s.QPS > best.QPS) {
			best = &sums[i]
		}
	}
	return best
}

// fixedOf is a server's fixed-rate point in a scenario, the lowest
// offered rate when there are several.
func fixedOf(sums []Summary, sc, srv string) *Summary {
	var first *Summary
	for i, s := range sums {
		if s.Scenario == sc && s.Server == srv && s.Phase == "fixed" && (first == nil || s.Offered < first.Offered) {
			first = &sums[i]
		}
	}
	return first
}

// latencyOf prefers a fixed-rate point, the lowest rate first: at
// saturation latency is mostly the generator's own queue.
func latencyOf(sums []Summary, sc, srv string) *Summary {
	rank := func(s *Summary) []int {
		if s.Phase == "fixed" {
			return []int{0, s.Offered}
		}
		return []int{1, s.Offered}
	}
	var best *Summary
	for i := range sums {
		s := &sums[i]
		if s.Scenario != sc || s.Server != srv || s.Latency == nil {
			continue
		}
		if best == nil || slices.Compare(rank(s), rank(best)) < 0 {
			best = s
		}
	}
	return best
}

func anyOf(sums []Summary, sc, srv string) *Summary {
	for i, s := range sums {
		if s.Scenario == sc && s.Server == srv {
			return &sums[i]
		}
	}
	return nil
}

func phaseName(phase string) string {
	if phase == "fixed" {
		return "fixed rate"
	}
	return phase
}

// rate is an offered rate for people: 100k q/s, 10M q/s; 0 means no
// limit.
func rate(q int) string {
	switch {
	case q <= 0:
		return "unlimited"
	case q%1_000_000 == 0:
		return fmt.Sprintf("%dM q/s", q/1_000_000)
	case q%1000 == 0:
		return fmt.Sprintf("%dk q/s", q/1000)
	}
	return fmt.Sprintf("%d q/s", q)
}

// qps rounds to three significant digits: rounds differ by more than
// that.
func qps(v float64) string {
	if v < 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	// Round first so that 999,999 reads 1M, not 1e+03k.
	r, _ := strconv.ParseFloat(fmt.Sprintf("%.3g", v), 64)
	if r >= 1e6 {
		return strconv.FormatFloat(r/1e6, 'f', -1, 64) + "M"
	}
	return strconv.FormatFloat(r/1e3, 'f', -1, 64) + "k"
}

// pct shows a share; negative means unknown.
func pct(v float64) string {
	switch {
	case v < 0:
		return "—"
	case v == 1:
		return "100%"
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

func micros(us float64) string {
	if us < 1000 {
		return fmt.Sprintf("%.0f µs", us)
	}
	return fmt.Sprintf("%.2f ms", us/1000)
}

func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
