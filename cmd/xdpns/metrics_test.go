package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/xfrout"
)

// scraped is a page of /metrics as expfmt parsed it.
type scraped map[string]*scrapedFamily

type scrapedFamily struct {
	Name, Help string
	Type       dto.MetricType
	Samples    []scrapedSample
}

type scrapedSample struct {
	Labels map[string]string
	Value  float64
}

// scrape GETs url (through dial when set) and parses the page with
// client_golang's own parser (expfmt), after checking that it is the
// text format.
func scrape(t *testing.T, url string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) scraped {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("scrape %s: %s %q\n%s", url, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("scrape %s: %v\n%s", url, err, body)
	}
	sc := scraped{}
	for name, f := range fams {
		sf := &scrapedFamily{Name: name, Help: f.GetHelp(), Type: f.GetType()}
		for _, m := range f.Metric {
			s := scrapedSample{Labels: map[string]string{}}
			for _, l := range m.Label {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.Value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.Value = m.GetGauge().GetValue()
			default:
				t.Fatalf("scrape %s: %s is a %s", url, name, f.GetType())
			}
			sf.Samples = append(sf.Samples, s)
		}
		sc[name] = sf
	}
	return sc
}

// Family is the family of that name, or nil.
func (sc scraped) Family(name string) *scrapedFamily { return sc[name] }

// has reports whether s has all these labels (name, value pairs).
func (s scrapedSample) has(labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if v, ok := s.Labels[labels[i]]; !ok || v != labels[i+1] {
			return false
		}
	}
	return true
}

// Get is the value of the sample of name with exactly these labels.
func (sc scraped) Get(name string, labels ...string) (float64, bool) {
	if f := sc[name]; f != nil {
		for _, s := range f.Samples {
			if len(s.Labels) == len(labels)/2 && s.has(labels) {
				return s.Value, true
			}
		}
	}
	return 0, false
}

// Sum adds the samples of name that have these labels (and maybe more).
func (sc scraped) Sum(name string, labels ...string) float64 {
	var n float64
	if f := sc[name]; f != nil {
		for _, s := range f.Samples {
			if s.has(labels) {
				n += s.Value
			}
		}
	}
	return n
}

// mustGet is the value of the sample of name with exactly these labels.
func mustGet(t *testing.T, sc scraped, name string, labels ...string) float64 {
	t.Helper()
	v, ok := sc.Get(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%q", name, labels)
	}
	return v
}

// familyLines is each family of sc as testdata/metric_families.txt
// writes it: name, type, label names sorted ("-" for none).
func familyLines(t *testing.T, sc scraped) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, f := range sc {
		typ := strings.ToLower(f.Type.String())
		for _, s := range f.Samples {
			keys := slices.Sorted(maps.Keys(s.Labels))
			l := "-"
			if len(keys) > 0 {
				l = strings.Join(keys, ",")
			}
			line := name + " " + typ + " " + l
			if prev, ok := out[name]; ok && prev != line {
				t.Errorf("family %s has samples with other labels: %q and %q", name, prev, line)
			}
			out[name] = line
		}
	}
	return out
}

// knownFamilies reads testdata/metric_families.txt: every family the
// endpoint may serve, by name.
func knownFamilies(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/metric_families.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		out[name] = line
	}
	return out
}

// xdpOnlyFamilies are served only with XDP on.
var xdpOnlyFamilies = []string{"xdpns_xdp_interface_info", "xdpns_xdp_zones", "xdpns_xdp_map_loads_total",
	"xdpns_xdp_map_updates_total", "xdpns_xdp_map_failures_total", "xdpns_xdp_packets_total"}

// checkFamilies compares the families of sc with the known ones: each
// served is known, with its type and labels; each known is served but
// those of absent.
func checkFamilies(t *testing.T, sc scraped, absent []string) {
	t.Helper()
	known, got := knownFamilies(t), familyLines(t, sc)
	for name, line := range got {
		if want, ok := known[name]; !ok || want != line {
			t.Errorf("served %q, testdata/metric_families.txt has %q", line, want)
		}
	}
	for name, line := range known {
		if _, ok := got[name]; !ok && !slices.Contains(absent, name) {
			t.Errorf("not served: %q", line)
		}
	}
}

// TestServeMetrics: serve with metrics.listen, a file zone (transferable)
// and a secondary zone. The page parses and names every family; the
// socket counters move by exactly the queries asked; the secondary's
// transfer, SOA and NOTIFY counters, serial and timers follow a NOTIFY
// and a new serial; an AXFR out counts; a reload that changes
// metrics.listen says to restart and keeps the endpoint; stop closes it.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	port, mport := testenv.FreePort(t), testenv.FreePort(t)
	primary := startLoopPrimary(t)
	primary.set("sec.example.", 5, "192.0.2.5")
	writeFile(t, dir, "a.example.zone", zoneText("a.example.", 1, "203.0.113.10"))
	conf := func(mport int) string {
		return fmt.Sprintf(`server: {listen: ["127.0.0.1:%d"], udp-sockets: 1, rrl: {responses-per-second: 1000}}
xfr: {state-dir: state}
control: {socket: ctl.sock}
metrics: {listen: "127.0.0.1:%d"}
zones:
  - name: a.example.
    file: a.example.zone
    allow-transfer: {from: [127.0.0.1/32]}
  - name: sec.example.
    primaries: ["%s"]
`, port, mport, primary.addr)
	}
	cfg := writeFile(t, dir, "xdpns.yaml", conf(mport))
	h := startServe(t, cfg, port)
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitAnswer("www.sec.example.", "192.0.2.5")
	h.waitLog(fmt.Sprintf(`msg="metrics endpoint listening" component=metrics url=http://127.0.0.1:%d/metrics`, mport))
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)

	sc := scrape(t, url, nil)
	// Every family known but XDP's (off here), as the hand-written
	// endpoint served them.
	checkFamilies(t, sc, xdpOnlyFamilies)
	for _, name := range []string{
		"xdpns_build_info", "process_start_time_seconds", "process_resident_memory_bytes", "go_goroutines",
		"xdpns_server_queries_total", "xdpns_server_udp_responses_total", "xdpns_server_tcp_connections_total", "xdpns_server_tcp_refused_total",
		"xdpns_xdp_state", "xdpns_zones_served",
		"xdpns_zone_state", "xdpns_zone_serial", "xdpns_zone_compiled", "xdpns_zone_last_refresh_timestamp_seconds",
		"xdpns_zone_next_check_timestamp_seconds", "xdpns_zone_expire_seconds", "xdpns_zone_soa_queries_total",
		"xdpns_zone_transfers_total", "xdpns_zone_checks_up_to_date_total", "xdpns_zone_check_failures_total", "xdpns_zone_notifies_total",
		"xdpns_xfrout_transfers_total", "xdpns_xfrout_refused_total", "xdpns_xfrout_failed_total",
		"xdpns_xfrout_notifies_sent_total", "xdpns_xfrout_notifies_answered_total", "xdpns_xfrout_notifies_unanswered_total",
	} {
		if f := sc.Family(name); f == nil || len(f.Samples) == 0 || f.Help == "" {
			t.Errorf("family %s missing, empty or without help", name)
		}
	}
	if f := sc.Family("xdpns_xdp_packets_total"); f != nil {
		t.Errorf("XDP packet counters without XDP: %+v", f)
	}
	if f := sc.Family("xdpns_build_info"); f.Samples[0].Labels["version"] != version || f.Samples[0].Labels["goversion"] == "" {
		t.Errorf("build info %v", f.Samples[0].Labels)
	}
	if v := mustGet(t, sc, "xdpns_xdp_state", "state", "off"); v != 1 {
		t.Errorf("xdp state off = %v", v)
	}
	if v := mustGet(t, sc, "xdpns_zones_served"); v != 2 {
		t.Errorf("zones served %v", v)
	}
	if v := mustGet(t, sc, "process_resident_memory_bytes"); v < 1<<20 {
		t.Errorf("rss %v", v)
	}
	now := float64(time.Now().Unix())
	for _, z := range []struct {
		name, kind, state string
		serial            float64
	}{{"a.example.", "file", "file", 1}, {"sec.example.", "secondary", "ok", 5}} {
		if v := mustGet(t, sc, "xdpns_zone_state", "zone", z.name, "kind", z.kind, "state", z.state); v != 1 {
			t.Errorf("%s state %v", z.name, v)
		}
		if len(sc.Family("xdpns_zone_state").Samples) != 2 {
			t.Errorf("zone states %+v", sc.Family("xdpns_zone_state").Samples)
		}
		if v := mustGet(t, sc, "xdpns_zone_serial", "zone", z.name); v != z.serial {
			t.Errorf("%s serial %v, want %v", z.name, v, z.serial)
		}
		if v := mustGet(t, sc, "xdpns_zone_compiled", "zone", z.name); v != 1 {
			t.Errorf("%s compiled %v", z.name, v)
		}
		if v := mustGet(t, sc, "xdpns_zone_last_refresh_timestamp_seconds", "zone", z.name); v < now-60 || v > now+1 {
			t.Errorf("%s last refresh %v, now %v", z.name, v, now)
		}
	}
	// Secondary-only families have no file zone in them.
	for _, name := range []string{"xdpns_zone_expire_seconds", "xdpns_zone_soa_queries_total", "xdpns_zone_next_check_timestamp_seconds"} {
		if _, ok := sc.Get(name, "zone", "a.example."); ok {
			t.Errorf("%s has the file zone", name)
		}
	}
	// The SOA's expire is 1209600 s (14 days).
	if v := mustGet(t, sc, "xdpns_zone_expire_seconds", "zone", "sec.example."); v < 1209600-60 || v > 1209600 {
		t.Errorf("expire in %v s", v)
	}
	if v := mustGet(t, sc, "xdpns_zone_next_check_timestamp_seconds", "zone", "sec.example."); v < now {
		t.Errorf("next check %v, now %v", v, now)
	}
	if v := mustGet(t, sc, "xdpns_zone_transfers_total", "zone", "sec.example.", "type", "axfr"); v != 1 {
		t.Errorf("sec.example. full transfers %v, want 1", v)
	}
	if v := mustGet(t, sc, "xdpns_zone_soa_queries_total", "zone", "sec.example."); v < 1 {
		t.Errorf("SOA queries %v", v)
	}

	// Exactly the queries asked move the socket counters.
	for range 5 {
		if r, err := h.query("www.a.example.", dns.TypeA); err != nil || len(r.Answer) != 1 {
			t.Fatalf("udp query: %v %v", r, err)
		}
	}
	for range 2 {
		m := new(dns.Msg)
		m.SetQuestion("www.sec.example.", dns.TypeA)
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
		if r, _, err := c.Exchange(m, h.addr); err != nil || len(r.Answer) != 1 {
			t.Fatalf("tcp query: %v %v", r, err)
		}
	}
	sc2 := scrape(t, url, nil)
	for _, c := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"xdpns_server_queries_total", []string{"transport", "udp"}, 5},
		{"xdpns_server_udp_responses_total", nil, 5},
		{"xdpns_server_queries_total", []string{"transport", "tcp"}, 2},
		{"xdpns_server_tcp_connections_total", nil, 2},
		{"xdpns_server_tcp_refused_total", nil, 0},
		{"xdpns_zone_queries_total", []string{"zone", "a.example.", "path", "userspace"}, 5},
		{"xdpns_zone_queries_total", []string{"zone", "sec.example.", "path", "userspace"}, 2},
	} {
		if d := mustGet(t, sc2, c.name, c.labels...) - mustGet(t, sc, c.name, c.labels...); d != c.delta {
			t.Errorf("%s%q moved by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}

	// A NOTIFY from the primary's address with a new serial there: one
	// accepted, an SOA query, a transfer, the new serial.
	primary.set("sec.example.", 6, "192.0.2.6")
	notify := new(dns.Msg)
	notify.SetNotify("sec.example.")
	if r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(notify, h.addr); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("NOTIFY: %v %v", r, err)
	}
	h.waitAnswer("www.sec.example.", "192.0.2.6")
	var sc3 scraped
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sc3 = scrape(t, url, nil)
		if v, _ := sc3.Get("xdpns_zone_serial", "zone", "sec.example."); v == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial never 6 in the metrics")
		}
	}
	if v := mustGet(t, sc3, "xdpns_zone_notifies_total", "zone", "sec.example.", "result", "accepted"); v != 1 {
		t.Errorf("NOTIFYs accepted %v", v)
	}
	if v := mustGet(t, sc3, "xdpns_zone_notifies_total", "zone", "sec.example.", "result", "refused"); v != 0 {
		t.Errorf("NOTIFYs refused %v", v)
	}
	if d := mustGet(t, sc3, "xdpns_zone_soa_queries_total", "zone", "sec.example.") - mustGet(t, sc, "xdpns_zone_soa_queries_total", "zone", "sec.example."); d < 1 {
		t.Errorf("no SOA query after the NOTIFY")
	}
	if v := mustGet(t, sc3, "xdpns_zone_transfers_total", "zone", "sec.example.", "type", "axfr"); v != 2 {
		t.Errorf("full transfers %v, want 2", v)
	}
	if v := mustGet(t, sc3, "xdpns_zone_check_failures_total", "zone", "sec.example."); v != 0 {
		t.Errorf("failures %v", v)
	}

	// An AXFR out of the file zone; one refused (a zone not served).
	if rrs, rcode := transfer(t, netip.MustParseAddrPort(h.addr), axfrQuery("a.example."), nil); rcode != dns.RcodeSuccess || len(rrs) < 4 {
		t.Fatalf("AXFR a.example.: %d, %d records", rcode, len(rrs))
	}
	if _, rcode := transfer(t, netip.MustParseAddrPort(h.addr), axfrQuery("other.example."), nil); rcode != dns.RcodeRefused {
		t.Errorf("AXFR other.example.: rcode %d", rcode)
	}
	sc4 := scrape(t, url, nil)
	if v := mustGet(t, sc4, "xdpns_xfrout_transfers_total", "type", "axfr"); v != 1 {
		t.Errorf("AXFRs out %v", v)
	}
	if v := mustGet(t, sc4, "xdpns_xfrout_refused_total"); v != 1 {
		t.Errorf("transfers refused %v", v)
	}

	// A zone added at run time has its series; once removed, none is
	// left with its name. Without XDP there is no xdp path.
	primary.set("rt.example.", 1, "192.0.2.7")
	sock := filepath.Join(dir, "ctl.sock")
	if code, out := rtCall(t, sock, "add", "rt.example.", "--primary", primary.addr.String()); code != exitOK {
		t.Fatalf("zone add: %d %s", code, out)
	}
	h.waitAnswer("www.rt.example.", "192.0.2.7")
	sc5 := scrape(t, url, nil)
	if v := mustGet(t, sc5, "xdpns_zone_queries_total", "zone", "rt.example.", "path", "userspace"); v < 1 {
		t.Errorf("rt.example. queries %v after an answer", v)
	}
	if v := mustGet(t, sc5, "xdpns_zone_serial", "zone", "rt.example."); v != 1 {
		t.Errorf("rt.example. serial %v", v)
	}
	if v := sc5.Sum("xdpns_zone_queries_total", "path", "xdp"); v != 0 || len(sc5.Family("xdpns_zone_queries_total").Samples) != 3 {
		t.Errorf("zone queries %+v, want 3 zones, userspace only", sc5.Family("xdpns_zone_queries_total").Samples)
	}
	if code, out := rtCall(t, sock, "remove", "rt.example."); code != exitOK {
		t.Fatalf("zone remove: %d %s", code, out)
	}
	sc6 := scrape(t, url, nil)
	for name, f := range sc6 {
		for _, smp := range f.Samples {
			if smp.Labels["zone"] == "rt.example." {
				t.Errorf("removed zone still in %s: %v", name, smp.Labels)
			}
		}
	}
	if _, ok := sc6.Get("xdpns_zone_queries_total", "zone", "a.example.", "path", "userspace"); !ok {
		t.Error("a.example. lost its queries counter with rt.example.")
	}

	// A reload that changes metrics.listen: restart to apply; the
	// endpoint stays where it was.
	writeFile(t, dir, "xdpns.yaml", conf(testenv.FreePort(t)))
	if code, out, errOut := runCmd(t, "zone", "reload", "-s", filepath.Join(dir, "ctl.sock")); code != exitOK {
		t.Fatalf("zone reload: exit %d\n%s%s", code, out, errOut)
	}
	h.waitLog(`msg="metrics settings changed; restart to apply them"`)
	scrape(t, url, nil)

	h.stop()
	if _, err := http.Get(url); err == nil {
		t.Error("metrics still answered after stop")
	}
}

func axfrQuery(zone string) *dns.Msg {
	m := new(dns.Msg)
	m.SetAxfr(zone)
	return m
}

// TestServeMetricsPortTaken: a metrics port already taken is logged and
// serve goes on answering.
func TestServeMetricsPortTaken(t *testing.T) {
	dir := t.TempDir()
	port, mport := testenv.FreePort(t), testenv.FreePort(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(mport))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	writeFile(t, dir, "a.example.zone", zoneText("a.example.", 1, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server: {listen: ["127.0.0.1:%d"], udp-sockets: 1}
control: {socket: ""}
metrics: {listen: "127.0.0.1:%d"}
zones: [{name: a.example., file: a.example.zone}]
`, port, mport))
	h := startServe(t, cfg, port)
	h.waitLog(`msg="metrics endpoint not available; serving without it" component=metrics`)
	h.waitAnswer("www.a.example.", "203.0.113.10")
}

// TestServeMetricsBadConfig: serve refuses a bad metrics section with the
// line.
func TestServeMetricsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "xdpns.yaml", "server: {listen: [\"127.0.0.1:5353\"]}\nmetrics:\n  listen: localhost:9153\n  path: /metrics\n")
	code, _, stderr := runCmd(t, "serve", "-c", cfg)
	for _, want := range []string{
		cfg + `:3: metrics.listen: bad address "localhost:9153": "localhost" is not an IP address`,
		cfg + `:4: unknown key "path" in metrics; valid keys: listen`,
	} {
		if code != exitFail || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}

// TestServeXDPMetrics: with XDP on a veth lab, the endpoint (on the
// server's veth address, scraped from the client namespace) counts the
// queries XDP answered by reason, the misses it passed, and agrees with
// `xdpns xdp stats`.
func TestServeXDPMetrics(t *testing.T) {
	x := newXDPTest(t)
	x.zoneFile("example.com.", 1, "203.0.113.10")
	x.zoneFile("example.net.", 1, "198.51.100.10")
	maddr := netip.AddrPortFrom(x.lab.Server4, 9153)
	writeFile(t, x.dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["%s:53", "[%s]:53"]
  udp-sockets: 1
control: {socket: ctl.sock}
metrics: {listen: "%s"}
xdp: {interfaces: [%s]}
zones:
%s`, x.lab.Server4, x.lab.Server6, maddr, x.lab.ServerIf, twoFileZones))
	p := x.serve(2)
	url := "http://" + maddr.String() + "/metrics"
	before := scrape(t, url, x.lab.DialClient)
	// Every XDP family, as the hand-written endpoint served them; no
	// secondary zone and no RRL here.
	checkFamilies(t, before, []string{"xdpns_rrl_responses_total", "xdpns_zone_next_check_timestamp_seconds",
		"xdpns_zone_expire_seconds", "xdpns_zone_soa_queries_total", "xdpns_zone_transfers_total",
		"xdpns_zone_checks_up_to_date_total", "xdpns_zone_check_failures_total", "xdpns_zone_notifies_total"})
	if v := mustGet(t, before, "xdpns_xdp_state", "state", "attached"); v != 1 {
		t.Errorf("xdp state %v", v)
	}
	if v := mustGet(t, before, "xdpns_xdp_interface_info", "interface", x.lab.ServerIf, "mode", "native"); v != 1 {
		t.Errorf("interface %v", v)
	}
	if v := mustGet(t, before, "xdpns_xdp_zones"); v != 2 {
		t.Errorf("zones in XDP %v", v)
	}
	if len(before.Family("xdpns_xdp_packets_total").Samples) != len(loader.StatNames()) {
		t.Errorf("packet counters %+v, want one per stat", before.Family("xdpns_xdp_packets_total").Samples)
	}
	ask := func(server netip.Addr, name string, rcode int) {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, err := exchangeVia(context.Background(), &dns.Client{Timeout: 2 * time.Second}, x.lab.DialClient, m, netip.AddrPortFrom(server, 53).String())
		if err != nil || r.Rcode != rcode {
			t.Fatalf("%s @%s: %v %v", name, server, r, err)
		}
	}
	for range 3 {
		ask(x.lab.Server4, "www.example.com.", dns.RcodeSuccess)
	}
	ask(x.lab.Server6, "www.example.net.", dns.RcodeSuccess)
	ask(x.lab.Server4, "nosuch.example.com.", dns.RcodeNameError)
	ask(x.lab.Server6, "www.example.org.", dns.RcodeRefused) // no zone: passed, Go answers
	after := scrape(t, url, x.lab.DialClient)
	for _, c := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"xdpns_xdp_packets_total", []string{"verdict", "tx", "reason", "answer"}, 4},
		{"xdpns_xdp_packets_total", []string{"verdict", "tx", "reason", "nxdomain"}, 1},
		{"xdpns_xdp_packets_total", []string{"verdict", "pass", "reason", "no_entry"}, 1},
		{"xdpns_server_queries_total", []string{"transport", "udp"}, 1},
		{"xdpns_server_udp_responses_total", nil, 1},
		// Per zone: XDP's answers (NXDOMAIN included), nothing left to
		// the responder; www.example.org. is no zone's.
		{"xdpns_zone_queries_total", []string{"zone", "example.com.", "path", "xdp"}, 4},
		{"xdpns_zone_queries_total", []string{"zone", "example.net.", "path", "xdp"}, 1},
		{"xdpns_zone_queries_total", []string{"zone", "example.com.", "path", "userspace"}, 0},
		{"xdpns_zone_queries_total", []string{"zone", "example.net.", "path", "userspace"}, 0},
	} {
		if d := mustGet(t, after, c.name, c.labels...) - mustGet(t, before, c.name, c.labels...); d != c.delta {
			t.Errorf("%s%q moved by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}
	// The same counters as `xdpns xdp stats` (no DNS query in between;
	// the scrapes' own TCP packets are passed as pass__not_udp).
	st := x.mustStats()
	for _, name := range loader.StatNames() {
		if name == "pass__not_udp" || name == "pass__not_ip" {
			continue
		}
		verdict, reason, _ := strings.Cut(name, "__")
		if v := mustGet(t, after, "xdpns_xdp_packets_total", "verdict", verdict, "reason", reason); v != float64(st.XDP.Counters[name]) {
			t.Errorf("%s: metrics %v, xdp stats %d", name, v, st.XDP.Counters[name])
		}
	}
	if d := mustGet(t, after, "xdpns_xdp_packets_total", "verdict", "pass", "reason", "not_udp") - mustGet(t, before, "xdpns_xdp_packets_total", "verdict", "pass", "reason", "not_udp"); d < 1 {
		t.Errorf("the scrape's TCP packets were not passed: pass__not_udp +%v", d)
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"xdpns_xdp_map_loads_total", float64(st.XDP.Loads)}, {"xdpns_xdp_map_updates_total", float64(st.XDP.Updates)}, {"xdpns_xdp_map_failures_total", 0}} {
		if v := mustGet(t, after, c.name); v != c.v {
			t.Errorf("%s %v, want %v", c.name, v, c.v)
		}
	}

	// example.net. removed (a reload without it): its series go, on both
	// paths, once the responder stops serving it; example.com. keeps its
	// counts.
	writeFile(t, x.dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["%s:53", "[%s]:53"]
  udp-sockets: 1
control: {socket: ctl.sock}
metrics: {listen: "%s"}
xdp: {interfaces: [%s]}
zones:
  - {name: example.com., file: example.com.zone}
`, x.lab.Server4, x.lab.Server6, maddr, x.lab.ServerIf))
	if code, out, errOut := runCmd(t, "zone", "reload", "-s", x.sock); code != exitOK {
		t.Fatalf("zone reload: exit %d\n%s%s", code, out, errOut)
	}
	removed := scrape(t, url, x.lab.DialClient)
	if f := removed.Family("xdpns_zone_queries_total"); len(f.Samples) != 2 {
		t.Errorf("after removing example.net.: %+v, want example.com.'s two", f.Samples)
	}
	if v := mustGet(t, removed, "xdpns_zone_queries_total", "zone", "example.com.", "path", "xdp"); v != mustGet(t, after, "xdpns_zone_queries_total", "zone", "example.com.", "path", "xdp") {
		t.Errorf("example.com. XDP answers %v after the reload", v)
	}
	x.stop(p)
}

// TestServeMetricsManyZones: 1,000 secondary zones and a file zone on one
// page: a sample of each per-zone family for each zone, scraped while
// the zones are transferred and once all are ok, each scrape quick.
func TestServeMetricsManyZones(t *testing.T) {
	const n = 1000
	dir := t.TempDir()
	port, mport := testenv.FreePort(t), testenv.FreePort(t)
	primary := startLoopPrimary(t)
	var b strings.Builder
	fmt.Fprintf(&b, "server: {listen: [\"127.0.0.1:%d\"], udp-sockets: 1}\nxfr: {state-dir: \"\"}\ncontrol: {socket: \"\"}\nmetrics: {listen: \"127.0.0.1:%d\"}\nzones:\n  - {name: a.example., file: a.example.zone}\n", port, mport)
	for i := range n {
		name := fmt.Sprintf("z%d.example.", i)
		primary.set(name, i+1, "192.0.2.1")
		fmt.Fprintf(&b, "  - {name: %s, primaries: [\"%s\"]}\n", name, primary.addr)
	}
	writeFile(t, dir, "a.example.zone", zoneText("a.example.", 1, "203.0.113.10"))
	h := startServe(t, writeFile(t, dir, "xdpns.yaml", b.String()), port)
	h.waitLog(`msg="metrics endpoint listening"`)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	var sc scraped
	var took time.Duration
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		start := time.Now()
		sc = scrape(t, url, nil)
		took = max(took, time.Since(start))
		if len(sc.Family("xdpns_zone_state").Samples) != n+1 {
			t.Fatalf("%d zone states, want %d", len(sc.Family("xdpns_zone_state").Samples), n+1)
		}
		// A zone's state says ok a moment before the server has it (the
		// Manager records a transfer, then hands the zone over).
		if sc.Sum("xdpns_zone_state", "state", "ok") == n && sc.Sum("xdpns_zones_served") == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d zones ok after 30s", sc.Sum("xdpns_zone_state", "state", "ok"), n)
		}
	}
	if took > 2*time.Second {
		t.Errorf("a scrape of %d zones took %v", n, took)
	}
	for name, want := range map[string]int{
		"xdpns_zone_serial": n + 1, "xdpns_zone_compiled": n + 1, "xdpns_zone_last_refresh_timestamp_seconds": n + 1,
		"xdpns_zone_expire_seconds": n, "xdpns_zone_next_check_timestamp_seconds": n, "xdpns_zone_soa_queries_total": n,
		"xdpns_zone_transfers_total": 2 * n, "xdpns_zone_checks_up_to_date_total": n, "xdpns_zone_check_failures_total": n,
		"xdpns_zone_notifies_total": 2 * n,
	} {
		if got := len(sc.Family(name).Samples); got != want {
			t.Errorf("%s: %d samples, want %d", name, got, want)
		}
	}
	if v := mustGet(t, sc, "xdpns_zone_serial", "zone", "z999.example."); v != n {
		t.Errorf("z999.example. serial %v", v)
	}
	if v := sc.Sum("xdpns_zone_transfers_total", "type", "axfr"); v != n {
		t.Errorf("%v full transfers, want %d", v, n)
	}
	if v := mustGet(t, sc, "xdpns_zones_served"); v != n+1 {
		t.Errorf("zones served %v", v)
	}
	t.Logf("slowest scrape %v", took)
}

// TestXfroutTotals: the transfers-out counters stay monotonic when a
// reload replaces the xfrout.Server: the replaced one's counts are kept.
func TestXfroutTotals(t *testing.T) {
	var tot xfroutTotals
	a, b := &xfrout.Server{}, &xfrout.Server{}
	a.Stats.AXFR.Add(3)
	a.Stats.NotifySent.Add(2)
	if v := tot.read(a); v[0] != 3 || v[6] != 2 {
		t.Fatalf("first %v", v)
	}
	a.Stats.AXFR.Add(1) // after the last scrape, before the swap
	b.Stats.AXFR.Add(5)
	b.Stats.Refused.Add(1)
	if v := tot.read(b); v[0] != 9 || v[4] != 1 || v[6] != 2 {
		t.Errorf("after the swap %v, want 9 AXFRs, 1 refused, 2 NOTIFYs", v)
	}
	b.Stats.AXFR.Add(1)
	if v := tot.read(b); v[0] != 10 {
		t.Errorf("then %v", v)
	}
	if v := tot.read(nil); v[0] != 10 {
		t.Errorf("no server %v", v)
	}
}
