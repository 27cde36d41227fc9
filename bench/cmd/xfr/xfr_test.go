package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// TestSmoke runs the whole benchmark on a tiny zone (1000 records, 3
// updates): named as primary; xdpns (built from the tree), Knot and NSD as
// secondaries. It checks that each loaded the zone, saw every change and
// ended with the primary's serial, that the reports are complete, and that
// nothing is left behind. It asserts no timing.
func TestSmoke(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"named", "knotd", "nsd"} {
		testenv.RequireBinary(t, b)
	}
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch) // run's scratch directory goes here: checked empty at the end
	o := defaults()
	o.records, o.updates = 1000, 3
	o.loadTimeout = time.Minute
	o.jsonPath = filepath.Join(t.TempDir(), "xfr.jsonl")
	o.command = "go test ./bench/cmd/xfr"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	res, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1003 {
		t.Errorf("primary serves %d records, want 1003", res.Records)
	}
	if len(res.Servers) != 3 {
		t.Fatalf("%d secondaries measured, want 3", len(res.Servers))
	}
	for _, s := range res.Servers {
		if !s.Converged || len(s.seen()) != o.updates || s.Serial != uint32(1+o.updates) {
			t.Errorf("%s: saw %d of %d changes, serial %d (want %d), converged %v", s.Name, len(s.seen()), o.updates, s.Serial, 1+o.updates, s.Converged)
		}
		if s.Load <= 0 || s.Mem.RSS <= 0 || s.Mem.PSS <= 0 {
			t.Errorf("%s: load %v, memory %+v", s.Name, s.Load, s.Mem)
		}
	}
	if l := res.Servers[0].XdpnsLog; l == nil || len(l.IXFR) != o.updates || l.AXFR <= 0 {
		t.Errorf("xdpns log: %+v, want an AXFR and %d IXFRs", l, o.updates)
	}

	var md bytes.Buffer
	if err := markdown(&md, o, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| xdpns | ", "| knot | ", "| nsd | ", "    go test ./bench/cmd/xfr", "3/3", "xdpns's log"} {
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
	if want := map[string]int{"run": 1, "load": 3, "update": 3 * o.updates, "summary": 3}; !equalMaps(kinds, want) {
		t.Errorf("JSON lines by kind: %v, want %v", kinds, want)
	}

	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch directory left behind: %v", left)
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseXdpnsLog(t *testing.T) {
	text := `time=2026-11-25T15:20:51.343Z level=INFO msg="zone updated" component=xfr zone=bench.test. serial=1 from_serial=0 kind=AXFR primary=127.0.0.1:25838 took=396.795ms
time=2026-11-25T15:20:54.088Z level=INFO msg="zone updated" component=xfr zone=bench.test. serial=2 from_serial=1 kind=IXFR primary=127.0.0.1:25838 took=23.428ms
time=2026-11-25T15:20:54.093Z level=DEBUG msg="journal appended" component=xfr zone=bench.test. serial=2 records=3 took=4.96ms
time=2026-11-25T15:20:54.201Z level=INFO msg="zone updated" component=xfr zone=bench.test. serial=3 from_serial=2 kind=IXFR primary=127.0.0.1:25838 took=3.904ms
`
	l := parseXdpnsLog(text)
	if l.AXFR != 396795*time.Microsecond || len(l.IXFR) != 2 || l.IXFR[1] != 3904*time.Microsecond || len(l.Journal) != 1 || l.Journal[0] != 4960*time.Microsecond {
		t.Errorf("parseXdpnsLog = %+v", l)
	}
}

func TestChanges(t *testing.T) {
	const names = 500
	seen := map[string]bool{}
	for i := range 1000 {
		c := changeFor(i, names)
		if seen[c.want.String()] {
			t.Fatalf("change %d reuses address %s", i, c.want)
		}
		seen[c.want.String()] = true
		if c.add != (i%2 == 0) || !strings.HasSuffix(c.qname, "."+origin) {
			t.Errorf("change %d: %v", i, c)
		}
	}
}
