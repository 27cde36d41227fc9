package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/catalog"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
	"github.com/xdpns/xdpns/userspace/zone"
)

func TestProducedSerial(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	a := []catalog.Entry{{Zone: "a."}}
	b := []catalog.Entry{{Zone: "a."}, {Zone: "b."}}
	s1 := producedSerial("serial.test.", a, now)
	if s1 != 1_000_000 {
		t.Fatal(s1)
	}
	if s := producedSerial("serial.test.", a, now.Add(time.Hour)); s != s1 {
		t.Fatalf("unchanged set: serial %d, want %d", s, s1)
	}
	if s := producedSerial("serial.test.", b, now); s != s1+1 {
		t.Fatalf("changed in the same second: %d", s)
	}
	if s := producedSerial("serial.test.", a, now.Add(time.Hour)); s != s1+3600 {
		t.Fatalf("changed later: %d", s)
	}
}

// catalogConfig is an xdpns configuration serving n file zones
// member<i>.example. (the first with group gold) and a produced catalog
// of them, transferable from 127.0.0.1 and NOTIFYed to notify.
func catalogConfig(t *testing.T, dir string, port int, n, serial int, notify string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: [\"127.0.0.1:%d\"]\n  udp-sockets: 1\ncontrol:\n  socket: %s\nzones:\n", port, filepath.Join(dir, "control.sock"))
	fmt.Fprintf(&b, "  - name: catalog.xdpns.invalid.\n    catalog: produce\n    allow-transfer: {from: [127.0.0.1/32]}\n    notify: [%q]\n", notify)
	for i := range n {
		name := fmt.Sprintf("member%d.example.", i)
		writeFile(t, dir, name+"zone", zoneText(name, serial, fmt.Sprintf("192.0.2.%d", i+1)))
		fmt.Fprintf(&b, "  - name: %s\n    file: %szone\n    allow-transfer: {from: [127.0.0.1/32]}\n    notify: [%q]\n", name, name, notify)
		if i == 0 {
			b.WriteString("    group: gold\n")
		}
	}
	return writeFile(t, dir, "xdpns.yaml", b.String())
}

// TestCatalogProducerKnot: a real knotd 3.2 consumes the catalog xdpns
// produces (catalog-role: interpret): it serves every member, transferred
// from xdpns, with the template the member's group names; a zone added to
// and one removed from xdpns's configuration (SIGHUP) arrive at knotd
// through the catalog's new serial and NOTIFY.
func TestCatalogProducerKnot(t *testing.T) {
	testenv.RequireBinary(t, "knotd")
	dir := t.TempDir()
	port, knotPort := freePort(t), peer.FreePort(t)
	knot := fmt.Sprintf("127.0.0.1:%d", knotPort)
	const n = 20
	cfg := catalogConfig(t, dir, port, n, 1, knot)
	h := startServe(t, cfg, port)
	h.waitAnswer("www.member0.example.", "192.0.2.1")

	kdir := filepath.Join(dir, "knot")
	if err := os.MkdirAll(filepath.Join(kdir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	kconf := fmt.Sprintf(`server:
    rundir: "%[1]s"
    pidfile: "%[1]s/knot.pid"
    listen: 127.0.0.1@%[2]d
database:
    storage: "%[1]s/db"
control:
    listen: "%[1]s/knot.sock"
log:
  - target: stderr
    any: info
remote:
  - id: xdpns
    address: 127.0.0.1@%[3]d
acl:
  - id: notify
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "%[1]s"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    semantic-checks: off
  - id: member
    storage: "%[1]s"
    zonefile-sync: -1
    zonefile-load: none
    master: xdpns
    acl: notify
  - id: gold
    storage: "%[1]s"
    zonefile-sync: -1
    zonefile-load: none
    master: xdpns
    acl: notify
zone:
  - domain: catalog.xdpns.invalid.
    master: xdpns
    acl: notify
    catalog-role: interpret
    catalog-template: [member, gold]
`, kdir, knotPort, port)
	kc := filepath.Join(kdir, "knot.conf")
	if err := os.WriteFile(kc, []byte(kconf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProcess(t, "knotd", "-c", kc)

	soa := func(name string) (uint32, int) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSOA)
		r, _, err := (&dns.Client{Timeout: 300 * time.Millisecond}).Exchange(m, knot)
		if err != nil {
			return 0, -1
		}
		if len(r.Answer) == 1 {
			if s, ok := r.Answer[0].(*dns.SOA); ok {
				return s.Serial, r.Rcode
			}
		}
		return 0, r.Rcode
	}
	// wait polls knotd until every name answers its SOA with serial
	// (0: no longer served: REFUSED or NOTAUTH), bounded.
	wait := func(step string, names []string, serial uint32) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, name := range names {
			for {
				got, rcode := soa(name)
				if got == serial && (serial != 0 || rcode == dns.RcodeRefused || rcode == dns.RcodeNotAuth) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: knotd %s SOA serial %d rcode %d, want serial %d\nknotd:\n%s\nxdpns:\n%s", step, name, got, rcode, serial, p.Output(), h.stderr)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("member%d.example.", i))
	}
	wait("first", names, 1)
	// What knotd read: xdpns's catalog by AXFR, as a consumer parses it.
	rrs := peer.AXFR(t, netip.MustParseAddrPort(h.addr), "catalog.xdpns.invalid.", nil)
	cz, _, err := zone.New("catalog.xdpns.invalid.", rrs, zone.Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set, probs, err := catalog.Parse(cz, catalog.Options{})
	if err != nil || len(probs) > 0 || set.Len() != n {
		t.Fatalf("catalog from xdpns: %v %v %d members", err, probs, set.Len())
	}
	if g := set.Members["member0.example."].Groups; len(g) != 1 || g[0] != "gold" {
		t.Fatalf("member0 groups %q", g)
	}
	if !strings.Contains(p.Output(), "member0.example.") {
		t.Fatal("knotd log never names member0.example.")
	}
	// One zone more, the first one gone, the rest at serial 2 (their
	// files rewritten): the catalog's serial moves, knotd follows.
	cfg = catalogConfig(t, dir, port, n+1, 2, knot)
	text, _ := os.ReadFile(cfg)
	cut := strings.Index(string(text), "  - name: member0.example.")
	end := strings.Index(string(text), "  - name: member1.example.")
	writeFile(t, dir, "xdpns.yaml", string(text[:cut])+string(text[end:]))
	h.sigs <- syscall.SIGHUP
	h.waitLog("reloaded")
	wait("after reload", append(names[1:], fmt.Sprintf("member%d.example.", n)), 2)
	wait("removed", names[:1], 0)
	t.Logf("knotd followed the catalog: %d members, then one added and one removed; knotd log: %d incoming AXFRs, %d catalog member additions", n, strings.Count(p.Output(), "AXFR, incoming"), strings.Count(p.Output(), "zone added from catalog"))
	if testing.Verbose() {
		t.Log(p.Output())
	}
}
