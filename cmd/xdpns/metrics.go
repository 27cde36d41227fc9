package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/metrics"
	"github.com/xdpns/xdpns/userspace/xfrout"
)

// The Prometheus endpoint of serve (metrics.listen). Every value is read
// at scrape time from what the daemon keeps anyway: the sockets' atomic
// counters, XDP's per-CPU stats map, the zones' status. Nothing is
// counted for it on the query path. docs/operations.md ("Metrics") lists
// every metric.

// startMetrics opens the endpoint when metrics.listen is set. Like the
// control socket, one that cannot be opened (the port taken) is logged
// and serve goes on without it.
func (d *daemon) startMetrics() {
	mc := d.started.Metrics
	if !mc.Enabled() {
		return
	}
	log := component(d.root, "metrics")
	s, err := metrics.Listen(mc.Listen.String(), d.metricsRegistry(), log)
	if err != nil {
		log.Error("metrics endpoint not available; serving without it", "err", err)
		return
	}
	d.metrics = s
	log.Info("metrics endpoint listening", "url", s.URL())
}

// stopMetrics closes the endpoint (scrapes in progress end first).
func (d *daemon) stopMetrics() {
	if d.metrics != nil {
		d.metrics.Close()
	}
}

// metricsRegistry is what a scrape of this daemon gathers: a private
// registry (not client_golang's global one) with the daemon's collector
// alone. client_golang's Go and process collectors are not registered:
// they serve dozens of families the endpoint never had; the three
// process families it had are written by collectProcess.
func (d *daemon) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&daemonCollector{d: d, out: &xfroutTotals{}})
	return reg
}

// family is one metric family: its Desc (name, help, label names in the
// order the values are given) and its type.
type family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

// families is every family the daemon may serve, for Describe.
var families []family

func newFamily(typ prometheus.ValueType, name, help string, labels ...string) family {
	f := family{prometheus.NewDesc(name, help, labels, nil), typ}
	families = append(families, f)
	return f
}

func counter(name, help string, labels ...string) family {
	return newFamily(prometheus.CounterValue, name, help, labels...)
}

func gauge(name, help string, labels ...string) family {
	return newFamily(prometheus.GaugeValue, name, help, labels...)
}

// sink is a scrape's channel of samples.
type sink chan<- prometheus.Metric

// add sends a sample of f. A value the registry refuses (a label value
// not UTF-8) fails the scrape with the error rather than panicking the
// daemon.
func (s sink) add(f family, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(f.desc, f.typ, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(f.desc, err)
	}
	s <- m
}

func (s sink) uint(f family, v uint64, labels ...string) { s.add(f, float64(v), labels...) }

// daemonCollector reads the daemon's counters and status at scrape time.
type daemonCollector struct {
	d   *daemon
	out *xfroutTotals
}

func (c *daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
}

func (c *daemonCollector) Collect(ch chan<- prometheus.Metric) {
	s := sink(ch)
	collectProcess(s)
	c.d.collectServer(s)
	c.d.collectXDP(s)
	c.d.collectRRL(s)
	c.d.collectZones(s)
	c.d.collectZoneQueries(s)
	c.out.collect(s, c.d.out.Load)
}

// processStart stands for the start of the process.
var processStart = time.Now()

var (
	buildInfoFamily = gauge("xdpns_build_info", "Always 1; the labels say which xdpns runs.", "version", "revision", "goversion")
	startFamily     = gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.")
	rssFamily       = gauge("process_resident_memory_bytes", "Resident set size of the process, in bytes.")
	goroutineFamily = gauge("go_goroutines", "Goroutines that currently exist.")
)

func collectProcess(s sink) {
	ver, rev := buildInfo()
	s.uint(buildInfoFamily, 1, ver, rev, runtime.Version())
	s.add(startFamily, float64(processStart.UnixMilli())/1000)
	if rss, ok := residentBytes(); ok {
		s.uint(rssFamily, rss)
	}
	s.uint(goroutineFamily, uint64(runtime.NumGoroutine()))
}

// residentBytes reads the RSS from /proc/self/statm.
func residentBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

var (
	serverQueries      = counter("xdpns_server_queries_total", "Queries read by the userspace server's sockets (not those XDP answered).", "transport")
	serverUDPResponses = counter("xdpns_server_udp_responses_total", "UDP responses sent by the userspace server.")
	serverTCPConns     = counter("xdpns_server_tcp_connections_total", "TCP connections accepted.")
	serverTCPRefused   = counter("xdpns_server_tcp_refused_total", "TCP connections closed at once: server.tcp-max-connections reached.")
)

func (d *daemon) collectServer(s sink) {
	c := d.serverCounters()
	s.uint(serverQueries, c.UDPQueries, "udp")
	s.uint(serverQueries, c.TCPQueries, "tcp")
	s.uint(serverUDPResponses, c.UDPResponses)
	s.uint(serverTCPConns, c.TCPConns)
	s.uint(serverTCPRefused, c.TCPRefused)
}

var (
	xdpState       = gauge("xdpns_xdp_state", "Always 1; state is attached, loaded, off, not permitted, failed or detached.", "state")
	xdpInterfaces  = gauge("xdpns_xdp_interface_info", "Always 1 for each interface XDP is attached to; mode is native or generic.", "interface", "mode")
	zonesServed    = gauge("xdpns_zones_served", "Zones the responder answers with data (not expired, transferred at least once).")
	xdpMapZones    = gauge("xdpns_xdp_zones", "Zones in the XDP maps.")
	xdpMapLoads    = counter("xdpns_xdp_map_loads_total", "Full loads of the XDP maps (a new generation).")
	xdpMapUpdates  = counter("xdpns_xdp_map_updates_total", "Updates of one zone in the XDP maps (an IXFR's changes).")
	xdpMapFailures = counter("xdpns_xdp_map_failures_total", "Loads or updates of the XDP maps that failed (XDP then passes everything).")
	xdpPackets     = counter("xdpns_xdp_packets_total", "Packets seen by the XDP program, by verdict (tx: answered, pass: to the kernel, aborted) and reason; summed over CPUs since the maps were created.", "verdict", "reason")
)

func (d *daemon) collectXDP(s sink) {
	st := d.xdpStatus()
	s.uint(xdpState, 1, st.State)
	for _, i := range st.Interfaces {
		s.uint(xdpInterfaces, 1, i.Name, i.Mode)
	}
	s.uint(zonesServed, uint64(st.Served))
	if d.xdp == nil {
		return
	}
	s.uint(xdpMapZones, uint64(st.Zones))
	s.uint(xdpMapLoads, st.Loads)
	s.uint(xdpMapUpdates, st.Updates)
	s.uint(xdpMapFailures, st.Failures)
	if st.Counters == nil {
		return
	}
	for _, name := range loader.StatNames() {
		verdict, reason, _ := strings.Cut(name, "__")
		s.uint(xdpPackets, st.Counters[name], verdict, reason)
	}
}

// zoneMetric is one per-zone family and the samples of a zone: the
// values of its labels after zone, and the value (none: the zone has no
// such value).
type zoneMetric struct {
	f      family
	values func(r zoneRow) []labelled
}

// labelled is one sample of a zone: its labels besides zone, its value.
type labelled struct {
	labels []string
	v      float64
}

func one(u uint64, labels ...string) []labelled { return []labelled{{labels: labels, v: float64(u)}} }

func unixSeconds(t time.Time) []labelled {
	if t.IsZero() {
		return nil
	}
	return []labelled{{v: float64(t.UnixMilli()) / 1000}}
}

// secondary limits a metric to secondary zones.
func secondary(f func(r zoneRow) []labelled) func(r zoneRow) []labelled {
	return func(r zoneRow) []labelled {
		if r.Kind != "secondary" || r.Counters == nil {
			return nil
		}
		return f(r)
	}
}

var (
	zoneState         = gauge("xdpns_zone_state", "Always 1; kind is file or secondary, state as `xdpns zone status` shows it (file, failed, loading, ok, retrying, expired).", "zone", "kind", "state")
	zoneSerial        = gauge("xdpns_zone_serial", "SOA serial of the version served.", "zone")
	zoneCompiled      = gauge("xdpns_zone_compiled", "1 when the version served has precomputed answers (served first, and by XDP); 0 when it is answered by the engine alone (still compiling, or compile failed).", "zone")
	zoneLastRefresh   = gauge("xdpns_zone_last_refresh_timestamp_seconds", "Last successful check of a secondary zone, or load of a file zone, since the Unix epoch.", "zone")
	zoneNextCheck     = gauge("xdpns_zone_next_check_timestamp_seconds", "When a secondary zone's primaries are asked next, since the Unix epoch.", "zone")
	zoneExpire        = gauge("xdpns_zone_expire_seconds", "Seconds left before a secondary zone expires (answers SERVFAIL) without a successful check; 0 once expired.", "zone")
	zoneSOAQueries    = counter("xdpns_zone_soa_queries_total", "SOA queries sent for a secondary zone (each primary tried counts).", "zone")
	zoneTransfers     = counter("xdpns_zone_transfers_total", "Transfers applied to a secondary zone: ixfr (differences), axfr (the whole zone, also an IXFR answered with it).", "zone", "type")
	zoneUpToDate      = counter("xdpns_zone_checks_up_to_date_total", "Checks of a secondary zone that found the primary at the serial served.", "zone")
	zoneCheckFailures = counter("xdpns_zone_check_failures_total", "Checks of a secondary zone that failed on every primary.", "zone")
	zoneNotifies      = counter("xdpns_zone_notifies_total", "NOTIFYs received for a secondary zone: accepted, or refused (not from a primary or allow-notify, or not signed as required).", "zone", "result")
	zoneQueries       = counter("xdpns_zone_queries_total", "Queries for a zone, by who answered them: userspace (the responder, queries XDP passed included) or xdp (XDP's answers, since the zone entered the maps; only with XDP on).", "zone", "path")
)

func (d *daemon) collectZones(s sink) {
	rows := d.status("")
	now := time.Now()
	// Whether the version served has precomputed answers (what the
	// fast path and XDP answer from) or is answered by the engine alone.
	compiled := map[string]bool{}
	d.zmu.Lock()
	for origin, rz := range d.served {
		if rz.Zone != nil {
			compiled[dns.CanonicalName(origin)] = rz.Table != nil
		}
	}
	d.zmu.Unlock()

	fams := []zoneMetric{
		{zoneState, func(r zoneRow) []labelled { return one(1, r.Kind, r.State) }},
		{zoneSerial, func(r zoneRow) []labelled {
			if !r.Served {
				return nil
			}
			return one(uint64(r.Serial))
		}},
		{zoneCompiled, func(r zoneRow) []labelled {
			c, ok := compiled[r.Name]
			if !ok || !r.Served {
				return nil
			}
			n := uint64(0)
			if c {
				n = 1
			}
			return one(n)
		}},
		{zoneLastRefresh, func(r zoneRow) []labelled { return unixSeconds(r.LastRefresh) }},
		{zoneNextCheck, secondary(func(r zoneRow) []labelled { return unixSeconds(r.NextCheck) })},
		{zoneExpire, secondary(func(r zoneRow) []labelled {
			if r.ExpireAt.IsZero() {
				return nil
			}
			return []labelled{{v: max(0, r.ExpireAt.Sub(now).Seconds())}}
		})},
		{zoneSOAQueries, secondary(func(r zoneRow) []labelled { return one(r.Counters.SOAQueries) })},
		{zoneTransfers, secondary(func(r zoneRow) []labelled {
			return []labelled{{labels: []string{"ixfr"}, v: float64(r.Counters.Incremental)}, {labels: []string{"axfr"}, v: float64(r.Counters.Full)}}
		})},
		{zoneUpToDate, secondary(func(r zoneRow) []labelled { return one(r.Counters.UpToDate) })},
		{zoneCheckFailures, secondary(func(r zoneRow) []labelled { return one(r.Counters.Failures) })},
		{zoneNotifies, secondary(func(r zoneRow) []labelled {
			return []labelled{{labels: []string{"accepted"}, v: float64(r.Counters.Notifies)}, {labels: []string{"refused"}, v: float64(r.Counters.NotifyDenied)}}
		})},
	}
	labels := make([]string, 0, 3)
	for _, f := range fams {
		for _, r := range rows {
			for _, v := range f.values(r) {
				labels = append(append(labels[:0], r.Name), v.labels...)
				s.add(f.f, v.v, labels...)
			}
		}
	}
}

// collectZoneQueries writes the per-zone query counters: the responder's
// for every zone it serves, and XDP's answers for the same zones when XDP
// is on. Both are read from the zones the responder serves now, so a
// zone removed loses both series at once (XDP frees its counter slot
// only when the maps' old generation is retired). XDP's answers for
// zones beyond xdp.max-zones (counted together, not by zone) are not
// written.
func (d *daemon) collectZoneQueries(s sink) {
	var xdp map[string]uint64
	if d.xdp != nil {
		d.xdp.mu.Lock()
		if !d.xdp.closed {
			var err error
			if xdp, err = d.xdp.x.ZoneAnswers(); err != nil {
				d.xdp.log.Warn("per-zone XDP answers not read", "err", err)
				xdp = nil
			}
		}
		d.xdp.mu.Unlock()
	}
	d.r.ZoneQueries(func(origin string, n uint64) {
		s.uint(zoneQueries, n, origin, "userspace")
		if xdp != nil {
			s.uint(zoneQueries, xdp[origin], origin, "xdp")
		}
	})
}

// xfroutTotals keeps the transfers-out counters monotonic across the
// xfrout.Server a reload replaces (new allow-transfer or notify
// settings): what the replaced one counted is carried over.
type xfroutTotals struct {
	mu   sync.Mutex
	last *xfrout.Server
	base [9]uint64
}

func xfroutValues(s *xfrout.Server) (v [9]uint64) {
	if s == nil {
		return v
	}
	st := &s.Stats
	return [9]uint64{st.AXFR.Load(), st.IXFRIncremental.Load(), st.IXFRFull.Load(), st.IXFRCurrent.Load(),
		st.Refused.Load(), st.Failed.Load(), st.NotifySent.Load(), st.NotifyAnswered.Load(), st.NotifyGaveUp.Load()}
}

func (t *xfroutTotals) read(cur *xfrout.Server) [9]uint64 {
	return t.readFrom(func() *xfrout.Server { return cur })
}

// readFrom takes the current server under the lock: two scrapes racing a
// reload must not see the servers in opposite orders, or the replaced
// one's counts would be added to base twice.
func (t *xfroutTotals) readFrom(load func() *xfrout.Server) [9]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := load()
	if cur != t.last {
		old := xfroutValues(t.last)
		for i := range t.base {
			t.base[i] += old[i]
		}
		t.last = cur
	}
	v := xfroutValues(cur)
	for i := range v {
		v[i] += t.base[i]
	}
	return v
}

var (
	xfroutTransfers  = counter("xdpns_xfrout_transfers_total", "Transfers answered to downstream secondaries: axfr; ixfr (differences), ixfr_full (the whole zone), ixfr_current (our SOA alone: up to date).", "type")
	xfroutRefused    = counter("xdpns_xfrout_refused_total", "Transfer requests refused (REFUSED or NOTAUTH: unknown zone, allow-transfer, TSIG).")
	xfroutFailed     = counter("xdpns_xfrout_failed_total", "Transfer requests that failed (SERVFAIL: no data, expired, busy; FORMERR; write errors).")
	xfroutSent       = counter("xdpns_xfrout_notifies_sent_total", "NOTIFY datagrams sent to downstream targets, retries included.")
	xfroutAnswered   = counter("xdpns_xfrout_notifies_answered_total", "NOTIFYs answered by their target (any rcode).")
	xfroutUnanswered = counter("xdpns_xfrout_notifies_unanswered_total", "NOTIFYs never answered after every retry.")
)

func (t *xfroutTotals) collect(s sink, load func() *xfrout.Server) {
	v := t.readFrom(load)
	s.uint(xfroutTransfers, v[0], "axfr")
	s.uint(xfroutTransfers, v[1], "ixfr")
	s.uint(xfroutTransfers, v[2], "ixfr_full")
	s.uint(xfroutTransfers, v[3], "ixfr_current")
	s.uint(xfroutRefused, v[4])
	s.uint(xfroutFailed, v[5])
	s.uint(xfroutSent, v[6])
	s.uint(xfroutAnswered, v[7])
	s.uint(xfroutUnanswered, v[8])
}
