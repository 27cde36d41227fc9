package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// run is a synthetic run; cpm doubles as a marker of which round it was.
func run(sc, srv, phase string, offered, round int, q float64, lat *Latency) Run {
	return Run{
		Kind: "run", Scenario: sc, Server: srv, Generator: "kxdpgun", Phase: phase,
		Round: round, Offered: offered, Seconds: 10,
		Sent: int64(q * 10), Answered: int64(q * 10), QPS: q,
		AnswerRatio: 1, Correct: 1,
		ServerNAPI: 0.2, ServerProc: 0.1, ServerCPU: 0.3, CPUPerMillion: float64(round),
		InXDP: -1, Latency: lat,
	}
}

func lat(p50 float64) *Latency {
	return &Latency{P50: p50, P90: 2 * p50, P99: 4 * p50, P999: 8 * p50, Max: 10 * p50,
		CDF: []CDFPoint{{p50 / 2, 0.1}, {p50, 0.5}, {4 * p50, 0.99}, {10 * p50, 1}}}
}

// example: two scenarios, runs given in a scrambled server order.
func example() []Run {
	var runs []Run
	for round, qs := range [][3]float64{{800e3, 400e3, 200e3}, {900e3, 500e3, 250e3}, {700e3, 450e3, 150e3}} {
		r := round + 1
		runs = append(runs,
			run("hit", "nsd", "saturation", 0, r, qs[2], nil),
			run("hit", "xdpns-native", "saturation", 0, r, qs[0], nil),
			run("hit", "knot-xdp", "saturation", 0, r, qs[1], nil),
			run("hit", "nsd", "fixed", 100000, r, 99e3, lat(100*float64(r))),
			run("hit", "xdpns-native", "fixed", 100000, r, 100e3, lat(50*float64(r))),
			run("miss", "zz-other", "saturation", 0, r, 1000, nil),
			run("miss", "xdpns-user", "saturation", 0, r, 300e3, nil),
		)
	}
	return runs
}

func TestSummarize(t *testing.T) {
	sums := Summarize(example())
	var got []string
	for _, s := range sums {
		got = append(got, s.Scenario+"/"+s.Server+"/"+s.Phase)
	}
	want := []string{
		"hit/xdpns-native/saturation", "hit/xdpns-native/fixed",
		"hit/knot-xdp/saturation",
		"hit/nsd/saturation", "hit/nsd/fixed",
		"miss/xdpns-user/saturation", "miss/zz-other/saturation",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}

	x := sums[0]
	if x.Rounds != 3 || x.QPS != 800e3 || x.QPSMin != 700e3 || x.QPSMax != 900e3 {
		t.Errorf("xdpns-native saturation: rounds %d, qps %v (%v–%v)", x.Rounds, x.QPS, x.QPSMin, x.QPSMax)
	}
	if x.ServerCPU != 0.3 || x.CPUPerMillion != 2 || x.InXDP != -1 {
		t.Errorf("xdpns-native saturation: cpu %v, cpm %v, in xdp %v", x.ServerCPU, x.CPUPerMillion, x.InXDP)
	}
	// Fixed-rate QPS ties at 100k in every round: the median run is the
	// middle one of a stable sort, round 2.
	if l := sums[1].Latency; l == nil || l.P50 != 100 {
		t.Errorf("xdpns-native fixed latency %+v, want round 2's (p50 100)", l)
	}
}

func TestSummarizeEvenRoundsAndInXDP(t *testing.T) {
	var runs []Run
	for i, q := range []float64{400, 100, 300, 200} {
		r := run("hit", "xdpns-native", "saturation", 0, i+1, q, lat(q))
		r.InXDP = []float64{0.9, -1, 0.8, 0.7}[i]
		runs = append(runs, r)
	}
	s := Summarize(runs)[0]
	if s.QPS != 250 {
		t.Errorf("median of 4 = %v, want 250", s.QPS)
	}
	if s.Latency == nil || s.Latency.P50 != 200 {
		t.Errorf("latency %+v, want the lower middle run's (200)", s.Latency)
	}
	if s.InXDP != 0.8 {
		t.Errorf("in xdp %v, want 0.8 (unknown rounds left out)", s.InXDP)
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	j, err := OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 16, 8, 0, 0, time.UTC)
	meta := Meta{Command: "harness -mode quick", Mode: "quick", Started: start, Machine: "2 CPUs", Notes: []string{"a"}}
	runs := example()[:3]
	runs[0].Latency = lat(10)
	setup := ServerSetup{Scenario: "hit", Server: "nsd", Version: "NSD 4.6.1", RSSBytes: 1 << 20, Checked: true}
	if err := j.Meta(meta); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if err := j.Run(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Setup(setup); err != nil {
		t.Fatal(err)
	}
	meta.Duration = 90 * time.Second
	if err := j.Meta(meta); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// Another tool's record and a line cut short by a kill are skipped.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, `{"kind":"peak","server":"nsd"}`+"\n"+`{"kind":"run","scen`)
	f.Close()

	gotMeta, gotRuns, gotSetups, err := ReadJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	meta.Kind, setup.Kind = "meta", "setup"
	if !reflect.DeepEqual(gotMeta, meta) {
		t.Errorf("meta:\n got %+v\nwant %+v", gotMeta, meta)
	}
	if !reflect.DeepEqual(gotRuns, runs) {
		t.Errorf("runs:\n got %+v\nwant %+v", gotRuns, runs)
	}
	if !reflect.DeepEqual(gotSetups, []ServerSetup{setup}) {
		t.Errorf("setups:\n got %+v\nwant %+v", gotSetups, []ServerSetup{setup})
	}
}

func TestReadJSONLBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(path, []byte("{\"kind\":\"meta\"}\nnot json\n{\"kind\":\"run\"}\n"), 0o644)
	if _, _, _, err := ReadJSONL(path); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
}

func TestMarkdown(t *testing.T) {
	meta := Meta{Command: "go run ./bench/cmd/harness -mode quick", Mode: "quick",
		Started: time.Date(2026, 11, 25, 16, 8, 0, 0, time.UTC), Duration: 13 * time.Minute,
		Machine: "Intel Xeon, 2 CPUs, kernel 6.18"}
	setups := []ServerSetup{
		{Scenario: "hit", Server: "nsd", Version: "NSD 4.6.1", Names: 10, Records: 23, LoadSecs: 0.5, RSSBytes: 10 << 20, Checked: true},
		{Scenario: "hit", Server: "xdpns-native", Version: "xdpns dev", LoadSecs: 1, RSSBytes: 20 << 20, MapBytes: 5 << 20, Checked: true},
		{Scenario: "miss", Server: "bind", Error: "named: exit 1 | bad"},
	}
	var b bytes.Buffer
	if err := Markdown(&b, meta, Summarize(example()), setups, []string{"plots/throughput.svg"}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	t.Log("\n" + md)
	for _, want := range []string{
		"    go run ./bench/cmd/harness -mode quick\n",
		"2026-11-25 16:08 UTC, took 13m0s",
		"## Scenario hit",
		// 800k / 450k and 800k / 200k; knot-xdp against nsd 450k / 200k.
		"| xdpns-native | 800k (700k–900k) | 1.78× | 4.00× |",
		"| knot-xdp | 450k (400k–500k) | 1.00× | 2.25× |",
		"| nsd | 200k (150k–250k) | 0.44× | 1.00× |",
		// CPU and latency from the fixed rate, latency from round 2.
		"30.0% (20.0% + 10.0%) | 2.00 s | — | 100 µs / 400 µs |",
		"| knot-xdp | 450k (400k–500k) | 1.00× | 2.25× | 100% | 100% | — | — | — | — |",
		// No baseline in this scenario.
		"| xdpns-user | 300k (300k–300k) | — | — |",
		"| hit | xdpns-native | xdpns dev | 0 names, 0 records | 1.00 s | 20.0 MiB | 5.0 MiB | yes |",
		`**failed**: named: exit 1 \| bad`,
		"![throughput](plots/throughput.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Index(md, "| xdpns-native |") > strings.Index(md, "| nsd |") {
		t.Error("xdpns-native should come before nsd")
	}
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	files, err := Plots(dir, Summarize(example()), exampleSetups())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		checkSVG(t, f)
	}
	want := []string{"throughput.svg", "cpu-per-million.svg", "load-time.svg", "rss.svg", "memory-per-record.svg", "latency-hit.svg"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("plots %q, want %q", names, want)
	}
	// One group per zone size (hit and miss share theirs), the BPF maps
	// as a bar of their own.
	b, _ := os.ReadFile(filepath.Join(dir, "rss.svg"))
	for _, w := range []string{"10k names, 20k records", "1M names, 2M records", "xdpns-native maps"} {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("rss.svg lacks %q", w)
		}
	}
	if n := bytes.Count(b, []byte("10k names, 20k records")); n != 1 {
		t.Errorf("rss.svg names the 10k zone %d times, want once", n)
	}
}

func exampleSetups() []ServerSetup {
	small := func(sc, srv string, rss, maps int64) ServerSetup {
		return ServerSetup{Scenario: sc, Server: srv, Names: 10000, Records: 20003, LoadSecs: 0.3, RSSBytes: rss, MapBytes: maps, Checked: true}
	}
	return []ServerSetup{
		small("hit", "xdpns-native", 45<<20, 5<<20), small("hit", "knot-xdp", 20<<20, 0),
		small("miss", "xdpns-native", 46<<20, 5<<20), small("miss", "knot-xdp", 21<<20, 0),
		{Scenario: "large", Server: "xdpns-native", Names: 1000000, Records: 2000003, LoadSecs: 16, RSSBytes: 1000 << 20, MapBytes: 510 << 20, Checked: true},
		{Scenario: "large", Server: "knot-xdp", Names: 1000000, Records: 2000003, LoadSecs: 2.7, RSSBytes: 373 << 20, Checked: true},
		{Scenario: "large", Server: "bind", Error: "named: exit 1"},
	}
}

// checkSVG: the file parses as XML with an <svg> root.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", path, root)
	}
}

func TestNoData(t *testing.T) {
	// No latency anywhere, one latency without a CDF, and nothing at all.
	runs := []Run{run("hit", "nsd", "saturation", 0, 1, 1000, nil)}
	withPercentiles := run("hit", "bind", "fixed", 1000, 1, 1000, &Latency{P50: 80, P99: 300, Max: 900})
	for _, tc := range []struct {
		name string
		runs []Run
		want []string
	}{
		{"empty", nil, nil},
		{"no latency", runs, []string{"throughput.svg"}},
		{"percentiles only", append(runs, withPercentiles), []string{"throughput.svg", "cpu-per-million.svg", "latency-hit.svg"}},
		{"zero latency", []Run{run("x", "nsd", "fixed", 1, 1, 1, &Latency{})}, []string{"cpu-per-million.svg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := filepath.Join(dir, "report.md")
			if err := Write(md, filepath.Join(dir, "plots"), Meta{}, tc.runs, nil); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "plots", "*.svg"))
			var names []string
			for _, f := range files {
				names = append(names, filepath.Base(f))
				checkSVG(t, f)
			}
			b, _ := os.ReadFile(md)
			for _, w := range tc.want {
				if !slices.Contains(names, w) {
					t.Errorf("plots %q lack %s", names, w)
				}
				if !strings.Contains(string(b), "](plots/"+w+")") {
					t.Errorf("report lacks a relative link to %s", w)
				}
			}
			if len(names) != len(tc.want) {
				t.Errorf("plots %q, want %q", names, tc.want)
			}
		})
	}
}

func TestJSONLConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	j, err := OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := j.Run(run("hit", "nsd", "fixed", 1, i, 1, lat(10))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	j.Close()
	if _, runs, _, err := ReadJSONL(path); err != nil || len(runs) != 20 {
		t.Errorf("read back %d runs, %v; want 20", len(runs), err)
	}
}

func TestWritePlotFailureKeepsTables(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plots")
	os.WriteFile(notDir, nil, 0o644)
	md := filepath.Join(dir, "report.md")
	if err := Write(md, notDir, Meta{}, example(), nil); err == nil {
		t.Error("no error with a file in the plot directory's place")
	}
	if b, _ := os.ReadFile(md); !strings.Contains(string(b), "| xdpns-native | 800k") {
		t.Errorf("report without its tables:\n%s", b)
	}
}

func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		b, err := os.ReadFile(path)
		must(err)
		return string(b)
	}
	must(ReplaceSection(path, "a", []byte("# one\n")))
	must(os.WriteFile(path, []byte("by hand, before\n"+read()+"by hand, after\n"), 0o644))
	must(ReplaceSection(path, "b", []byte("b's table")))
	must(ReplaceSection(path, "a", []byte("# two\n")))
	got := read()
	want := "by hand, before\n" +
		"<!-- begin: written by a; edits between these lines are lost -->\n# two\n<!-- end: written by a -->\n" +
		"by hand, after\n\n" +
		"<!-- begin: written by b; edits between these lines are lost -->\nb's table\n<!-- end: written by b -->\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
