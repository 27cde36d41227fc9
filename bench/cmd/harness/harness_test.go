package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpns/xdpns/bench/internal/report"
	"github.com/xdpns/xdpns/userspace/testenv"
)

// TestSmoke builds the lab for each of the seven servers on a tiny zone
// (xdpns built from a clean worktree of HEAD), checks their answers, runs
// kxdpgun against each for 1.5 s at a low rate on the hit scenario and
// dnsperf on the miss scenario (on a kernel that refuses Knot's XDP
// program: six servers without knot-xdp, dnsperf for both; logged), checks every answer was right (from XDP
// for xdpns with XDP), that the JSON lines and the report are complete,
// and that no namespace, process, worktree or scratch file is left. It
// asserts no timing.
func TestSmoke(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"kxdpgun", "knotd", "nsd", "named", "dnsperf", "ldns-keygen", "ldns-signzone", "nsenter", "taskset", "ip", "git"} {
		testenv.RequireBinary(t, b)
	}
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch) // run's scratch directory goes here: checked empty at the end
	o, err := modeDefaults("quick")
	if err != nil {
		t.Fatal(err)
	}
	o.mode = "smoke"
	o.scenarios = "hit,miss"
	o.names = 200
	o.duration, o.warm = 1500*time.Millisecond, 250*time.Millisecond
	o.rate = 2000
	o.lock, o.quietMax = "", 0
	o.outDir = t.TempDir()
	o.command = "go test ./bench/cmd/harness"
	if runtime.NumCPU() < 2 {
		o.serverCPU, o.clientCPU = -1, -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, &o)
	if err != nil {
		t.Fatal(err)
	}

	for _, n := range res.meta.Notes {
		if strings.HasPrefix(n, "failed run") {
			t.Error(n)
		}
	}
	if o.noAFXDP != "" { // run dropped knot-xdp and kxdpgun (knotxdp.go)
		t.Logf("no AF_XDP here: %s", o.noAFXDP)
	}
	nsrv := len(o.serverList())
	if len(res.setups) != 2*nsrv {
		t.Errorf("%d setups, want %d", len(res.setups), 2*nsrv)
	}
	for _, s := range res.setups {
		if !s.Checked || s.Error != "" || s.Version == "" || s.LoadSecs <= 0 || s.RSSBytes <= 0 {
			t.Errorf("setup %+v", s)
		}
		if (s.Server == "xdpns-native" || s.Server == "xdpns-generic") && s.MapBytes <= 0 {
			t.Errorf("%s: no map memory", s.Server)
		}
	}
	if len(res.runs) != 2*nsrv {
		t.Fatalf("%d runs, want %d", len(res.runs), 2*nsrv)
	}
	for _, r := range res.runs {
		// The smoke run checks the harness, not the peers' speed: at a
		// fixed 2k q/s a peer on a CPU shared with a busy CI machine
		// drops some (NSD answered 93% once). The XDP paths, ours, must
		// keep up; everyone must answer correctly, most of the time.
		minRatio := 0.5
		if r.Server == "xdpns-native" || r.Server == "xdpns-generic" {
			minRatio = 0.95
		}
		if r.AnswerRatio < 0.95 {
			t.Logf("%s %s %s: answered %.1f%% (busy machine?)", r.Scenario, r.Server, r.Generator, 100*r.AnswerRatio)
		}
		if r.Sent == 0 || r.AnswerRatio < minRatio || r.Correct < 1 {
			t.Errorf("%s %s %s: sent %d, answered %d (%.1f%%), %.1f%% %s", r.Scenario, r.Server, r.Generator,
				r.Sent, r.Answered, 100*r.AnswerRatio, 100*r.Correct, expectedRcode(r.Scenario))
		}
		if r.ServerCPU <= 0 {
			t.Errorf("%s %s: server CPU not measured: %+v", r.Scenario, r.Server, r)
		}
		if (r.Latency != nil) != (r.Generator == genDnsperf) {
			t.Errorf("%s %s %s: latency %v", r.Scenario, r.Server, r.Generator, r.Latency)
		}
		xdp := r.Server == "xdpns-native" || r.Server == "xdpns-generic"
		if xdp != (r.InXDP >= 0) || xdp && r.Scenario == "hit" && r.InXDP < 0.95 {
			t.Errorf("%s %s: in XDP %.2f", r.Scenario, r.Server, r.InXDP)
		}
	}

	if err := res.write(&o, new(strings.Builder)); err != nil {
		t.Fatal(err)
	}
	meta, runs, setups, err := report.ReadJSONL(filepath.Join(o.outDir, "runs.jsonl"))
	if err != nil || meta.Mode != "smoke" || len(runs) != len(res.runs) || len(setups) != len(res.setups) {
		t.Errorf("JSON lines: meta %+v, %d runs, %d setups, %v", meta, len(runs), len(setups), err)
	}
	md, err := os.ReadFile(filepath.Join(o.outDir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range o.serverList() {
		if !strings.Contains(string(md), "| "+n+" |") {
			t.Errorf("report lacks %s:\n%s", n, md)
		}
	}

	// Nothing left behind.
	suffix := "-" + strconv.Itoa(os.Getpid())
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "xdpns-hn") && strings.HasSuffix(e.Name(), suffix) {
				t.Errorf("namespace %s left behind", e.Name())
			}
		}
	}
	if kids := children(os.Getpid()); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
	if out, _ := exec.Command("git", "worktree", "list").Output(); strings.Contains(string(out), scratch) {
		t.Errorf("worktree left behind:\n%s", out)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch directory left behind: %v", left)
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, e.Name()+" "+s[:i+1])
		}
	}
	return out
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.add(float64(i))
	}
	l := h.latency()
	for _, c := range []struct{ got, want float64 }{{l.P50, 500}, {l.P90, 900}, {l.P99, 990}, {l.Max, 1000}} {
		if c.got < c.want || c.got > c.want*1.011 {
			t.Errorf("percentile %v, want %v within 1%%", c.got, c.want)
		}
	}
	if len(l.CDF) == 0 || len(l.CDF) > 200 || l.CDF[len(l.CDF)-1].Fraction != 1 {
		t.Errorf("CDF of %d points, last %v", len(l.CDF), l.CDF[len(l.CDF)-1])
	}
	for i := 1; i < len(l.CDF); i++ {
		if l.CDF[i].Micros < l.CDF[i-1].Micros || l.CDF[i].Fraction <= l.CDF[i-1].Fraction {
			t.Fatalf("CDF not increasing at %d: %v", i, l.CDF[i-1:i+1])
		}
	}
}

func TestParsePerf(t *testing.T) {
	out := `[Status] Sending queries (to 198.18.0.1:53)
> NOERROR host1.bench.test. A 0.000530
> NXDOMAIN nx.bench.test. AAAA 0.000374
> T host2.bench.test. A
Statistics:

  Queries sent:         3
  Queries completed:    2 (66.67%)
  Run time (s):         1.000000
`
	h := newHistogram()
	r, err := parsePerf(strings.NewReader(out), h)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 3 || r.Replies != 2 || r.Rcodes["NOERROR"] != 1 || r.Rcodes["NXDOMAIN"] != 1 || h.n != 2 || r.ReplyQPS != 2 {
		t.Errorf("%+v, %d latencies", r, h.n)
	}
}

// TestSmokeCoverage runs each coverage scenario (issue 10: wildcard,
// random-subdomain, referral, nxdomain-nsec, -nsec3, -nsec3-iter,
// rrl-flood) briefly against xdpns with native XDP and knotd with XDP on a
// tiny zone: every server's answers checked, each run counted answers of
// the expected rcodes, rrl-flood counted both networks, nothing left
// behind. It asserts no timing and no XDP share (referrals and DO=1
// negatives are passed to Go today).
func TestSmokeCoverage(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"kxdpgun", "knotd", "nsd", "named", "dnsperf", "ldns-keygen", "ldns-signzone", "nsenter", "taskset", "ip", "git"} {
		testenv.RequireBinary(t, b)
	}
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch)
	o, err := modeDefaults("quick")
	if err != nil {
		t.Fatal(err)
	}
	o.mode = "smoke"
	o.scenarios = "coverage"
	o.servers = "xdpns-native,knot-xdp"
	o.names = 200
	o.duration, o.warm = 600*time.Millisecond, 100*time.Millisecond
	o.rate, o.floodRate = 2000, 4000
	o.lock, o.quietMax = "", 0
	o.outDir = t.TempDir()
	o.command = "go test ./bench/cmd/harness -run TestSmokeCoverage"
	if runtime.NumCPU() < 2 {
		o.serverCPU, o.clientCPU = -1, -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, &o)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.meta.Notes {
		if strings.HasPrefix(n, "failed run") {
			t.Error(n)
		}
	}
	if o.noAFXDP != "" { // knot-xdp ran as knot-udp, kxdpgun as dnsperf (knotxdp.go)
		t.Logf("no AF_XDP here: %s", o.noAFXDP)
	}
	want := len(coverageScenarios) * 2
	if len(res.setups) != want {
		t.Errorf("%d setups, want %d", len(res.setups), want)
	}
	for _, s := range res.setups {
		if !s.Checked || s.Error != "" {
			t.Errorf("setup %+v", s)
		}
	}
	if len(res.runs) != want {
		t.Fatalf("%d runs, want %d", len(res.runs), want)
	}
	seen := map[string]int{}
	for _, r := range res.runs {
		seen[r.Scenario]++
		if r.Sent == 0 || r.Answered == 0 || r.Correct < 0.99 {
			t.Errorf("%s %s: sent %d, answered %d, %.1f%% %s", r.Scenario, r.Server, r.Sent, r.Answered, 100*r.Correct, expectedRcode(r.Scenario))
		}
		if (r.Server == "xdpns-native") != (r.InXDP >= 0) {
			t.Errorf("%s %s: in XDP %.2f", r.Scenario, r.Server, r.InXDP)
		}
		if r.Scenario != "rrl-flood" {
			continue
		}
		if len(r.Sources) != 2 || r.Note == "" {
			t.Fatalf("rrl-flood %s: sources %+v, note %q", r.Server, r.Sources, r.Note)
		}
		for _, src := range r.Sources {
			if src.Sent == 0 || src.Answered == 0 || src.Sent != src.Answered+src.Slipped+src.Dropped+src.Other {
				t.Errorf("rrl-flood %s: %+v", r.Server, src)
			}
		}
	}
	for _, sc := range coverageScenarios {
		if seen[sc] != 2 {
			t.Errorf("%s: %d runs, want 2", sc, seen[sc])
		}
	}
	if err := res.write(&o, new(strings.Builder)); err != nil {
		t.Fatal(err)
	}
	suffix := "-" + strconv.Itoa(os.Getpid())
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "xdpns-hn") && strings.HasSuffix(e.Name(), suffix) {
				t.Errorf("namespace %s left behind", e.Name())
			}
		}
	}
	if kids := children(os.Getpid()); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch directory left behind: %v", left)
	}
}

// TestWithoutAFXDP: on a kernel that refuses Knot's XDP, knot-xdp becomes
// knot-udp (once), and kxdpgun's runs become dnsperf's without repeats.
func TestWithoutAFXDP(t *testing.T) {
	o, err := modeDefaults("full")
	if err != nil {
		t.Fatal(err)
	}
	o.servers = "xdpns-native,knot-xdp,nsd"
	o.withoutAFXDP("test")
	if o.servers != "xdpns-native,knot-udp,nsd" {
		t.Errorf("servers %q", o.servers)
	}
	o.servers = "knot-xdp,knot-udp"
	o.withoutAFXDP("test")
	if o.servers != "knot-udp" {
		t.Errorf("servers %q", o.servers)
	}
	for _, sc := range allScenarios {
		lds := o.loads(sc)
		if len(lds) == 0 {
			t.Errorf("%s: no runs", sc)
		}
		seen := map[load]bool{}
		for _, ld := range lds {
			if ld.gen == genKxdpgun || seen[ld] {
				t.Errorf("%s: %v", sc, lds)
			}
			seen[ld] = true
		}
	}
}
