package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
)

// rtName and rtAddr are run-time test zone i and the address of its www.
func rtName(i int) string { return fmt.Sprintf("z%04d.rt.test.", i) }
func rtAddr(i int) string { return fmt.Sprintf("198.18.%d.%d", i/256, i%256) }

// fakePrimary serves every zone zNNNN.rt.test. (SOA, AXFR) from memory,
// refusing all while down is set.
type fakePrimary struct {
	addr netip.AddrPort
	down atomic.Bool
	axfr atomic.Int64
}

func startFakePrimary(t *testing.T) *fakePrimary {
	p := &fakePrimary{}
	p.addr = testenv.ServeDNS(t, dns.HandlerFunc(p.serve), nil)
	return p
}

func (p *fakePrimary) zone(name string) []dns.RR {
	var i int
	if _, err := fmt.Sscanf(name, "z%04d.rt.test.", &i); err != nil || rtName(i) != name || p.down.Load() {
		return nil
	}
	rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
	soa := rr(fmt.Sprintf("%s 300 IN SOA ns1.%s hostmaster.%s %d 7200 3600 1209600 300", name, name, name, 1000+i))
	return []dns.RR{soa, rr(name + " 300 IN NS ns1." + name), rr("ns1." + name + " 300 IN A 203.0.113.1"),
		rr("www." + name + " 300 IN A " + rtAddr(i)), soa}
}

func (p *fakePrimary) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	rrs := p.zone(dns.CanonicalName(q.Question[0].Name))
	switch {
	case rrs == nil:
		m.Rcode = dns.RcodeRefused
	case q.Question[0].Qtype == dns.TypeAXFR:
		p.axfr.Add(1)
		ch := make(chan *dns.Envelope, 1)
		ch <- &dns.Envelope{RR: rrs}
		close(ch)
		_ = new(dns.Transfer).Out(w, q, ch)
		return
	case q.Question[0].Qtype == dns.TypeSOA:
		m.Authoritative = true
		m.Answer = rrs[:1]
	default:
		m.Rcode = dns.RcodeRefused
	}
	_ = w.WriteMsg(m)
}

// rtConfig writes a configuration with one file zone (a.example.), key
// k1 and a YAML secondary y.rt.test. (extra is added to zones).
func rtConfig(t *testing.T, dir string, port int, primary netip.AddrPort, extra string) string {
	t.Helper()
	writeFile(t, dir, "a.zone", zoneText("a.example.", 1, "203.0.113.10"))
	return writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
xfr:
  state-dir: state
keys:
  - {name: k1, algorithm: hmac-sha256, secret: "c2VjcmV0c2VjcmV0c2VjcmV0"}
zones:
  - name: a.example.
    file: a.zone
  - name: y.rt.test.
    primaries: ["%s"]
%scontrol:
  socket: %s
`, port, primary, extra, filepath.Join(dir, "control.sock")))
}

// rtCall runs `xdpns zone ARGS -s SOCK`.
func rtCall(t *testing.T, sock string, args ...string) (int, string) {
	t.Helper()
	code, out, errs := runCmd(t, append([]string{"zone"}, append(args, "-s", sock)...)...)
	return code, out + errs
}

// runtimeSet is the run-time zones `zone status` lists.
func runtimeSet(t *testing.T, sock string) []string {
	t.Helper()
	var out []string
	for _, r := range zoneStatusJSON(t, sock, "").Zones {
		if r.Runtime {
			out = append(out, r.Name)
		}
	}
	return out
}

func (h *serveHarness) wantRcode(name string, rcode int) {
	h.t.Helper()
	r, err := h.query(name, dns.TypeA)
	if err != nil || r.Rcode != rcode {
		h.t.Errorf("%s A: %v %v, want %s", name, r, err, dns.RcodeToString[rcode])
	}
}

// TestRuntimeZones: `xdpns zone add` serves a zone transferred at once,
// `zone remove` takes it away (REFUSED, state files gone), every conflict
// gets its error, reload keeps the set, a restart brings back exactly the
// set from disk with the primary down, a broken file is named with its
// line and loses nothing else, and a YAML zone wins over a run-time one.
func TestRuntimeZones(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startFakePrimary(t)
	cfg := rtConfig(t, dir, port, p.addr, "")
	sock := filepath.Join(dir, "control.sock")
	rtFile := filepath.Join(dir, "state", config.RuntimeZonesFile)
	h := startServe(t, cfg, port)
	h.waitLog("control socket")

	for i := range 3 {
		code, out := rtCall(t, sock, "add", rtName(i), "--primary", p.addr.String())
		if code != exitOK || !strings.Contains(out, fmt.Sprintf("serving serial %d from %s", 1000+i, p.addr)) {
			t.Fatalf("zone add %s: exit %d: %s", rtName(i), code, out)
		}
		h.waitAnswer("www."+rtName(i), rtAddr(i))
	}
	code, out := rtCall(t, sock, "status")
	if code != exitOK || !strings.Contains(out, rtName(1)+" [run-time]") || strings.Contains(out, "a.example. [run-time]") {
		t.Errorf("zone status: %d\n%s", code, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "a.example.", "--primary", p.addr.String()}, "zone is in the configuration: a.example. is at " + cfg + ":9"},
		{[]string{"add", "y.rt.test", "--primary", p.addr.String()}, "zone is in the configuration: y.rt.test. is at " + cfg + ":11"},
		{[]string{"add", rtName(0), "--primary", p.addr.String()}, "zone was already added at run time: " + rtName(0) + " (by `xdpns zone add`)"},
		{[]string{"add", "bad..name", "--primary", p.addr.String()}, "not a valid domain name"},
		{[]string{"add", "k.rt.test", "--primary", p.addr.String(), "--key", "k9"}, "key k9. is not defined in keys"},
		{[]string{"add", "k.rt.test", "--primary", "ns1.example.net"}, `bad address "ns1.example.net": want IP:port`},
		{[]string{"add", "k.rt.test", "--primary", "ns1.example.net:53"}, `"ns1.example.net" is not an IP address`},
		{[]string{"add", "k.rt.test", "--primary", "127.0.0.1:99999"}, "port must be 1..65535"},
		{[]string{"remove", "a.example."}, "zone is in the configuration: a.example. is at " + cfg + ":9; remove it there"},
		{[]string{"remove", "nope.rt.test"}, "zone was not added at run time: nope.rt.test."},
	} {
		code, out := rtCall(t, sock, tc.args...)
		if code != exitFail || !strings.Contains(out, tc.want) {
			t.Errorf("zone %v: exit %d: %s\nwant %q", tc.args, code, out, tc.want)
		}
	}
	if code, out := rtCall(t, sock, "add", "k.rt.test"); code != exitUsage {
		t.Errorf("zone add without --primary: exit %d: %s", code, out)
	}

	// Remove: REFUSED, its state files gone, the others untouched.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// Saved just after it is served.
		if _, err := os.Stat(filepath.Join(dir, "state", "z0001.rt.test.zone")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("state file of an added zone: %v", err)
		}
	}
	if code, out := rtCall(t, sock, "remove", rtName(1)); code != exitOK {
		t.Fatalf("zone remove: %d %s", code, out)
	}
	h.wantRcode("www."+rtName(1), dns.RcodeRefused)
	h.waitAnswer("www."+rtName(0), rtAddr(0))
	for _, f := range []string{"z0001.rt.test.zone", "z0001.rt.test.timers"} {
		if _, err := os.Stat(filepath.Join(dir, "state", f)); !os.IsNotExist(err) {
			t.Errorf("%s after remove: %v", f, err)
		}
	}
	want := []string{rtName(0), rtName(2)}
	if got := runtimeSet(t, sock); !slices.Equal(got, want) {
		t.Errorf("run-time zones %v, want %v", got, want)
	}

	// Reload keeps them.
	if code, out := rtCall(t, sock, "reload"); code != exitOK {
		t.Errorf("reload: %d %s", code, out)
	}
	if got := runtimeSet(t, sock); !slices.Equal(got, want) {
		t.Errorf("after reload: run-time zones %v, want %v", got, want)
	}
	h.waitAnswer("www."+rtName(2), rtAddr(2))

	// Restart with the primary down: exactly the set, from disk.
	h.stop()
	p.down.Store(true)
	h = startServe(t, cfg, port)
	h.waitLog("control socket")
	if got := runtimeSet(t, sock); !slices.Equal(got, want) {
		t.Errorf("after restart: run-time zones %v, want %v", got, want)
	}
	h.waitAnswer("www."+rtName(0), rtAddr(0))
	h.waitAnswer("www."+rtName(2), rtAddr(2))
	h.wantRcode("www."+rtName(1), dns.RcodeRefused)
	if code, out, errs := runCmd(t, "check", "-c", cfg); code != exitOK || !strings.Contains(out, "2 zones added at run time") {
		t.Errorf("check: %d %s %s", code, out, errs)
	}
	p.down.Store(false)

	// A YAML zone added later that a run-time zone has: the YAML wins,
	// the run-time entry goes, the data stays.
	rtConfig(t, dir, port, p.addr, fmt.Sprintf("  - name: %s\n    primaries: [\"%s\"]\n", rtName(2), p.addr))
	code, out = rtCall(t, sock, "reload")
	if code != exitOK || !strings.Contains(out, "zone "+rtName(2)+": also in "+cfg+":13; the configuration's entry is served") {
		t.Errorf("reload with a clash: %d %s", code, out)
	}
	if got := runtimeSet(t, sock); !slices.Equal(got, want[:1]) {
		t.Errorf("after the clash: run-time zones %v, want %v", got, want[:1])
	}
	h.waitAnswer("www."+rtName(2), rtAddr(2))
	if b, _ := os.ReadFile(rtFile); strings.Contains(string(b), rtName(2)) {
		t.Errorf("run-time file still has %s:\n%s", rtName(2), b)
	}
	h.stop()

	// A broken file: named with its line at start, the rest serves, adds
	// refused, check fails with the line.
	broken := string(must(os.ReadFile(rtFile))) + "  - name: " + rtName(7) + "\n    primaries: [{address: 127.0.0.1:53, key: nokey}]\n"
	writeFile(t, filepath.Dir(rtFile), filepath.Base(rtFile), broken)
	line := strings.Count(broken, "\n")
	wantErr := fmt.Sprintf("%s:%d: zones[1].primaries[0].key: key nokey. is not defined in keys", rtFile, line)
	if code, _, out := runCmd(t, "check", "-c", cfg); code != exitFail || !strings.Contains(out, wantErr) {
		t.Errorf("check of a broken file: %d %s\nwant %s", code, out, wantErr)
	}
	h = startServe(t, cfg, port)
	h.waitLog("control socket")
	if !strings.Contains(h.stderr.String(), wantErr) {
		t.Errorf("serve log does not name %s:\n%s", wantErr, h.stderr)
	}
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitAnswer("www."+rtName(2), rtAddr(2))
	h.wantRcode("www."+rtName(0), dns.RcodeRefused)
	if code, out := rtCall(t, sock, "add", rtName(5), "--primary", p.addr.String()); code != exitFail ||
		!strings.Contains(out, "the run-time zones file is broken") {
		t.Errorf("add with a broken file: %d %s", code, out)
	}
	if got := string(must(os.ReadFile(rtFile))); got != broken {
		t.Errorf("broken file rewritten:\n%s", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// runtimeMany is the size of TestRuntimeZonesMany.
const runtimeMany = 1000

// TestRuntimeZonesMany adds 1,000 zones and removes them through the
// control socket while queries run: every answer is the zone's data,
// SERVFAIL (added, first transfer not done), or REFUSED (not yet or no
// longer added). A restart after the adds brings back exactly the 1,000,
// one after the removes none. The time per add and remove is logged.
func TestRuntimeZonesMany(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startFakePrimary(t)
	cfg := rtConfig(t, dir, port, p.addr, "")
	sock := filepath.Join(dir, "control.sock")
	h := startServe(t, cfg, port)
	h.waitLog("control socket")

	var wrong atomic.Int64
	var queries, answered atomic.Int64
	query := func(ctx context.Context) {
		c := &dns.Client{Timeout: time.Second}
		for n := 0; n < 200000 && ctx.Err() == nil; n++ {
			i := rand.IntN(runtimeMany)
			m := new(dns.Msg)
			m.SetQuestion("www."+rtName(i), dns.TypeA)
			r, _, err := c.Exchange(m, h.addr)
			if err != nil {
				continue
			}
			queries.Add(1)
			switch {
			case r.Rcode == dns.RcodeRefused, r.Rcode == dns.RcodeServerFailure:
			case r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == rtAddr(i):
				answered.Add(1)
			default:
				if wrong.Add(1) < 5 {
					t.Errorf("www.%s: %v", rtName(i), r)
				}
			}
		}
	}
	loop := func(what string, f func(i int) ctlRequest) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); query(ctx) }()
		}
		start := time.Now()
		for i := range runtimeMany {
			resp, _, err := controlCall(context.Background(), sock, f(i))
			if err != nil || !resp.OK {
				t.Fatalf("%s %s: %v %+v", what, rtName(i), err, resp)
			}
		}
		took := time.Since(start)
		cancel()
		wg.Wait()
		t.Logf("%d %ss through the control socket: %v, %v per %s; %d queries meanwhile, %d answered with data, %d wrong",
			runtimeMany, what, took.Round(time.Millisecond), (took / runtimeMany).Round(time.Microsecond), what,
			queries.Load(), answered.Load(), wrong.Load())
	}
	add := func(i int) ctlRequest {
		return ctlRequest{Command: ctlZoneAdd, Zone: rtName(i), Add: &zoneAddArgs{Primaries: []string{p.addr.String()}}}
	}
	loop("add", add)
	waitAll := func() {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ok := 0
			for _, r := range zoneStatusJSON(t, sock, "").Zones {
				if r.Runtime && r.State == "ok" {
					ok++
				}
			}
			if ok == runtimeMany {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d run-time zones ok", ok, runtimeMany)
			}
		}
	}
	waitAll()
	if n := p.axfr.Load(); n != runtimeMany {
		t.Errorf("%d AXFRs for %d zones", n, runtimeMany)
	}
	for _, i := range []int{0, 511, runtimeMany - 1} {
		h.waitAnswer("www."+rtName(i), rtAddr(i))
	}

	h.stop()
	p.down.Store(true)
	h = startServe(t, cfg, port)
	h.waitLog("control socket")
	got := runtimeSet(t, sock)
	if len(got) != runtimeMany || got[0] != rtName(0) || got[runtimeMany-1] != rtName(runtimeMany-1) {
		t.Fatalf("after restart: %d run-time zones (%v...)", len(got), got[:min(3, len(got))])
	}
	waitAll()
	p.down.Store(false)

	loop("remove", func(i int) ctlRequest { return ctlRequest{Command: ctlZoneRemove, Zone: rtName(i)} })
	for _, i := range []int{0, 511, runtimeMany - 1} {
		h.wantRcode("www."+rtName(i), dns.RcodeRefused)
	}
	h.stop()
	h = startServe(t, cfg, port)
	h.waitLog("control socket")
	if got := runtimeSet(t, sock); len(got) != 0 {
		t.Errorf("after removes and a restart: %d run-time zones", len(got))
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, "state", "z*.rt.test.*")); len(ents) != 0 {
		t.Errorf("%d state files left, e.g. %s", len(ents), ents[0])
	}
	if wrong.Load() > 0 {
		t.Errorf("%d wrong answers", wrong.Load())
	}
}

// BenchmarkWriteRuntime: rewriting the run-time zones file (with fsync)
// holding 1, 1,000 or 10,000 zones: the part of an add or remove that grows
// with the number of run-time zones.
func BenchmarkWriteRuntime(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			d := &daemon{}
			d.rt.path = filepath.Join(b.TempDir(), config.RuntimeZonesFile)
			zones := make([]config.RuntimeZone, n)
			for i := range zones {
				zones[i].Name = rtName(i)
				zones[i].Primaries = []config.Primary{{Addr: netip.MustParseAddrPort("192.0.2.1:53")}}
			}
			b.ResetTimer()
			for range b.N {
				if err := d.writeRuntime(zones); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRuntimeZoneNamed adds a zone at run time whose primary is a real
// named that only transfers it with TSIG: the key is referenced by name
// from the configuration's keys; the answers appear, and go (REFUSED) on
// remove.
func TestRuntimeZoneNamed(t *testing.T) {
	dir := t.TempDir()
	key := tsigKey{"k1.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0"}
	n := startTestNamed(t, namedConfig{dir: filepath.Join(dir, "named"), keys: []tsigKey{key},
		zones: []namedZone{{name: "rt.example.", text: zoneText("rt.example.", 7, "203.0.113.77"), allowTransfer: fmt.Sprintf("key %q;", key.name)}}})
	port := freePort(t)
	cfg := rtConfig(t, dir, port, n.Addr(), "")
	sock := filepath.Join(dir, "control.sock")
	h := startServe(t, cfg, port)
	h.waitLog("control socket")
	code, out := rtCall(t, sock, "add", "rt.example", "--primary", n.Addr().String(), "--key", "k1")
	if code != exitOK || !strings.Contains(out, "serving serial 7 from "+n.Addr().String()) {
		t.Fatalf("zone add: %d %s", code, out)
	}
	h.waitAnswer("www.rt.example.", "203.0.113.77")
	if r := waitStatus(t, sock, "rt.example.", func(r zoneRow) bool { return r.State == "ok" }); !r.Runtime || r.Counters.Full != 1 {
		t.Errorf("status: %+v", r)
	}
	if code, out := rtCall(t, sock, "remove", "rt.example."); code != exitOK {
		t.Fatalf("zone remove: %d %s", code, out)
	}
	h.wantRcode("www.rt.example.", dns.RcodeRefused)
}

// TestServeXDPRuntimeZone: a zone added at run time reaches the XDP maps
// (dig in the lab's client namespace is answered by XDP, the server's
// sockets see nothing), and once removed XDP no longer answers it: it
// passes the query and Go says REFUSED.
func TestServeXDPRuntimeZone(t *testing.T) {
	x := newXDPTest(t)
	named := testenv.RequireBinary(t, "named")
	testenv.RequireBinary(t, "dig")
	const primaryPort = 5300
	n, err := startNamed(context.Background(), named, namedConfig{
		dir: filepath.Join(x.dir, "named"), port: primaryPort,
		zones: []namedZone{{name: "example.com.", text: zoneText("example.com.", 3, "203.0.113.33")}},
		netns: x.lab.ServerNS, dial: x.lab.DialServer,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	x.zoneFile("example.net.", 1, "198.51.100.10")
	x.writeConfig("auto", "", "  - {name: example.net., file: example.net.zone}\n")
	x.serve(1)
	s4 := x.lab.Server4
	code, out, errs := runCmd(t, "zone", "add", "example.com.", "--primary", fmt.Sprintf("127.0.0.1:%d", primaryPort), "-s", x.sock)
	if code != exitOK || !strings.Contains(out, "serving serial 3") {
		t.Fatalf("zone add: %d %s %s", code, out, errs)
	}
	x.waitAnswer(s4, "www.example.com.", "203.0.113.33")
	for deadline := time.Now().Add(10 * time.Second); x.mustStats().XDP.Zones != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the added zone never reached XDP: %+v", x.mustStats().XDP)
		}
	}
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.33"}, "xdp")
	x.via("dig", s4, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")

	if code, out, errs := runCmd(t, "zone", "remove", "example.com.", "-s", x.sock); code != exitOK {
		t.Fatalf("zone remove: %d %s %s", code, out, errs)
	}
	if st := x.mustStats().XDP; st.Zones != 1 {
		t.Errorf("after remove XDP holds %d zones, want 1", st.Zones)
	}
	x.via("dig", s4, "www.example.com.", "REFUSED", nil, "udp")
	x.via("dig", s4, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")
}

// TestRuntimeZoneOwners drives the in-process API a catalog consumer uses:
// a zone added with an owner is removed only by it, is written with its
// owner and comes back with it, and a claim refuses an add with its reason.
func TestRuntimeZoneOwners(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startFakePrimary(t)
	path := rtConfig(t, dir, port, p.addr, "")
	start := func() *daemon {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		var log syncBuffer
		d, err := startDaemon(context.Background(), path, cfg, newLogger(&log, cfg.Log), daemonHooks{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := start()
	defer func() { d.Close() }()
	const owner = "catalog:cat.example."
	mk := func(i int) config.RuntimeZone {
		z, err := config.NewRuntimeZone(config.RuntimeZoneRequest{Name: rtName(i), Owner: owner, Primaries: []string{p.addr.String()}}, d.cfg)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	if err := d.addRuntimeZone(mk(0)); err != nil {
		t.Fatal(err)
	}
	d.addClaim(func(name string) error {
		if name == rtName(1) {
			return fmt.Errorf("zone %s is a member of catalog cat.example.", name)
		}
		return nil
	})
	if err := d.addRuntimeZone(mk(1)); err == nil || !strings.Contains(err.Error(), "member of catalog cat.example.") {
		t.Errorf("claimed add: %v", err)
	}
	if err := d.removeRuntimeZone(rtName(0), ""); !errors.Is(err, errOtherOwner) || !strings.Contains(err.Error(), "(by "+owner+")") {
		t.Errorf("remove by another owner: %v", err)
	}
	resp := d.control(ctlRequest{Command: ctlZoneRemove, Zone: rtName(0)})
	if resp.OK || !strings.Contains(resp.Error, "zone was added by another owner") {
		t.Errorf("zone-remove of a catalog's zone: %+v", resp)
	}
	d.Close()
	d = start()
	if o, ok := d.isRuntime(rtName(0)); !ok || o != owner {
		t.Errorf("after restart: owner %q %v", o, ok)
	}
	if rows := d.status(rtName(0)); len(rows) != 1 || !rows[0].Runtime || rows[0].Owner != owner {
		t.Errorf("status: %+v", rows)
	}
	if err := d.removeRuntimeZone(rtName(0), owner); err != nil {
		t.Errorf("remove by its owner: %v", err)
	}
}

func TestEnclosed(t *testing.T) {
	d := &daemon{served: map[string]*responder.Zone{"example.com.": nil, "a.b.example.net.": nil}}
	for name, want := range map[string]bool{
		"sub.example.com.": true, "x.y.example.com.": true, "example.com.": false, "example.org.": false,
		"b.example.net.": false, "c.a.b.example.net.": true, "com.": false,
	} {
		if got := d.enclosedLocked(name); got != want {
			t.Errorf("%s: enclosed %v, want %v", name, got, want)
		}
	}
	d.served["."] = nil
	if !d.enclosedLocked("example.org.") {
		t.Error("the root zone encloses every name")
	}
}

// xdpRuntimeMany is the size of TestServeXDPRuntimeZonesMany.
const xdpRuntimeMany = 600

// TestServeXDPRuntimeZonesMany adds 600 zones from a named in the lab's
// server namespace, one at a time with XDP on, then removes them: each
// reaches XDP and leaves it. The time per add (each builds a new
// generation of the maps with every zone) is logged by hundreds, to show
// how it grows with the zones served.
func TestServeXDPRuntimeZonesMany(t *testing.T) {
	x := newXDPTest(t)
	named := testenv.RequireBinary(t, "named")
	testenv.RequireBinary(t, "dig")
	const primaryPort = 5300
	var zones []namedZone
	for i := range xdpRuntimeMany {
		zones = append(zones, namedZone{name: rtName(i), text: zoneText(rtName(i), 1000+i, rtAddr(i))})
	}
	n, err := startNamed(context.Background(), named, namedConfig{
		dir: filepath.Join(x.dir, "named"), port: primaryPort, zones: zones,
		netns: x.lab.ServerNS, dial: x.lab.DialServer,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	x.zoneFile("example.net.", 1, "198.51.100.10")
	x.writeConfig("auto", "", "  - {name: example.net., file: example.net.zone}\n")
	x.serve(1)
	primary := fmt.Sprintf("127.0.0.1:%d", primaryPort)
	start, last := time.Now(), time.Now()
	for i := range xdpRuntimeMany {
		resp, _, err := controlCall(context.Background(), x.sock, ctlRequest{Command: ctlZoneAdd, Zone: rtName(i),
			Add: &zoneAddArgs{Primaries: []string{primary}, WaitMS: 5000}})
		if err != nil || !resp.OK || !strings.Contains(resp.Message, "serving serial") {
			t.Fatalf("add %s: %v %+v", rtName(i), err, resp)
		}
		if i%100 == 99 {
			t.Logf("adds %d-%d: %v per add (XDP on)", i-98, i+1, (time.Since(last) / 100).Round(10*time.Microsecond))
			last = time.Now()
		}
	}
	t.Logf("%d adds: %v", xdpRuntimeMany, time.Since(start).Round(time.Millisecond))
	for deadline := time.Now().Add(10 * time.Second); x.mustStats().XDP.Zones != xdpRuntimeMany+1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("XDP holds %d zones, want %d", x.mustStats().XDP.Zones, xdpRuntimeMany+1)
		}
	}
	for _, i := range []int{0, 299, xdpRuntimeMany - 1} {
		x.via("dig", x.lab.Server4, "www."+rtName(i), "NOERROR", []string{"A " + rtAddr(i)}, "xdp")
	}
	start = time.Now()
	for i := range xdpRuntimeMany {
		resp, _, err := controlCall(context.Background(), x.sock, ctlRequest{Command: ctlZoneRemove, Zone: rtName(i)})
		if err != nil || !resp.OK {
			t.Fatalf("remove %s: %v %+v", rtName(i), err, resp)
		}
	}
	t.Logf("%d removes: %v per remove (XDP on)", xdpRuntimeMany, (time.Since(start) / xdpRuntimeMany).Round(10*time.Microsecond))
	if st := x.mustStats().XDP; st.Zones != 1 {
		t.Errorf("after the removes XDP holds %d zones, want 1", st.Zones)
	}
	x.via("dig", x.lab.Server4, "www."+rtName(299), "REFUSED", nil, "udp")
	x.via("dig", x.lab.Server4, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")
}

// TestRuntimeZoneFirstSecondary: a serve with file zones only (its xfr
// Manager built without a state directory) takes a run-time zone, keeps it
// in the state directory and serves it again after a restart.
func TestRuntimeZoneFirstSecondary(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startFakePrimary(t)
	writeFile(t, dir, "a.zone", zoneText("a.example.", 1, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
xfr: {state-dir: state}
zones:
  - {name: a.example., file: a.zone}
control: {socket: %s}
`, port, filepath.Join(dir, "control.sock")))
	sock := filepath.Join(dir, "control.sock")
	h := startServe(t, cfg, port)
	h.waitLog("control socket")
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Fatalf("state directory before any secondary: %v", err)
	}
	if code, out := rtCall(t, sock, "add", rtName(3), "--primary", p.addr.String()); code != exitOK || !strings.Contains(out, "serving serial 1003") {
		t.Fatalf("zone add: %d %s", code, out)
	}
	h.waitAnswer("www."+rtName(3), rtAddr(3))
	h.stop()
	p.down.Store(true)
	h = startServe(t, cfg, port)
	h.waitAnswer("www."+rtName(3), rtAddr(3))
	h.waitAnswer("www.a.example.", "203.0.113.10")
}

// TestRuntimeZoneTransfersOut: a run-time zone with --allow-transfer and
// --notify is transferred out to who it allows (REFUSED to others, and
// once removed) and its downstream target gets NOTIFY.
func TestRuntimeZoneTransfersOut(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startFakePrimary(t)
	cfg := rtConfig(t, dir, port, p.addr, "")
	sock := filepath.Join(dir, "control.sock")
	down := startNotifyListener(t)
	h := startServe(t, cfg, port)
	h.waitLog("control socket")
	xd := netip.MustParseAddrPort(h.addr)
	key := tsigKey{"k1.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0"}

	if code, out := rtCall(t, sock, "add", rtName(4), "--primary", p.addr.String(),
		"--transfer-key", "k1", "--notify", down.addr); code != exitOK {
		t.Fatalf("zone add: %d %s", code, out)
	}
	down.wait(t, rtName(4), 1004)
	if got := axfrText(t, xd, rtName(4), &key); !strings.Contains(got, "www."+rtName(4)+"\t300\tIN\tA\t"+rtAddr(4)) {
		t.Errorf("signed AXFR of %s:\n%s", rtName(4), got)
	}
	if rc := axfrRcode(t, xd, rtName(4), nil); rc != dns.RcodeRefused {
		t.Errorf("unsigned AXFR: %s, want REFUSED", dns.RcodeToString[rc])
	}
	if code, out := rtCall(t, sock, "remove", rtName(4)); code != exitOK {
		t.Fatalf("zone remove: %d %s", code, out)
	}
	if rc := axfrRcode(t, xd, rtName(4), &key); rc != dns.RcodeRefused && rc != dns.RcodeNotAuth {
		t.Errorf("signed AXFR after remove: %s, want REFUSED", dns.RcodeToString[rc])
	}
}

// TestRuntimeZoneKeyGone: a reload whose YAML no longer defines a key a
// run-time zone uses fails with the run-time file's line, and the zone
// keeps serving as it was; restoring the key and reloading clears it.
func TestRuntimeZoneKeyGone(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startFakePrimary(t)
	cfg := rtConfig(t, dir, port, p.addr, "")
	good := string(must(os.ReadFile(cfg)))
	sock := filepath.Join(dir, "control.sock")
	rtFile := filepath.Join(dir, "state", config.RuntimeZonesFile)
	h := startServe(t, cfg, port)
	h.waitLog("control socket")
	if code, out := rtCall(t, sock, "add", rtName(6), "--primary", p.addr.String(), "--allow-transfer", "127.0.0.1", "--transfer-key", "k1"); code != exitOK {
		t.Fatalf("zone add: %d %s", code, out)
	}
	h.waitAnswer("www."+rtName(6), rtAddr(6))
	writeFile(t, dir, "xdpns.yaml", strings.Replace(good, `  - {name: k1, algorithm: hmac-sha256, secret: "c2VjcmV0c2VjcmV0c2VjcmV0"}`, "  - {name: k2, algorithm: hmac-sha256, secret: \"c2VjcmV0c2VjcmV0c2VjcmV0\"}", 1))
	code, out := rtCall(t, sock, "reload")
	want := rtFile + ":5: zones[0].allow-transfer.keys[0]: key k1. is not defined in keys"
	if code != exitFail || !strings.Contains(out, want) {
		t.Errorf("reload without the key: %d %s\nwant %s", code, out, want)
	}
	h.waitAnswer("www."+rtName(6), rtAddr(6))
	if got := runtimeSet(t, sock); !slices.Equal(got, []string{rtName(6)}) {
		t.Errorf("run-time zones %v", got)
	}
	if code, out := rtCall(t, sock, "remove", rtName(6)); code != exitFail || !strings.Contains(out, "the run-time zones file is broken") {
		t.Errorf("remove while broken: %d %s", code, out)
	}
	writeFile(t, dir, "xdpns.yaml", good)
	if code, out := rtCall(t, sock, "reload"); code != exitOK {
		t.Errorf("reload with the key back: %d %s", code, out)
	}
	if code, out := rtCall(t, sock, "remove", rtName(6)); code != exitOK {
		t.Errorf("remove: %d %s", code, out)
	}
}

// TestRuntimeZoneKnot adds a zone whose primary is a real knotd: the
// first transfer at once, then a change committed with knotc reaches the
// run-time zone by NOTIFY and IXFR, like a configured secondary's.
func TestRuntimeZoneKnot(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	const name = "kn.example."
	knot := peer.StartKnot(t, peer.KnotConfig{
		Zones:      []peer.Zone{{Name: name, Text: zoneText(name, 1, "203.0.113.50")}},
		NotifyPort: port,
	})
	cfg := rtConfig(t, dir, port, knot.Addr(), "")
	sock := filepath.Join(dir, "control.sock")
	h := startServe(t, cfg, port)
	h.waitLog("control socket")
	if code, out := rtCall(t, sock, "add", name, "--primary", knot.Addr().String()); code != exitOK || !strings.Contains(out, "serving serial 1 from") {
		t.Fatalf("zone add: %d %s", code, out)
	}
	h.waitAnswer("www."+name, "203.0.113.50")
	knot.Change(name, []string{"unset", "www"}, []string{"set", "www", "300", "A", "203.0.113.51"})
	h.waitAnswer("www."+name, "203.0.113.51")
	r := waitStatus(t, sock, name, func(r zoneRow) bool { return r.Serial == knot.Serial(name) })
	if !r.Runtime || r.Counters.Notifies < 1 || r.Counters.Incremental < 1 {
		t.Errorf("status: %+v %+v", r, r.Counters)
	}
}
