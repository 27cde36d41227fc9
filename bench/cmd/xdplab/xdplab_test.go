package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// TestMain lets the test binary be the serve-inproc server too: the
// benchmark starts os.Executable() for it.
func TestMain(m *testing.M) {
	runInproc()
	os.Exit(m.Run())
}

// smokeOptions is a run of about a second per server at a low rate, on a
// small zone, without the benchmark lock (it measures nothing).
func smokeOptions(t *testing.T) options {
	o := defaults()
	o.names, o.rounds = 200, 1
	o.duration, o.warm = 1500*time.Millisecond, 250*time.Millisecond
	o.rate, o.saturation, o.sweep = 2000, 0, ""
	o.lock, o.quietMax = "", 0
	o.jsonPath = filepath.Join(t.TempDir(), "xdplab.jsonl")
	o.command = "go test ./bench/cmd/xdplab"
	if runtime.NumCPU() < 2 {
		o.serverCPU, o.clientCPU = -1, -1
	}
	return o
}

func requireLab(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"kxdpgun", "kdig", "knotd", "nsenter", "taskset", "ip"} {
		testenv.RequireBinary(t, b)
	}
}

// TestSmoke builds the lab for each of the four servers (xdpns built from
// the tree), checks their answers with kdig, runs kxdpgun against each for
// 1.5 s at 2000 q/s and at 3000 q/s, checks that every query got a NOERROR answer (from
// XDP for xdpns with XDP), that the figures and reports are complete, and
// that nothing is left behind. It asserts no timing.
func TestSmoke(t *testing.T) {
	requireLab(t)
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch) // run's scratch directory goes here: checked empty at the end
	o := smokeOptions(t)
	o.sweep = "3000"
	res := smoke(t, &o, 4, 2)
	for _, s := range res.Servers {
		if s.XDP != "" && s.AttachedBy == "" {
			t.Errorf("%s: XDP attached by nobody", s.Name)
		}
	}
	var md bytes.Buffer
	markdown(&md, &o, res)
	for _, want := range []string{"| xdpns-native | ", "| xdpns-generic | ", "| xdpns-user | ", "| knot-xdp | ", "    go test ./bench/cmd/xdplab", "goal, server CPU", "best vs Knot XDP's best"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	kinds := map[string]int{}
	f, err := os.Open(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("JSON line %q: %v", sc.Text(), err)
		}
		kinds[m["kind"].(string)]++
	}
	if kinds["machine"] != 1 || kinds["run"] != 8 || kinds["summary"] != 8 || kinds["peak"] != 4 || len(kinds) != 4 {
		t.Errorf("JSON lines by kind: %v, want machine 1, run 8, summary 8, peak 4", kinds)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch directory left behind: %v", left)
	}
}

// TestSmokeHarnessAttach runs xdpns native with XDP attached by this
// program's serve-inproc (the path taken when xdpns serve does not attach).
func TestSmokeHarnessAttach(t *testing.T) {
	requireLab(t)
	o := smokeOptions(t)
	o.servers, o.attach = "xdpns-native", "harness"
	res := smoke(t, &o, 1, 1)
	if s := res.Servers[0]; s.AttachedBy != "harness" || s.Mode != "native" {
		t.Errorf("XDP %s attached by %q, want native by the harness", s.Mode, s.AttachedBy)
	}
}

// smoke runs the benchmark with o and checks every run of the n servers,
// each run perServer times.
func smoke(t *testing.T, o *options, n, perServer int) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Servers) != n || len(res.Runs) != n*perServer {
		t.Fatalf("%d servers, %d runs; want %d and %d", len(res.Servers), len(res.Runs), n, n*perServer)
	}
	for i, r := range res.Runs {
		s := res.Servers[i%n]
		if r.Sent == 0 || r.AnswerRatio < 0.95 || r.Rcodes["NOERROR"] != r.Replies {
			t.Errorf("%s: sent %d, replies %d (%.1f%%), rcodes %v", r.Server, r.Sent, r.Replies, 100*r.AnswerRatio, r.Rcodes)
		}
		if r.ServerCPU() <= 0 || r.ClientGun <= 0 || r.Window <= 0 {
			t.Errorf("%s: CPU not measured: %+v", r.Server, r)
		}
		if s.XDP != "" && !s.Knot && r.XDPAnswers < r.Replies {
			t.Errorf("%s: %d answers from XDP for %d replies", r.Server, r.XDPAnswers, r.Replies)
		}
	}
	for _, s := range res.Servers {
		for _, ns := range []string{s.v.ServerNS, s.v.ClientNS} {
			if _, err := os.Stat("/run/netns/" + ns); err == nil {
				t.Errorf("%s: namespace %s left behind", s.Name, ns)
			}
		}
		if s.proc.Exited() == nil {
			t.Errorf("%s: pid %d still running", s.Name, s.proc.Pid())
		}
	}
	return res
}
