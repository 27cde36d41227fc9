package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// memberUpdates counts, per zone, the transfers xdpns logged ("zone
// updated"), and by kind.
func memberUpdates(log string) (per map[string]int, kinds map[string]map[string]int) {
	per, kinds = map[string]int{}, map[string]map[string]int{}
	zoneRe, kindRe := regexp.MustCompile(`zone=(\S+)`), regexp.MustCompile(`kind=(\S+)`)
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="zone updated"`) {
			continue
		}
		zm, km := zoneRe.FindStringSubmatch(line), kindRe.FindStringSubmatch(line)
		if zm == nil || km == nil {
			continue
		}
		per[zm[1]]++
		if kinds[zm[1]] == nil {
			kinds[zm[1]] = map[string]int{}
		}
		kinds[zm[1]][km[1]]++
	}
	return per, kinds
}

// TestCatalogConsumerNamed: a real named 9.18 primary serves a catalog of
// 1000 members (and the member zones); xdpns consumes it (catalog:
// consume): every member is transferred and served. Then nsupdate on the
// catalog adds 100 members and removes 100, in a few UPDATE messages: the
// catalog comes by IXFR only, every added member is served and every
// removed one REFUSED within a bound (the time is logged), and no
// untouched member is transferred again. Last, with named stopped, a
// restarted xdpns serves every member from its state directory.
//
// Timers: refresh-min 1h keeps a refresh from re-transferring anything
// during the test (the transfer counts would lie otherwise); retries are
// quick (1-2 s) because under load a SOA query or a transfer can time out
// once, and with an hour's retry that zone (or the catalog's IXFR) would
// not come back within the test: that was the flake. A retry that finds
// the serial unchanged transfers nothing, so the counts stay exact.
func TestCatalogConsumerNamed(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "named")
	nsupdate := testenv.RequireBinary(t, "nsupdate")
	dir := t.TempDir()
	port := freePort(t)
	const n, churn = 1000, 100
	member := func(i int) string { return fmt.Sprintf("member%d.example.", i) }
	cat := "$ORIGIN catalog.example.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\nversion TXT \"2\"\n"
	var nz []namedZone
	// member0..n-1 in the catalog; n..n+churn-1 zones named serves, added
	// to the catalog later.
	for i := range n + churn {
		if i < n {
			cat += fmt.Sprintf("m%d.zones PTR %s\n", i, member(i))
		}
		nz = append(nz, namedZone{name: member(i), text: zoneText(member(i), 1, fmt.Sprintf("192.0.2.%d", i%250+1))})
	}
	up := tsigKey{"update.test.", "hmac-sha256", randomSecret()}
	nz = append(nz, namedZone{name: "catalog.example.", text: cat, allowUpdate: fmt.Sprintf("key %q;", up.name)})
	nm := startTestNamed(t, namedConfig{dir: filepath.Join(dir, "named"), notifyPort: port, zones: nz, keys: []tsigKey{up}})

	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
xfr:
  state-dir: state
  timers: {refresh-min: 1h, retry-min: 1s, retry-max: 2s, jitter: 0}
zones:
  - name: catalog.example.
    catalog: consume
    primaries: ["%s"]
control:
  socket: %s
`, port, nm.Addr(), filepath.Join(dir, "control.sock")))
	h := startServe(t, cfg, port)
	// done reports whether name answers its SOA (want) or REFUSED (!want).
	done := func(name string, want bool) bool {
		r, err := h.query(name, dns.TypeSOA)
		if err != nil {
			return false
		}
		if want {
			return r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
		}
		return r.Rcode == dns.RcodeRefused
	}
	// served polls xdpns until each name is done, bounded; it returns
	// when the last one was. Each round asks every name not yet done, so
	// the time is that of the last, not of a sequential walk.
	served := func(step string, names []string, want bool, bound time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		pending := names
		for {
			var left []string
			for _, name := range pending {
				if !done(name, want) {
					left = append(left, name)
				}
			}
			if pending = left; len(pending) == 0 {
				return time.Since(start)
			}
			if time.Since(start) > bound {
				r, err := h.query(pending[0], dns.TypeSOA)
				t.Fatalf("%s: %d names not as wanted (served %v) after %v; %s SOA: %v %v\n%s", step, len(pending), want, bound, pending[0], r, err, tail(h.stderr.String(), 60))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var names []string
	for i := range n {
		names = append(names, member(i))
	}
	took := served("first", names, true, 120*time.Second)
	t.Logf("%d members served %v after start", n, took.Round(time.Millisecond))
	per, _ := memberUpdates(h.stderr.String())
	for _, name := range names {
		if per[name] != 1 {
			t.Errorf("%s transferred %d times, want 1", name, per[name])
		}
	}
	served("not a member", []string{member(n)}, false, 10*time.Second)

	// nsupdate: members n..n+churn-1 in, members churn..2*churn-1 out, in
	// four UPDATE messages (four catalog serials) from one nsupdate run.
	var added, removed, cmds []string
	const batches = 4
	for i := range churn {
		a, r := n+i, churn+i
		added, removed = append(added, member(a)), append(removed, member(r))
		cmds = append(cmds, fmt.Sprintf("update add m%d.zones.catalog.example. 0 IN PTR %s", a, member(a)),
			fmt.Sprintf("update delete m%d.zones.catalog.example. IN PTR %s", r, member(r)))
		if (i+1)%(churn/batches) == 0 && i+1 < churn {
			cmds = append(cmds, "send")
		}
	}
	start := time.Now()
	if err := nm.nsupdate(context.Background(), nsupdate, up, "catalog.example.", cmds); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	// The issue asks for a second; the bound leaves room for a loaded CI
	// machine, the log has the real figure.
	bound := 10 * time.Second
	served("added", added, true, bound)
	served("removed", removed, false, bound)
	converged := time.Since(start)
	t.Logf("nsupdate of %d added and %d removed members in %d UPDATEs took %v; all served or REFUSED %v after nsupdate began",
		churn, churn, batches, sent.Round(time.Millisecond), converged.Round(time.Millisecond))
	if converged > bound {
		t.Errorf("converged after %v, want within %v", converged, bound)
	}
	if s, err := soaSerial(context.Background(), &dns.Client{Timeout: 2 * time.Second}, nm.Addr(), "catalog.example."); err != nil || s != 1+batches {
		t.Errorf("named's catalog serial %d %v, want %d (one per UPDATE)", s, err, 1+batches)
	}
	waitCatalogSerial(t, h, "catalog.example.", 1+batches)
	per, kinds := memberUpdates(h.stderr.String())
	// Each version by IXFR (NOTIFYs that come close together may be
	// answered by one IXFR spanning several serials), never AXFR again.
	if k := kinds["catalog.example."]; k["AXFR"] != 1 || k["IXFR"] < 1 || k["IXFR"] > batches {
		t.Errorf("catalog transfers %v, want the first AXFR, then 1 to %d IXFRs", k, batches)
	}
	gone := map[string]bool{}
	for _, name := range removed {
		gone[name] = true
	}
	for _, name := range names {
		if !gone[name] && per[name] != 1 {
			t.Errorf("untouched %s transferred %d times, want 1", name, per[name])
		}
	}
	for _, name := range added {
		if per[name] != 1 {
			t.Errorf("added member %s transferred %d times, want 1", name, per[name])
		}
	}
	if a, r := catalogApplied(h.stderr.String()); a != n+churn || r != churn {
		t.Errorf("catalog applied: %d added, %d removed in all, want %d and %d", a, r, n+churn, churn)
	}

	// A new unique-id for member7: reset (RFC 9432 §5.3): its state is
	// dropped and it is transferred afresh; still served after.
	if err := nm.nsupdate(context.Background(), nsupdate, up, "catalog.example.", []string{
		fmt.Sprintf("update delete m7.zones.catalog.example. IN PTR %s", member(7)),
		fmt.Sprintf("update add m7b.zones.catalog.example. 0 IN PTR %s", member(7)),
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if per, _ = memberUpdates(h.stderr.String()); per[member(7)] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reset member7 transferred %d times, want 2\n%s", per[member(7)], tail(h.stderr.String(), 40))
		}
	}
	served("reset", []string{member(7)}, true, 30*time.Second)
	if !strings.Contains(h.stderr.String(), "action=reset zone="+member(7)) {
		t.Errorf("no reset logged for %s", member(7))
	}

	// Restart without the primary: the members come from the state
	// directory (the catalog's own state says which).
	h.stop()
	nm.Stop()
	h = startServe(t, cfg, port)
	var live []string
	for _, name := range names {
		if !gone[name] {
			live = append(live, name)
		}
	}
	live = append(live, added...)
	start = time.Now()
	served("after restart", live, true, 60*time.Second)
	served("after restart, removed", removed, false, 10*time.Second)
	took = time.Since(start).Round(time.Millisecond)
	// In line at start: the members are in before the listeners open.
	log := h.stderr.String()
	applied, listening := strings.Index(log, `msg="catalog applied"`), strings.Index(log, `msg=serving`)
	if applied < 0 || listening < 0 || applied > listening || strings.Count(log, `msg="zone loaded from disk"`) < len(names) {
		t.Errorf("restart: catalog applied at %d, serving at %d, %d zones from disk:\n%s", applied, listening,
			strings.Count(log, `msg="zone loaded from disk"`), tail(log, 8))
	}
	// A reload without the catalog: its members go too.
	writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
xfr:
  state-dir: state
zones:
  - {name: other.example., primaries: ["%s"]}
control:
  socket: %s
`, port, nm.Addr(), filepath.Join(dir, "control.sock")))
	h.sigs <- syscall.SIGHUP
	served("catalog dropped", live, false, 30*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(filepath.Join(dir, "state", "member0.example.zone"))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state of a removed member kept: %v", err)
		}
	}
	t.Logf("after restart without the primary, %d members served from disk in %v", len(live), took)
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// waitCatalogSerial waits (at most 10 s) until xdpns serves the catalog
// at serial.
func waitCatalogSerial(t *testing.T, h *serveHarness, name string, serial uint32) {
	t.Helper()
	var got uint32
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r, err := h.query(name, dns.TypeSOA)
		if err == nil && len(r.Answer) == 1 {
			if s, ok := r.Answer[0].(*dns.SOA); ok {
				if got = s.Serial; got == serial {
					return
				}
			}
		}
	}
	t.Fatalf("%s served at serial %d, want %d\n%s", name, got, serial, tail(h.stderr.String(), 30))
}

// catalogApplied sums the added and removed counts of the "catalog
// applied" lines.
func catalogApplied(log string) (added, removed int) {
	re := regexp.MustCompile(`msg="catalog applied".* added=(\d+) removed=(\d+)`)
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		a, _ := strconv.Atoi(m[1])
		r, _ := strconv.Atoi(m[2])
		added, removed = added+a, removed+r
	}
	return added, removed
}
