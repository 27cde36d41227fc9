package xfrout

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/zone"
	"github.com/xdpns/xdpns/xfr"
)

const testOrigin = "example.test."

// testLogger logs to the test output with -v, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// source is a Config.Source the tests change as they go.
type source struct {
	mu    sync.Mutex
	snaps map[string]Snapshot
}

func newSource() *source { return &source{snaps: map[string]Snapshot{}} }

func (s *source) Get(origin string) (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.snaps[origin]
	return snap, ok
}

func (s *source) Set(snap Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps[snap.Zone.Origin] = snap
}

// version is one version of a generated test zone: the SOA serial and the
// records besides the SOA, as text.
type version struct {
	serial uint32
	rrs    []string
}

// baseVersion has n A records (and a TXT per tenth name), enough to need
// several transfer messages when n is in the thousands.
func baseVersion(serial uint32, n int) version {
	v := version{serial: serial, rrs: []string{
		testOrigin + " 3600 IN NS ns1." + testOrigin,
		testOrigin + " 3600 IN NS ns2." + testOrigin,
		"ns1." + testOrigin + " 3600 IN A 127.0.0.53",
		"ns2." + testOrigin + " 3600 IN A 127.0.0.54",
	}}
	for i := range n {
		v.rrs = append(v.rrs, fmt.Sprintf("host%d.%s 300 IN A 10.%d.%d.%d", i, testOrigin, i>>16&255, i>>8&255, i&255))
		if i%10 == 0 {
			v.rrs = append(v.rrs, fmt.Sprintf("host%d.%s 300 IN TXT \"record number %d of the test zone\"", i, testOrigin, i))
		}
	}
	return v
}

func (v version) soa() string {
	return fmt.Sprintf("%s 3600 IN SOA ns1.%s hostmaster.%s %d 3600 600 86400 300", testOrigin, testOrigin, testOrigin, v.serial)
}

// next returns the version after v: del records removed, add added.
func (v version) next(del, add []string) version {
	out := version{serial: v.serial + 1}
	for _, r := range v.rrs {
		if !slices.Contains(del, r) {
			out.rrs = append(out.rrs, r)
		}
	}
	out.rrs = append(out.rrs, add...)
	return out
}

// zone builds the version as a zone.
func (v version) zone(t testing.TB) *zone.Zone {
	t.Helper()
	rrs := []dns.RR{mustRR(t, v.soa())}
	for _, s := range v.rrs {
		rrs = append(rrs, mustRR(t, s))
	}
	z, _, err := zone.New(testOrigin, rrs, zone.Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// diff is the journal entry from v to w, as xfr records it.
func diff(t testing.TB, v, w version) xfr.Diff {
	d := xfr.Diff{From: v.serial, To: w.serial,
		Deleted: []dns.RR{mustRR(t, v.soa())}, Added: []dns.RR{mustRR(t, w.soa())}}
	for _, r := range v.rrs {
		if !slices.Contains(w.rrs, r) {
			d.Deleted = append(d.Deleted, mustRR(t, r))
		}
	}
	for _, r := range w.rrs {
		if !slices.Contains(v.rrs, r) {
			d.Added = append(d.Added, mustRR(t, r))
		}
	}
	return d
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return rr
}

// rrStrings returns the records as sorted text, for set comparison.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.ToLower(strings.ReplaceAll(rr.String(), "\t", " ")))
	}
	slices.Sort(out)
	return out
}

// sameSet fails t unless got and want hold the same records.
func sameSet(t testing.TB, what string, got, want []dns.RR) {
	t.Helper()
	g, w := rrStrings(got), rrStrings(want)
	if slices.Equal(g, w) {
		return
	}
	var missing, extra []string
	for _, s := range w {
		if _, ok := slices.BinarySearch(g, s); !ok {
			missing = append(missing, s)
		}
	}
	for _, s := range g {
		if _, ok := slices.BinarySearch(w, s); !ok {
			extra = append(extra, s)
		}
	}
	t.Fatalf("%s: %d records, want %d; missing %d %q; extra %d %q", what, len(g), len(w),
		len(missing), missing[:min(len(missing), 5)], len(extra), extra[:min(len(extra), 5)])
}

// testServer is xfrout behind a real server.Server on a loopback port.
type testServer struct {
	x    *Server
	src  *source
	resp *responder.Responder
	srv  *server.Server
	addr string // host:port, UDP and TCP
}

// startServer starts a Server for cfg (Source and Logger filled in) behind
// a server.Server whose responder serves the zones set with publish.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{src: newSource(), resp: responder.New(responder.Config{})}
	if cfg.Source == nil {
		cfg.Source = ts.src.Get
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	ts.x = x
	ts.srv = server.New(server.Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1, Transfer: x.HandleTransfer}, ts.resp, cfg.Logger)
	if err := ts.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.srv.Close() })
	ts.addr = ts.srv.Addrs()[0]
	return ts
}

// publish serves snap: to the responder (SOA queries) and to Source.
func (ts *testServer) publish(snap Snapshot) {
	ts.resp.SetZones([]*zone.Zone{snap.Zone})
	ts.src.Set(snap)
}

// transferIn runs an AXFR or IXFR with miekg/dns (an implementation
// independent of ours) and returns the records and the message count.
func transferIn(addr string, q *dns.Msg, key *Key) ([]dns.RR, int, error) {
	tr := &dns.Transfer{ReadTimeout: 5 * time.Second}
	if key != nil {
		k, err := key.Canonical()
		if err != nil {
			return nil, 0, err
		}
		p, err := k.Provider()
		if err != nil {
			return nil, 0, err
		}
		tr.TsigProvider = p
		q.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
	}
	ch, err := tr.In(q, addr)
	if err != nil {
		return nil, 0, err
	}
	var rrs []dns.RR
	n := 0
	var ferr error
	for env := range ch {
		n++
		rrs = append(rrs, env.RR...)
		if env.Error != nil && ferr == nil {
			ferr = env.Error
		}
	}
	return rrs, n, ferr
}

func axfrQuery(name string) *dns.Msg { return new(dns.Msg).SetAxfr(name) }

func ixfrQuery(name string, serial uint32) *dns.Msg {
	q := new(dns.Msg).SetIxfr(name, serial, "ns1."+name, "hostmaster."+name)
	return q
}

// rawTransfer sends q over TCP and reads answer messages as raw bytes until
// the connection closes, a message is not NOERROR, or the transfer ends
// (the opening SOA seen again: AXFR-style answers only, or after one
// message when stop says so).
func rawTransfer(t testing.TB, addr string, pkt []byte, stop func(msgs []*dns.Msg) bool) ([][]byte, []*dns.Msg) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)); err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	var msgs []*dns.Msg
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("after %d messages: %v", len(raws), err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("message %d: %v", len(raws)+1, err)
		}
		raws, msgs = append(raws, b), append(msgs, m)
		if m.Rcode != dns.RcodeSuccess || stop(msgs) {
			return raws, msgs
		}
	}
}

// soaTwice stops a raw AXFR when the SOA appears for the second time.
func soaTwice(msgs []*dns.Msg) bool {
	n := 0
	for _, m := range msgs {
		for _, rr := range m.Answer {
			if rr.Header().Rrtype == dns.TypeSOA {
				n++
			}
		}
	}
	return n >= 2
}

// exchangeTCP sends one query over TCP and returns the first answer.
func exchangeTCP(t testing.TB, addr string, q *dns.Msg) *dns.Msg {
	t.Helper()
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	_, msgs := rawTransfer(t, addr, pkt, func([]*dns.Msg) bool { return true })
	return msgs[0]
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// front stands in for server.Server in the tests that need IXFR, for as
// long as server.Server does not route IXFR to Config.Transfer: its
// isTransfer parses with wire.ParseQuery, which refuses any query with
// NSCOUNT != 0, and an IXFR query carries the client's SOA there, so every
// IXFR reaches the responder and is answered FORMERR. The dispatch is the
// server's with that fixed: UDP to the responder; over TCP, AXFR and IXFR
// to HandleTransfer, everything else to the responder.
type front struct {
	udp    *net.UDPConn
	tcp    net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

var (
	routesOnce sync.Once
	routesIXFR bool
)

func zoneNew(origin string, rrs []dns.RR) (*zone.Zone, []zone.Warning, error) {
	return zone.New(origin, rrs, zone.Options{}, nil)
}
