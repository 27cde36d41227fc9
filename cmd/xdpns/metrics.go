package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

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

// metricsRegistry is what a scrape of this daemon writes.
func (d *daemon) metricsRegistry() *metrics.Registry {
	var reg metrics.Registry
	reg.Register(collectProcess)
	reg.Register(d.collectServer)
	reg.Register(d.collectXDP)
	reg.Register(d.collectRRL)
	reg.Register(d.collectZones)
	out := &xfroutTotals{}
	reg.Register(func(w *metrics.Writer) { out.collect(w, d.out.Load) })
	return &reg
}

// processStart stands for the start of the process.
var processStart = time.Now()

func collectProcess(w *metrics.Writer) {
	ver, rev := buildInfo()
	w.Family("xdpns_build_info", metrics.Gauge, "Always 1; the labels say which xdpns runs.")
	w.Uint("xdpns_build_info", 1, "version", ver, "revision", rev, "goversion", runtime.Version())
	w.Family("process_start_time_seconds", metrics.Gauge, "Start time of the process since the Unix epoch, in seconds.")
	w.Float("process_start_time_seconds", float64(processStart.UnixMilli())/1000)
	if rss, ok := residentBytes(); ok {
		w.Family("process_resident_memory_bytes", metrics.Gauge, "Resident set size of the process, in bytes.")
		w.Uint("process_resident_memory_bytes", rss)
	}
	w.Family("go_goroutines", metrics.Gauge, "Goroutines that currently exist.")
	w.Uint("go_goroutines", uint64(runtime.NumGoroutine()))
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

func (d *daemon) collectServer(w *metrics.Writer) {
	c := d.serverCounters()
	w.Family("xdpns_server_queries_total", metrics.Counter, "Queries read by the userspace server's sockets (not those XDP answered).")
	w.Uint("xdpns_server_queries_total", c.UDPQueries, "transport", "udp")
	w.Uint("xdpns_server_queries_total", c.TCPQueries, "transport", "tcp")
	w.Family("xdpns_server_udp_responses_total", metrics.Counter, "UDP responses sent by the userspace server.")
	w.Uint("xdpns_server_udp_responses_total", c.UDPResponses)
	w.Family("xdpns_server_tcp_connections_total", metrics.Counter, "TCP connections accepted.")
	w.Uint("xdpns_server_tcp_connections_total", c.TCPConns)
	w.Family("xdpns_server_tcp_refused_total", metrics.Counter, "TCP connections closed at once: server.tcp-max-connections reached.")
	w.Uint("xdpns_server_tcp_refused_total", c.TCPRefused)
}

func (d *daemon) collectXDP(w *metrics.Writer) {
	st := d.xdpStatus()
	w.Family("xdpns_xdp_state", metrics.Gauge, "Always 1; state is attached, loaded, off, not permitted, failed or detached.")
	w.Uint("xdpns_xdp_state", 1, "state", st.State)
	if len(st.Interfaces) > 0 {
		w.Family("xdpns_xdp_interface_info", metrics.Gauge, "Always 1 for each interface XDP is attached to; mode is native or generic.")
		for _, i := range st.Interfaces {
			w.Uint("xdpns_xdp_interface_info", 1, "interface", i.Name, "mode", i.Mode)
		}
	}
	w.Family("xdpns_zones_served", metrics.Gauge, "Zones the responder answers with data (not expired, transferred at least once).")
	w.Uint("xdpns_zones_served", uint64(st.Served))
	if d.xdp == nil {
		return
	}
	w.Family("xdpns_xdp_zones", metrics.Gauge, "Zones in the XDP maps.")
	w.Uint("xdpns_xdp_zones", uint64(st.Zones))
	w.Family("xdpns_xdp_map_loads_total", metrics.Counter, "Full loads of the XDP maps (a new generation).")
	w.Uint("xdpns_xdp_map_loads_total", st.Loads)
	w.Family("xdpns_xdp_map_updates_total", metrics.Counter, "Updates of one zone in the XDP maps (an IXFR's changes).")
	w.Uint("xdpns_xdp_map_updates_total", st.Updates)
	w.Family("xdpns_xdp_map_failures_total", metrics.Counter, "Loads or updates of the XDP maps that failed (XDP then passes everything).")
	w.Uint("xdpns_xdp_map_failures_total", st.Failures)
	if st.Counters == nil {
		return
	}
	w.Family("xdpns_xdp_packets_total", metrics.Counter, "Packets seen by the XDP program, by verdict (tx: answered, pass: to the kernel, aborted) and reason; summed over CPUs since the maps were created.")
	for _, name := range loader.StatNames() {
		verdict, reason, _ := strings.Cut(name, "__")
		w.Uint("xdpns_xdp_packets_total", st.Counters[name], "verdict", verdict, "reason", reason)
	}
}

// zoneMetric is one per-zone family: its name, type, help, and the
// samples of a zone (none: the zone has no such value).
type zoneMetric struct {
	name   string
	typ    metrics.Type
	help   string
	values func(r zoneRow) []labelled
}

// labelled is one sample of a zone: its labels besides zone, its value.
type labelled struct {
	labels []string
	v      float64
	u      uint64
	float  bool
}

func one(u uint64, labels ...string) []labelled { return []labelled{{labels: labels, u: u}} }

func unixSeconds(t time.Time) []labelled {
	if t.IsZero() {
		return nil
	}
	return []labelled{{v: float64(t.UnixMilli()) / 1000, float: true}}
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

func (d *daemon) collectZones(w *metrics.Writer) {
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
		{"xdpns_zone_state", metrics.Gauge, "Always 1; kind is file or secondary, state as `xdpns zone status` shows it (file, failed, loading, ok, retrying, expired).",
			func(r zoneRow) []labelled { return one(1, "kind", r.Kind, "state", r.State) }},
		{"xdpns_zone_serial", metrics.Gauge, "SOA serial of the version served.",
			func(r zoneRow) []labelled {
				if !r.Served {
					return nil
				}
				return one(uint64(r.Serial))
			}},
		{"xdpns_zone_compiled", metrics.Gauge, "1 when the version served has precomputed answers (served first, and by XDP); 0 when it is answered by the engine alone (still compiling, or compile failed).",
			func(r zoneRow) []labelled {
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
		{"xdpns_zone_last_refresh_timestamp_seconds", metrics.Gauge, "Last successful check of a secondary zone, or load of a file zone, since the Unix epoch.",
			func(r zoneRow) []labelled { return unixSeconds(r.LastRefresh) }},
		{"xdpns_zone_next_check_timestamp_seconds", metrics.Gauge, "When a secondary zone's primaries are asked next, since the Unix epoch.",
			secondary(func(r zoneRow) []labelled { return unixSeconds(r.NextCheck) })},
		{"xdpns_zone_expire_seconds", metrics.Gauge, "Seconds left before a secondary zone expires (answers SERVFAIL) without a successful check; 0 once expired.",
			secondary(func(r zoneRow) []labelled {
				if r.ExpireAt.IsZero() {
					return nil
				}
				return []labelled{{v: max(0, r.ExpireAt.Sub(now).Seconds()), float: true}}
			})},
		{"xdpns_zone_soa_queries_total", metrics.Counter, "SOA queries sent for a secondary zone (each primary tried counts).",
			secondary(func(r zoneRow) []labelled { return one(r.Counters.SOAQueries) })},
		{"xdpns_zone_transfers_total", metrics.Counter, "Transfers applied to a secondary zone: ixfr (differences), axfr (the whole zone, also an IXFR answered with it).",
			secondary(func(r zoneRow) []labelled {
				return []labelled{{labels: []string{"type", "ixfr"}, u: r.Counters.Incremental}, {labels: []string{"type", "axfr"}, u: r.Counters.Full}}
			})},
		{"xdpns_zone_checks_up_to_date_total", metrics.Counter, "Checks of a secondary zone that found the primary at the serial served.",
			secondary(func(r zoneRow) []labelled { return one(r.Counters.UpToDate) })},
		{"xdpns_zone_check_failures_total", metrics.Counter, "Checks of a secondary zone that failed on every primary.",
			secondary(func(r zoneRow) []labelled { return one(r.Counters.Failures) })},
		{"xdpns_zone_notifies_total", metrics.Counter, "NOTIFYs received for a secondary zone: accepted, or refused (not from a primary or allow-notify, or not signed as required).",
			secondary(func(r zoneRow) []labelled {
				return []labelled{{labels: []string{"result", "accepted"}, u: r.Counters.Notifies}, {labels: []string{"result", "refused"}, u: r.Counters.NotifyDenied}}
			})},
	}
	labels := make([]string, 0, 6)
	for _, f := range fams {
		w.Family(f.name, f.typ, f.help)
		for _, r := range rows {
			for _, s := range f.values(r) {
				labels = append(append(labels[:0], "zone", r.Name), s.labels...)
				if s.float {
					w.Float(f.name, s.v, labels...)
				} else {
					w.Uint(f.name, s.u, labels...)
				}
			}
		}
	}
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

func (t *xfroutTotals) collect(w *metrics.Writer, load func() *xfrout.Server) {
	v := t.readFrom(load)
	w.Family("xdpns_xfrout_transfers_total", metrics.Counter, "Transfers answered to downstream secondaries: axfr; ixfr (differences), ixfr_full (the whole zone), ixfr_current (our SOA alone: up to date).")
	w.Uint("xdpns_xfrout_transfers_total", v[0], "type", "axfr")
	w.Uint("xdpns_xfrout_transfers_total", v[1], "type", "ixfr")
	w.Uint("xdpns_xfrout_transfers_total", v[2], "type", "ixfr_full")
	w.Uint("xdpns_xfrout_transfers_total", v[3], "type", "ixfr_current")
	w.Family("xdpns_xfrout_refused_total", metrics.Counter, "Transfer requests refused (REFUSED or NOTAUTH: unknown zone, allow-transfer, TSIG).")
	w.Uint("xdpns_xfrout_refused_total", v[4])
	w.Family("xdpns_xfrout_failed_total", metrics.Counter, "Transfer requests that failed (SERVFAIL: no data, expired, busy; FORMERR; write errors).")
	w.Uint("xdpns_xfrout_failed_total", v[5])
	w.Family("xdpns_xfrout_notifies_sent_total", metrics.Counter, "NOTIFY datagrams sent to downstream targets, retries included.")
	w.Uint("xdpns_xfrout_notifies_sent_total", v[6])
	w.Family("xdpns_xfrout_notifies_answered_total", metrics.Counter, "NOTIFYs answered by their target (any rcode).")
	w.Uint("xdpns_xfrout_notifies_answered_total", v[7])
	w.Family("xdpns_xfrout_notifies_unanswered_total", metrics.Counter, "NOTIFYs never answered after every retry.")
	w.Uint("xdpns_xfrout_notifies_unanswered_total", v[8])
}
