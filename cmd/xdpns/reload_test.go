package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// loopPrimary is an in-process primary on 127.0.0.1 serving zoneText for
// any zone it is asked about, at a serial and address set per zone, and
// counting the transfers of each.
type loopPrimary struct {
	addr netip.AddrPort

	mu     sync.Mutex
	serial map[string]int
	www    map[string]string
	xfrs   map[string]int
}

func startLoopPrimary(t *testing.T) *loopPrimary {
	t.Helper()
	p := &loopPrimary{serial: map[string]int{}, www: map[string]string{}, xfrs: map[string]int{}}
	p.addr = testenv.ServeDNS(t, dns.HandlerFunc(p.serve), nil)
	return p
}

func (p *loopPrimary) set(name string, serial int, www string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial[name], p.www[name] = serial, www
}

func (p *loopPrimary) transfers(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.xfrs[name]
}

func (p *loopPrimary) serve(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		return
	}
	name := dns.CanonicalName(q.Question[0].Name)
	qt := q.Question[0].Qtype
	p.mu.Lock()
	serial, www := p.serial[name], p.www[name]
	if qt == dns.TypeAXFR || qt == dns.TypeIXFR {
		p.xfrs[name]++
	}
	p.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if serial == 0 {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	var rrs []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(zoneText(name, serial, www)), name, "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	switch qt {
	case dns.TypeSOA:
		m.Answer = rrs[:1]
	case dns.TypeAXFR, dns.TypeIXFR: // a full zone, AXFR-style for IXFR
		m.Answer = append(rrs, rrs[0])
	default:
		m.Rcode = dns.RcodeRefused
	}
	_ = w.WriteMsg(m)
}

// reloadConf is a serve configuration with secondaries of the primaries
// given by zone name (a zone without a primary is served from NAME.zone).
func reloadConf(port int, sock, extra string, zones []string, primaries map[string]netip.AddrPort) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: [\"127.0.0.1:%d\"]\n  udp-sockets: 1\nxfr:\n  state-dir: state\n%scontrol:\n  socket: %s\nzones:\n", port, extra, sock)
	for _, z := range zones {
		if p, ok := primaries[z]; ok {
			fmt.Fprintf(&b, "  - name: %s\n    primaries: [\"%s\"]\n", z, p)
		} else {
			fmt.Fprintf(&b, "  - {name: %s, file: %szone}\n", z, z)
		}
	}
	return b.String()
}

// countLog counts log lines with msg and zone.
func countLog(log, msg, zone string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="`+msg+`"`) && strings.Contains(l, "zone="+zone+" ") {
			n++
		}
	}
	return n
}

// TestServeReloadSecondaries: a reload touches only the secondaries it
// changes. Adding one transfers it and leaves the others alone (no
// transfer, no load from disk, no new version served); changing one's
// primary transfers from the new primary; removing one stops serving it;
// a change of a shared xfr setting rebuilds the Manager as before.
func TestServeReloadSecondaries(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	sock := filepath.Join(dir, "control.sock")
	p1, p2 := startLoopPrimary(t), startLoopPrimary(t)
	const n = 5
	var zones []string
	primaries := map[string]netip.AddrPort{}
	for i := range n + 1 {
		z := fmt.Sprintf("z%d.example.", i)
		zones = append(zones, z)
		primaries[z] = p1.addr
		p1.set(z, 1, fmt.Sprintf("203.0.113.%d", 10+i))
	}
	cfg := writeFile(t, dir, "xdpns.yaml", reloadConf(port, sock, "", zones[:n], primaries))
	h := startServe(t, cfg, port)
	for i, z := range zones[:n] {
		h.waitAnswer("www."+z, fmt.Sprintf("203.0.113.%d", 10+i))
	}
	for _, z := range zones[:n] {
		waitStatus(t, sock, z, func(r zoneRow) bool { return r.State == "ok" })
	}
	reload := func(text, want string) {
		t.Helper()
		writeFile(t, dir, "xdpns.yaml", text)
		code, stdout, stderr := runCmd(t, "zone", "reload", "-s", sock)
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Fatalf("reload: exit %d, want %q\n%s%s", code, want, stdout, stderr)
		}
	}
	// unchanged checks that the zones were neither transferred, loaded nor
	// served again since the first transfer.
	unchanged := func(what string, names ...string) {
		t.Helper()
		log := h.stderr.String()
		for _, z := range names {
			if x, upd, disk := p1.transfers(z), countLog(log, "zone updated", z), countLog(log, "zone loaded from disk", z); x != 1 || upd != 1 || disk != 0 {
				t.Errorf("%s: %s: %d transfers, %d versions, %d loads from disk; want 1, 1, 0", what, z, x, upd, disk)
			}
		}
	}

	// Add one.
	reload(reloadConf(port, sock, "", zones, primaries), "secondary zones: 1 added, 0 removed, 0 changed, the others untouched")
	h.waitAnswer("www."+zones[n], fmt.Sprintf("203.0.113.%d", 10+n))
	h.waitLog(`msg="secondary zones reconfigured; the others untouched" component=serve added=1 removed=0 changed=0 untouched=5`)
	unchanged("after adding a zone", zones[:n]...)

	// Change one's primary: the new one has a newer serial.
	primaries[zones[0]] = p2.addr
	p2.set(zones[0], 2, "203.0.113.99")
	reload(reloadConf(port, sock, "", zones, primaries), "secondary zones: 0 added, 0 removed, 1 changed")
	h.waitAnswer("www."+zones[0], "203.0.113.99")
	h.waitLog(`added=0 removed=0 changed=1 untouched=5`)
	row := waitStatus(t, sock, zones[0], func(r zoneRow) bool { return r.Serial == 2 })
	if row.Source != p2.addr.String() {
		t.Errorf("%s after its primary changed: source %s, want %s", zones[0], row.Source, p2.addr)
	}
	unchanged("after changing a primary", zones[1:]...)

	// Remove one: no longer answered.
	reload(reloadConf(port, sock, "", zones[:n], primaries), "reloaded: 5 zones")
	if r, err := h.query("www."+zones[n], dns.TypeA); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("removed zone: %v %v", r, err)
	}
	if resp := zoneStatusJSON(t, sock, zones[n]); resp.OK {
		t.Errorf("status of the removed zone: %+v", resp)
	}
	unchanged("after removing a zone", zones[1:n]...)

	// A secondary becomes a file zone, and back, the others untouched.
	writeFile(t, dir, zones[1]+"zone", zoneText(zones[1], 7, "203.0.113.77"))
	delete(primaries, zones[1])
	reload(reloadConf(port, sock, "", zones[:n], primaries), "reloaded: 5 zones, 1 files loaded")
	h.waitAnswer("www."+zones[1], "203.0.113.77")
	if rows := zoneStatusJSON(t, sock, zones[1]).Zones; len(rows) != 1 || rows[0].Kind != "file" {
		t.Errorf("%s after becoming a file zone: %+v", zones[1], rows)
	}
	primaries[zones[1]] = p1.addr
	reload(reloadConf(port, sock, "", zones[:n], primaries), "reloaded: 5 zones")
	h.waitAnswer("www."+zones[1], "203.0.113.11")
	waitStatus(t, sock, zones[1], func(r zoneRow) bool { return r.Kind == "secondary" && r.Serial == 1 && r.FromDisk })
	unchanged("after a file zone switch", zones[2:n]...)

	// A shared setting: the Manager is rebuilt, every zone served again
	// from disk.
	reload(reloadConf(port, sock, "  max-transfers: 3\n", zones[:n], primaries), "secondary zones restarted")
	h.waitLog(`reason="xfr: settings shared by every zone changed; a new Manager is needed: max transfers 10→3"`)
	for deadline := time.Now().Add(5 * time.Second); countLog(h.stderr.String(), "zone loaded from disk", zones[2]) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not loaded from disk after the rebuild:\n%s", zones[2], h.stderr)
		}
	}
	h.waitAnswer("www."+zones[0], "203.0.113.99")
}
