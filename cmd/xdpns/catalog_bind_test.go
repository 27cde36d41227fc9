package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
// 100 members (and the member zones); xdpns consumes it (catalog:
// consume): every member is transferred and served. Then nsupdate on the
// catalog adds a member and removes one: the catalog comes by IXFR, the
// new member is transferred, the removed one is no longer served, and no
// untouched member is transferred again. Last, with named stopped, a
// restarted xdpns serves every member from its state directory.
func TestCatalogConsumerNamed(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "named")
	dir := t.TempDir()
	port := freePort(t)
	const n = 1000
	member := func(i int) string { return fmt.Sprintf("member%d.example.", i) }
	cat := "$ORIGIN catalog.example.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\nversion TXT \"2\"\n"
	var nz []namedZone
	for i := range n + 1 {
		if i < n {
			cat += fmt.Sprintf("m%d.zones PTR %s\n", i, member(i))
		}
		nz = append(nz, namedZone{name: member(i), text: zoneText(member(i), 1, fmt.Sprintf("192.0.2.%d", i%250+1))})
	}
	nz = append(nz, namedZone{name: "catalog.example.", text: cat, allowUpdate: "127.0.0.1;"})
	nm := startTestNamed(t, namedConfig{dir: filepath.Join(dir, "named"), notifyPort: port, zones: nz})

	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
xfr:
  state-dir: state
  timers: {refresh-min: 1h, retry-min: 1h, jitter: 0}
zones:
  - name: catalog.example.
    catalog: consume
    primaries: ["%s"]
control:
  socket: %s
`, port, nm.Addr(), filepath.Join(dir, "control.sock")))
	h := startServe(t, cfg, port)
	// served polls xdpns until each name answers its SOA (want) or
	// REFUSED (!want), bounded.
	served := func(step string, names []string, want bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for _, name := range names {
			for {
				r, err := h.query(name, dns.TypeSOA)
				if err == nil && want && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
					break
				}
				if err == nil && !want && r.Rcode == dns.RcodeRefused {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s SOA: %v %v (want served %v)\n%s", step, name, r, err, want, tail(h.stderr.String(), 60))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	var names []string
	for i := range n {
		names = append(names, member(i))
	}
	start := time.Now()
	served("first", names, true)
	t.Logf("%d members served %v after start", n, time.Since(start).Round(time.Millisecond))
	per, _ := memberUpdates(h.stderr.String())
	for _, name := range names {
		if per[name] != 1 {
			t.Errorf("%s transferred %d times, want 1", name, per[name])
		}
	}
	served("not a member", []string{member(n)}, false)

	// nsupdate: one member more, member5 out.
	nm.update(t, "catalog.example.", func(m *dns.Msg) {
		m.Insert([]dns.RR{mustRR(t, fmt.Sprintf("m%d.zones.catalog.example. 0 IN PTR %s", n, member(n)))})
		m.Remove([]dns.RR{mustRR(t, fmt.Sprintf("m5.zones.catalog.example. 0 IN PTR %s", member(5)))})
	})
	served("added", []string{member(n)}, true)
	served("removed", []string{member(5)}, false)
	per, kinds := memberUpdates(h.stderr.String())
	if kinds["catalog.example."]["IXFR"] != 1 {
		t.Errorf("catalog transfers %v, want one IXFR after the first AXFR", kinds["catalog.example."])
	}
	for i, name := range names {
		if i != 5 && per[name] != 1 {
			t.Errorf("untouched %s transferred %d times, want 1", name, per[name])
		}
	}
	if per[member(n)] != 1 {
		t.Errorf("added member transferred %d times", per[member(n)])
	}

	// A new unique-id for member7: reset (RFC 9432 §5.3): its state is
	// dropped and it is transferred afresh; still served after.
	nm.update(t, "catalog.example.", func(m *dns.Msg) {
		m.Remove([]dns.RR{mustRR(t, fmt.Sprintf("m7.zones.catalog.example. 0 IN PTR %s", member(7)))})
		m.Insert([]dns.RR{mustRR(t, fmt.Sprintf("m7b.zones.catalog.example. 0 IN PTR %s", member(7)))})
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if per, _ = memberUpdates(h.stderr.String()); per[member(7)] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reset member7 transferred %d times, want 2\n%s", per[member(7)], tail(h.stderr.String(), 40))
		}
	}
	served("reset", []string{member(7)}, true)
	if !strings.Contains(h.stderr.String(), "action=reset zone="+member(7)) {
		t.Errorf("no reset logged for %s", member(7))
	}

	// Restart without the primary: the members come from the state
	// directory (the catalog's own state says which).
	h.stop()
	nm.Stop()
	h = startServe(t, cfg, port)
	live := append(names[:5:5], names[6:]...)
	live = append(live, member(n))
	start = time.Now()
	served("after restart", live, true)
	served("after restart, removed", []string{member(5)}, false)
	took := time.Since(start).Round(time.Millisecond)
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
	served("catalog dropped", live, false)
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
