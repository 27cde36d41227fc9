package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/xfr"
)

// startTestNamed runs named for a test (skipped without root or named,
// failing instead under CI) and stops it in t.Cleanup.
func startTestNamed(t *testing.T, c namedConfig) *named {
	t.Helper()
	testenv.RequireRoot(t)
	bin := testenv.RequireBinary(t, "named")
	if c.dir == "" {
		c.dir = t.TempDir()
	}
	if c.port == 0 {
		c.port = testenv.FreePort(t)
	}
	n, err := startNamed(context.Background(), bin, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("named output:\n%s", n.Output(40))
		}
	})
	return n
}

// update sends a dynamic update to named (which allows it from 127.0.0.1).
func (n *named) update(t *testing.T, zoneName string, fill func(m *dns.Msg)) {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(zoneName)
	fill(m)
	c := dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, n.Addr().String())
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update %s: %v %v", zoneName, err, r)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// waitStatus polls `xdpns zone status -json NAME` until ok accepts the row.
func waitStatus(t *testing.T, sock, name string, ok func(r zoneRow) bool) zoneRow {
	t.Helper()
	var last ctlResponse
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		last = zoneStatusJSON(t, sock, name)
		if last.OK && len(last.Zones) == 1 && ok(last.Zones[0]) {
			return last.Zones[0]
		}
	}
	t.Fatalf("zone status %s never as wanted; last: %+v", name, last)
	return zoneRow{}
}

// TestServeSecondary runs `xdpns serve` as the secondary of a real named:
// initial transfer with TSIG, answers over UDP, a change pushed by NOTIFY
// and applied by IXFR, the zone commands, and a restart that serves from
// the state directory at once, with the primary gone.
func TestServeSecondary(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	key := tsigKey{"xfr.test.", "hmac-sha256", randomSecret()}
	n := startTestNamed(t, namedConfig{
		dir: filepath.Join(dir, "named"), notifyPort: port, notifyKey: key.name, keys: []tsigKey{key},
		zones: []namedZone{{name: "sec.example.", text: zoneText("sec.example.", 1, "203.0.113.1"),
			allowTransfer: fmt.Sprintf("key %q;", key.name), allowUpdate: "127.0.0.1;"}},
	})
	sock := filepath.Join(dir, "control.sock")
	downstream := startNotifyListener(t)
	writeFile(t, dir, "a.zone", zoneText("a.example.", 1, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%[1]d"]
  udp-sockets: 1
xfr:
  state-dir: state
keys:
  - {name: %[2]s, algorithm: %[3]s, secret: %[4]q}
zones:
  - name: sec.example.
    primaries:
      - {address: "%[5]s", key: %[2]s}
    allow-transfer: {from: [127.0.0.1/32]}
    notify: ["%[6]s"]
  - name: a.example.
    file: a.zone
    allow-transfer: {keys: [%[2]s]}
control:
  socket: %[7]s
`, port, key.name, key.algorithm, key.secret, n.Addr(), downstream.addr, sock))

	h := startServe(t, cfg, port)
	h.waitAnswer("www.sec.example.", "203.0.113.1")
	h.waitAnswer("www.a.example.", "203.0.113.10")

	// Downstream: xdpns serves what it got, and tells the configured
	// target.
	xd := netip.MustParseAddrPort(h.addr)
	if got, want := axfrText(t, xd, "sec.example.", nil), axfrText(t, n.Addr(), "sec.example.", &key); got != want {
		t.Errorf("AXFR of sec.example. from xdpns:\n%s\nfrom named:\n%s", got, want)
	}
	downstream.wait(t, "sec.example.", 1)
	if rc := axfrRcode(t, xd, "a.example.", nil); rc != dns.RcodeRefused {
		t.Errorf("unsigned AXFR of a.example.: %s, want REFUSED", dns.RcodeToString[rc])
	}
	if got := axfrText(t, xd, "a.example.", &key); !strings.Contains(got, "www.a.example.\t300\tIN\tA\t203.0.113.10") {
		t.Errorf("signed AXFR of a.example.:\n%s", got)
	}
	// A downstream secondary that shares a key signs its SOA checks: the
	// answer is signed too (miekg/dns verifies it).
	soaQ := new(dns.Msg)
	soaQ.SetQuestion("a.example.", dns.TypeSOA)
	soaQ.SetTsig(key.name, dns.HmacSHA256, 300, time.Now().Unix())
	tc := dns.Client{Timeout: time.Second, TsigSecret: map[string]string{key.name: key.secret}}
	if r, _, err := tc.Exchange(soaQ, h.addr); err != nil || r.IsTsig() == nil || len(r.Answer) != 1 {
		t.Errorf("signed SOA query: %v %v", r, err)
	}
	// EDNS EXPIRE (RFC 7314) on SOA queries: the time left for a
	// secondary (the xfr clamps cap expire), the SOA expire for a file zone.
	for _, c := range []struct {
		zone     string
		min, max uint32
	}{{"sec.example.", 1, 1209600}, {"a.example.", 1209600, 1209600}} {
		q := new(dns.Msg).SetQuestion(c.zone, dns.TypeSOA)
		q.SetEdns0(1232, false)
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
		r, err := dns.Exchange(q, h.addr)
		var got *dns.EDNS0_EXPIRE
		if err == nil && r.IsEdns0() != nil {
			for _, o := range r.IsEdns0().Option {
				if e, ok := o.(*dns.EDNS0_EXPIRE); ok {
					got = e
				}
			}
		}
		if got == nil || got.Expire < c.min || got.Expire > c.max {
			t.Errorf("EXPIRE for %s: %v (err %v), want %d..%d", c.zone, got, err, c.min, c.max)
		}
	}
	row := waitStatus(t, sock, "sec.example.", func(r zoneRow) bool { return r.State == "ok" })
	if row.Serial != 1 || row.Source != n.Addr().String() || row.Counters.Full != 1 || row.FromDisk {
		t.Errorf("after the first transfer: %+v %+v", row, row.Counters)
	}
	code, stdout, stderr := runCmd(t, "zone", "status", "-s", sock)
	if code != exitOK || !regexpMatch(`(?m)^sec\.example\.\s+ok\s+1\s+`+n.Addr().String()+`\s+\d+s ago\s+in \S+\s+\S+\s+-$`, stdout) {
		t.Errorf("zone status: exit %d\n%s%s", code, stdout, stderr)
	}

	// A change at the primary: NOTIFY, IXFR, new answer.
	n.update(t, "sec.example.", func(m *dns.Msg) {
		m.RemoveRRset([]dns.RR{mustRR(t, "www.sec.example. 300 IN A 203.0.113.1")})
		m.Insert([]dns.RR{mustRR(t, "www.sec.example. 300 IN A 203.0.113.2")})
	})
	h.waitAnswer("www.sec.example.", "203.0.113.2")
	row = waitStatus(t, sock, "sec.example.", func(r zoneRow) bool { return r.Serial == 2 })
	if c := row.Counters; c.Incremental != 1 || c.Full != 1 || c.Notifies < 1 || c.NotifyDenied != 0 {
		t.Errorf("after the change: %+v", c)
	}
	code, stdout, _ = runCmd(t, "zone", "status", "-s", sock, "sec.example")
	if code != exitOK || !regexpMatch(`(?m)^sec\.example\.\s+ok\s+2\s+`, stdout) ||
		!strings.Contains(stdout, "1 IXFR, 1 AXFR") {
		t.Errorf("zone status sec.example: exit %d\n%s", code, stdout)
	}
	// Downstream gets the NOTIFY and an IXFR of just the change.
	downstream.wait(t, "sec.example.", 2)
	h1 := h
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h1.stderr.String())
		}
	})
	if got, want := ixfrText(t, xd, "sec.example.", 1), strings.Join([]string{
		"sec.example.\t300\tIN\tSOA\tns1.sec.example. hostmaster.sec.example. 2 7200 3600 1209600 300",
		"sec.example.\t300\tIN\tSOA\tns1.sec.example. hostmaster.sec.example. 1 7200 3600 1209600 300",
		"www.sec.example.\t300\tIN\tA\t203.0.113.1",
		"sec.example.\t300\tIN\tSOA\tns1.sec.example. hostmaster.sec.example. 2 7200 3600 1209600 300",
		"www.sec.example.\t300\tIN\tA\t203.0.113.2",
		"sec.example.\t300\tIN\tSOA\tns1.sec.example. hostmaster.sec.example. 2 7200 3600 1209600 300",
	}, "\n"); got != want {
		t.Errorf("IXFR from serial 1:\n%s\nwant\n%s", got, want)
	}

	// refresh: an SOA check that finds the zone current.
	up := row.Counters.UpToDate
	if code, stdout, stderr := runCmd(t, "zone", "refresh", "-s", sock, "sec.example."); code != exitOK || !strings.Contains(stdout, "SOA check of sec.example. started") {
		t.Errorf("zone refresh: exit %d\n%s%s", code, stdout, stderr)
	}
	waitStatus(t, sock, "sec.example.", func(r zoneRow) bool { return r.Counters.UpToDate > up })
	// retransfer: a full transfer at the same serial.
	if code, stdout, stderr := runCmd(t, "zone", "retransfer", "-s", sock, "sec.example."); code != exitOK || !strings.Contains(stdout, "full transfer (AXFR) of sec.example. started") {
		t.Errorf("zone retransfer: exit %d\n%s%s", code, stdout, stderr)
	}
	row = waitStatus(t, sock, "sec.example.", func(r zoneRow) bool { return r.Counters.Full == 2 })
	if row.Serial != 2 || row.State != "ok" {
		t.Errorf("after retransfer: %+v", row)
	}
	h.waitAnswer("www.sec.example.", "203.0.113.2")

	// Restart with the primary gone: served at once from the state
	// directory, with the same serial, and no transfer.
	h.stop()
	n.Stop()
	h = startServe(t, cfg, port)
	h.waitAnswer("www.sec.example.", "203.0.113.2")
	row = waitStatus(t, sock, "sec.example.", func(r zoneRow) bool { return true })
	if row.State != "ok" || row.Serial != 2 || !row.FromDisk || row.Counters.SOAQueries != 0 {
		t.Errorf("after restart: %+v %+v", row, row.Counters)
	}
	code, stdout, _ = runCmd(t, "zone", "status", "-s", sock, "sec.example.")
	if code != exitOK || !strings.Contains(stdout, n.Addr().String()+" (disk)") {
		t.Errorf("zone status after restart: exit %d\n%s", code, stdout)
	}
}

// TestServeSecondaryReload turns a file zone into a secondary and back
// with SIGHUP-equivalent reloads, and checks NOTIFYs are refused from
// strangers and for file zones.
func TestServeSecondaryReload(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	n := startTestNamed(t, namedConfig{
		dir: filepath.Join(dir, "named"), notifyPort: port,
		zones: []namedZone{{name: "sw.example.", text: zoneText("sw.example.", 5, "203.0.113.5"), allowUpdate: "127.0.0.1;"}},
	})
	sock := filepath.Join(dir, "control.sock")
	writeFile(t, dir, "sw.zone", zoneText("sw.example.", 1, "203.0.113.1"))
	head := fmt.Sprintf("server:\n  listen: [\"127.0.0.1:%d\"]\n  udp-sockets: 1\nxfr:\n  state-dir: state\ncontrol:\n  socket: %s\n", port, sock)
	fileConf := head + "zones:\n  - {name: sw.example., file: sw.zone}\n"
	secConf := head + fmt.Sprintf("zones:\n  - name: sw.example.\n    primaries: [\"%s\"]\n", n.Addr())
	cfg := writeFile(t, dir, "xdpns.yaml", fileConf)
	h := startServe(t, cfg, port)
	h.waitAnswer("www.sw.example.", "203.0.113.1")

	// A NOTIFY for a file zone is refused.
	notify := new(dns.Msg)
	notify.SetNotify("sw.example.")
	c := dns.Client{Timeout: time.Second}
	if r, _, err := c.Exchange(notify, h.addr); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY for a file zone: %v %v", r, err)
	}

	writeFile(t, dir, "xdpns.yaml", secConf)
	if code, stdout, stderr := runCmd(t, "zone", "reload", "-s", sock); code != exitOK || !strings.Contains(stdout, "secondary zones restarted") {
		t.Errorf("reload to secondary: exit %d\n%s%s", code, stdout, stderr)
	}
	h.waitAnswer("www.sw.example.", "203.0.113.5")
	waitStatus(t, sock, "sw.example.", func(r zoneRow) bool { return r.Kind == "secondary" && r.Serial == 5 })

	// NOTIFY from the primary's address is taken (the test runs on the
	// same loopback address, so it counts as the primary's).
	n.update(t, "sw.example.", func(m *dns.Msg) {
		m.Insert([]dns.RR{mustRR(t, "new.sw.example. 300 IN A 203.0.113.6")})
	})
	h.waitAnswer("new.sw.example.", "203.0.113.6")

	writeFile(t, dir, "xdpns.yaml", fileConf)
	if code, stdout, stderr := runCmd(t, "zone", "reload", "-s", sock); code != exitOK || !strings.Contains(stdout, "secondary zones restarted") {
		t.Errorf("reload to file: exit %d\n%s%s", code, stdout, stderr)
	}
	h.waitAnswer("www.sw.example.", "203.0.113.1")
	if r, err := h.query("new.sw.example.", dns.TypeA); err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("new.sw.example. after going back to the file: %v %v", r, err)
	}
	resp := zoneStatusJSON(t, sock, "sw.example.")
	if len(resp.Zones) != 1 || resp.Zones[0].Kind != "file" || resp.Zones[0].Serial != 1 {
		t.Errorf("status after going back to the file: %+v", resp)
	}
}

// TestXfrConfig checks the mapping from the configuration to xfr.Config,
// and that the configuration's defaults are xfr's.
func TestXfrConfig(t *testing.T) {
	def := config.Default()
	if got := xfrTimers(def.Xfr.Timers); got != xfr.DefaultTimers {
		t.Errorf("default timers %+v, xfr's %+v", got, xfr.DefaultTimers)
	}
	if d := def.Xfr.Timeouts; (xfr.Timeouts{Query: d.Query, Read: d.Read, Transfer: d.Transfer}) != xfr.DefaultTimeouts {
		t.Errorf("default timeouts %+v, xfr's %+v", d, xfr.DefaultTimeouts)
	}
	if l := def.Xfr.Limits; l.MaxRecords != xfr.DefaultLimits.MaxRecords || l.MaxRRSize != xfr.DefaultLimits.MaxRRSize {
		t.Errorf("default limits %+v, xfr's %+v", l, xfr.DefaultLimits)
	}
	// No secondaries: no state directory to create.
	if x := xfrConfig(def); x.StateDir != "" || len(x.Zones) != 0 {
		t.Errorf("no secondaries: %+v", x)
	}

	cfg, err := config.Parse([]byte(`
xfr:
  state-dir: /var/lib/x
  max-transfers: 3
  timers: {jitter: 0, refresh-min: 5s}
keys:
  - {name: k., algorithm: hmac-sha512, secret: c2VjcmV0}
zones:
  - name: a.example
    primaries: ["192.0.2.1:53", {address: "192.0.2.2:5300", key: k}]
    allow-notify: [192.0.2.128/25]
    axfr-only: true
    timers: {retry-max: 1m, jitter: 0.3}
  - {name: b.example, file: b.zone}
`), "/etc/xdpns/x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	x := xfrConfig(cfg)
	if x.StateDir != "/var/lib/x" || x.MaxTransfers != 3 || x.MaxQueries != 64 || x.Timers.Jitter != -1 || x.Timers.RefreshMin != 5*time.Second {
		t.Errorf("xfr config %+v", x)
	}
	want := []xfr.Zone{{
		Name: "a.example.",
		Primaries: []xfr.Primary{
			{Addr: netip.MustParseAddrPort("192.0.2.1:53")},
			{Addr: netip.MustParseAddrPort("192.0.2.2:5300"), Key: &xfr.Key{Name: "k.", Algorithm: "hmac-sha512", Secret: "c2VjcmV0"}},
		},
		AllowNotify: cfg.Zones[0].AllowNotify,
		Timers:      xfr.Timers{RetryMax: time.Minute, Jitter: 0.3},
		AXFROnly:    true,
	}}
	if !reflect.DeepEqual(x.Zones, want) {
		t.Errorf("zones\n got  %+v\n want %+v", x.Zones, want)
	}
	// xfr accepts what the configuration accepted.
	x.StateDir = "" // New would create it
	if _, err := xfr.New(x); err != nil {
		t.Errorf("xfr.New: %v", err)
	}
}

// notifyListener stands for a downstream secondary: it answers NOTIFYs
// and records the serials they carry.
type notifyListener struct {
	addr    string
	serials chan string // "zone serial"
}

func startNotifyListener(t *testing.T) *notifyListener {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	l := &notifyListener{addr: pc.LocalAddr().String(), serials: make(chan string, 100)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil || m.Opcode != dns.OpcodeNotify || len(m.Question) != 1 {
				continue
			}
			serial := "?"
			if len(m.Answer) == 1 {
				if soa, ok := m.Answer[0].(*dns.SOA); ok {
					serial = fmt.Sprint(soa.Serial)
				}
			}
			select {
			case l.serials <- m.Question[0].Name + " " + serial:
			default:
			}
			r := new(dns.Msg)
			r.SetReply(m)
			if out, err := r.Pack(); err == nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return l
}

// wait waits for a NOTIFY of the zone at serial.
func (l *notifyListener) wait(t *testing.T, zoneName string, serial uint32) {
	t.Helper()
	want := fmt.Sprintf("%s %d", zoneName, serial)
	var got []string
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-l.serials:
			if s == want {
				return
			}
			got = append(got, s)
		case <-timeout:
			t.Fatalf("no NOTIFY %q; got %q", want, got)
		}
	}
}

// transfer runs an AXFR or IXFR with miekg/dns and returns the records (or
// the rcode of a refusal).
func transfer(t *testing.T, addr netip.AddrPort, q *dns.Msg, key *tsigKey) ([]dns.RR, int) {
	t.Helper()
	tr := &dns.Transfer{}
	if key != nil {
		q.SetTsig(key.name, dns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{key.name: key.secret}
	}
	ch, err := tr.In(q, addr.String())
	if err != nil {
		t.Fatalf("transfer from %s: %v", addr, err)
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			if strings.Contains(env.Error.Error(), "REFUSED") || strings.Contains(env.Error.Error(), "bad xfr rcode: 5") {
				return nil, dns.RcodeRefused
			}
			t.Fatalf("transfer from %s: %v", addr, env.Error)
		}
		out = append(out, env.RR...)
	}
	return out, dns.RcodeSuccess
}

// axfrText is the zone's AXFR from addr, sorted, one record per line.
func axfrText(t *testing.T, addr netip.AddrPort, zoneName string, key *tsigKey) string {
	t.Helper()
	q := new(dns.Msg)
	q.SetAxfr(zoneName)
	rrs, rc := transfer(t, addr, q, key)
	if rc != dns.RcodeSuccess {
		t.Fatalf("AXFR %s from %s: %s", zoneName, addr, dns.RcodeToString[rc])
	}
	lines := make([]string, 0, len(rrs))
	for _, rr := range rrs[:len(rrs)-1] { // the closing SOA
		lines = append(lines, rr.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func axfrRcode(t *testing.T, addr netip.AddrPort, zoneName string, key *tsigKey) int {
	t.Helper()
	q := new(dns.Msg)
	q.SetAxfr(zoneName)
	_, rc := transfer(t, addr, q, key)
	return rc
}

// ixfrText is the IXFR from serial, in the order sent.
func ixfrText(t *testing.T, addr netip.AddrPort, zoneName string, serial uint32) string {
	t.Helper()
	q := new(dns.Msg)
	q.SetIxfr(zoneName, serial, "ns1."+zoneName, "hostmaster."+zoneName)
	rrs, rc := transfer(t, addr, q, nil)
	if rc != dns.RcodeSuccess {
		t.Fatalf("IXFR %s from %s: %s", zoneName, addr, dns.RcodeToString[rc])
	}
	lines := make([]string, len(rrs))
	for i, rr := range rrs {
		lines[i] = rr.String()
	}
	return strings.Join(lines, "\n")
}

// TestServeSecondaryPublishFirst: a fully transferred zone is served by the
// engine at once and its answers compiled afterwards; the next IXFR then
// updates the compiled table.
func TestServeSecondaryPublishFirst(t *testing.T) {
	old := publishFirst
	publishFirst = 1 // every zone, however small
	t.Cleanup(func() { publishFirst = old })
	dir := t.TempDir()
	port := testenv.FreePort(t)
	n := startTestNamed(t, namedConfig{
		dir: filepath.Join(dir, "named"), notifyPort: port,
		zones: []namedZone{{name: "sec.example.", text: zoneText("sec.example.", 1, "203.0.113.1"),
			allowTransfer: "127.0.0.1;", allowUpdate: "127.0.0.1;"}},
	})
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
xfr:
  state-dir: state
log:
  level: debug
zones:
  - name: sec.example.
    primaries:
      - {address: "%s"}
`, port, n.Addr()))
	h := startServe(t, cfg, port)
	h.waitAnswer("www.sec.example.", "203.0.113.1")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.stderr.String(), "answers compiled") {
		if time.Now().After(deadline) {
			t.Fatalf("no \"answers compiled\" in the log:\n%s", h.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.update(t, "sec.example.", func(m *dns.Msg) {
		m.RemoveRRset([]dns.RR{mustRR(t, "www.sec.example. 300 IN A 203.0.113.1")})
		m.Insert([]dns.RR{mustRR(t, "www.sec.example. 300 IN A 203.0.113.2")})
	})
	h.waitAnswer("www.sec.example.", "203.0.113.2")
	if strings.Count(h.stderr.String(), "answers compiled") != 1 {
		t.Errorf("the IXFR compiled the whole zone again:\n%s", h.stderr)
	}
}
