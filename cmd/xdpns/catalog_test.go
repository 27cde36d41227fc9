package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
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

// knotProducerConf is a knotd configuration serving n file zones
// member<i>.example. (member0 with catalog-group gold) as members of a
// catalog knotd generates (catalog-role: generate), transferable from
// 127.0.0.1 and NOTIFYed to xdpns.
func knotProducerConf(kdir string, knotPort, xdpnsPort, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
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
  - id: xfr
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "%[1]s"
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
    acl: xfr
    notify: xdpns
zone:
  - domain: catalog.knot.invalid.
    catalog-role: generate
    serial-policy: unixtime
`, kdir, knotPort, xdpnsPort)
	for i := range n {
		fmt.Fprintf(&b, "  - domain: member%d.example.\n    file: member%d.example.zone\n    catalog-role: member\n    catalog-zone: catalog.knot.invalid.\n", i, i)
		if i == 0 {
			b.WriteString("    catalog-group: gold\n")
		}
	}
	return b.String()
}

// TestCatalogConsumerKnot: knotd 3.2 generates a catalog of the zones it
// serves (catalog-role: generate, members with catalog-role: member);
// xdpns consumes it and serves every member, transferred from knotd with
// the template its group names; a member added to knotd's configuration
// (knotc reload) reaches xdpns through the catalog's new serial and
// NOTIFY, and so does a member removed.
func TestCatalogConsumerKnot(t *testing.T) {
	testenv.RequireBinary(t, "knotd")
	knotc := testenv.RequireBinary(t, "knotc")
	dir := t.TempDir()
	port, knotPort := freePort(t), peer.FreePort(t)
	knot := fmt.Sprintf("127.0.0.1:%d", knotPort)
	const n = 20
	kdir := filepath.Join(dir, "knot")
	if err := os.MkdirAll(filepath.Join(kdir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n + 1 {
		name := fmt.Sprintf("member%d.example.", i)
		writeFile(t, kdir, name+"zone", zoneText(name, 1, fmt.Sprintf("192.0.2.%d", i+1)))
	}
	kc := writeFile(t, kdir, "knot.conf", knotProducerConf(kdir, knotPort, port, n))
	p := testenv.StartProcess(t, "knotd", "-c", kc)
	p.WaitFor(t, 10*time.Second, func() error {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("member%d.example.", n-1), dns.TypeSOA)
		r, _, err := (&dns.Client{Timeout: 300 * time.Millisecond}).Exchange(m, knot)
		if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1) {
			err = fmt.Errorf("last member's SOA: %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return err
	})

	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%[1]d"]
  udp-sockets: 1
xfr:
  state-dir: state
  timers: {retry-min: 1s, retry-max: 2s}
templates:
  - name: default
    primaries: ["%[2]s"]
  - name: gold
    primaries: ["%[2]s"]
    timers: {refresh-min: 1h}
zones:
  - name: catalog.knot.invalid.
    catalog: consume
    primaries: ["%[2]s"]
control:
  socket: %[3]s
`, port, knot, filepath.Join(dir, "control.sock")))
	h := startServe(t, cfg, port)
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("member%d.example.", i))
	}
	// wait polls xdpns until each name answers its SOA (want) or REFUSED.
	wait := func(step string, names []string, want bool) time.Duration {
		t.Helper()
		start := time.Now()
		for _, name := range names {
			for {
				r, err := h.query(name, dns.TypeSOA)
				if err == nil && (want && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 || !want && r.Rcode == dns.RcodeRefused) {
					break
				}
				if time.Since(start) > 20*time.Second {
					t.Fatalf("%s: %s SOA: %v %v (want served %v)\nknotd:\n%s\nxdpns:\n%s", step, name, r, err, want, p.Output(), tail(h.stderr.String(), 60))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return time.Since(start)
	}
	took := wait("first", names, true)
	h.waitAnswer("www.member7.example.", "192.0.2.8")
	t.Logf("%d members of knotd's catalog served %v after start", n, took.Round(time.Millisecond))
	// What xdpns read: knotd's catalog, as the consumer parses it.
	rrs := peer.AXFR(t, netip.MustParseAddrPort(knot), "catalog.knot.invalid.", nil)
	cz, _, err := zone.New("catalog.knot.invalid.", rrs, zone.Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set, probs, err := catalog.Parse(cz, catalog.Options{})
	if err != nil || len(probs) > 0 || set.Len() != n {
		t.Fatalf("catalog from knotd: %v %v %d members", err, probs, set.Len())
	}
	if g := set.Members["member0.example."].Groups; len(g) != 1 || g[0] != "gold" {
		t.Fatalf("member0 groups %q", g)
	}
	if testing.Verbose() {
		for _, rr := range rrs[:min(len(rrs), 8)] {
			t.Logf("knotd's catalog: %s", rr)
		}
	}
	// Members in `xdpns zone status` (their catalog and template) and in
	// `xdpns check` (from the catalog's copy in the state directory).
	sock := filepath.Join(dir, "control.sock")
	if row := waitStatus(t, sock, "member0.example.", func(r zoneRow) bool { return r.Serial == 1 }); row.State != "ok" ||
		row.Catalog != "catalog.knot.invalid." || row.Template != "gold" {
		t.Errorf("member0 status %+v, want ok, catalog catalog.knot.invalid., template gold", row)
	}
	if row := waitStatus(t, sock, "member3.example.", func(r zoneRow) bool { return r.Serial == 1 }); row.Catalog != "catalog.knot.invalid." || row.Template != "default" {
		t.Errorf("member3 status %+v, want catalog catalog.knot.invalid., template default", row)
	}
	code, stdout, _ := runCmd(t, "zone", "status", "-s", sock)
	if code != 0 || strings.Count(stdout, "[catalog catalog.knot.invalid.]") != n {
		t.Errorf("zone status: exit %d, %d rows name the catalog, want %d:\n%s", code, strings.Count(stdout, "[catalog catalog.knot.invalid.]"), n, stdout)
	}
	code, stdout, stderr := runCmd(t, "check", "-c", cfg)
	if want := fmt.Sprintf("catalog catalog.knot.invalid.: %d members at serial", n); code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "settings: 19 default, 1 gold") {
		t.Errorf("check: exit %d, want %q and the templates:\n%s%s", code, want, stdout, stderr)
	}
	t.Logf("xdpns check: %s", strings.TrimSpace(stdout))
	before, _ := soaSerial(context.Background(), &dns.Client{Timeout: time.Second}, netip.MustParseAddrPort(h.addr), "catalog.knot.invalid.")

	// One member more, member1 out: knotc reload of a new configuration.
	text := knotProducerConf(kdir, knotPort, port, n+1)
	cut := strings.Index(text, "  - domain: member1.example.")
	end := strings.Index(text, "  - domain: member2.example.")
	writeFile(t, kdir, "knot.conf", text[:cut]+text[end:])
	start := time.Now()
	if out, err := exec.Command(knotc, "-s", filepath.Join(kdir, "knot.sock"), "reload").CombinedOutput(); err != nil {
		t.Fatalf("knotc reload: %v: %s", err, out)
	}
	added := fmt.Sprintf("member%d.example.", n)
	wait("added", []string{added}, true)
	wait("removed", []string{"member1.example."}, false)
	t.Logf("knotc reload: added and removed member served/REFUSED by xdpns %v after", time.Since(start).Round(time.Millisecond))
	after, _ := soaSerial(context.Background(), &dns.Client{Timeout: time.Second}, netip.MustParseAddrPort(h.addr), "catalog.knot.invalid.")
	if after <= before {
		t.Errorf("catalog serial %d after the change, was %d", after, before)
	}
	per, kinds := memberUpdates(h.stderr.String())
	for _, name := range names {
		if name != "member1.example." && per[name] != 1 {
			t.Errorf("untouched %s transferred %d times, want 1", name, per[name])
		}
	}
	t.Logf("catalog transfers %v (serial %d → %d)", kinds["catalog.knot.invalid."], before, after)
}
