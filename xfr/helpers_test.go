package xfr

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
	"github.com/xdpns/xdpns/userspace/zone"
)

const testZone = "example.test."

// zoneText is a small primary zone. Addresses in it are from the
// benchmarking range and are never contacted.
func zoneText(serial uint32, refresh, retry, expire int) string {
	return fmt.Sprintf(`$ORIGIN example.test.
$TTL 300
@	IN SOA ns1 hostmaster %d %d %d %d 60
	IN NS ns1
	IN NS ns2
ns1	IN A 198.18.0.1
ns2	IN A 198.18.0.2
www	IN A 198.18.0.10
	IN AAAA 2001:2::10
mail	IN MX 10 mx
mx	IN A 198.18.0.20
alias	IN CNAME www
txt	IN TXT "hello" "world"
sub	IN NS ns.sub
ns.sub	IN A 198.18.0.30
`, serial, refresh, retry, expire)
}

// fastTimers lets SOA timers of a few seconds through unclamped.
var fastTimers = Timers{
	RefreshMin: 100 * time.Millisecond, RetryMin: 100 * time.Millisecond,
	ExpireMin: 500 * time.Millisecond, Jitter: -1,
}

// logBuffer collects log output for assertions and shows it on failure.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len is how much has been logged so far: a mark for since.
func (l *logBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// since returns what was logged after the mark.
func (l *logBuffer) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b.Bytes()[mark:])
}

// logLines returns the lines of s that contain every one of subs.
func logLines(s string, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if !strings.Contains(l, sub) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// secondary is a Manager publishing into a real responder, with a UDP
// socket that feeds NOTIFYs to HandleNotify.
type secondary struct {
	t      testing.TB
	m      *Manager
	r      *responder.Responder
	log    *logBuffer
	notify *notifyIn

	mu        sync.Mutex
	published []uint32 // serials in OnZone order
	expiries  []bool   // OnExpire calls in order
}

func (s *secondary) events() (published []uint32, expiries []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint32(nil), s.published...), append([]bool(nil), s.expiries...)
}

// notifyIn is where a primary sends NOTIFY: UDP and TCP on one loopback
// port, opened before the primary starts (it needs the port).
type notifyIn struct {
	udp *net.UDPConn
	tcp *net.TCPListener
}

func notifyListener(t testing.TB) *notifyIn {
	t.Helper()
	for range 20 {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: u.LocalAddr().(*net.UDPAddr).Port})
		if err != nil {
			u.Close()
			continue
		}
		t.Cleanup(func() { u.Close(); l.Close() })
		return &notifyIn{udp: u, tcp: l}
	}
	t.Fatal("no loopback port free for UDP and TCP")
	return nil
}

func port(n *notifyIn) int { return n.udp.LocalAddr().(*net.UDPAddr).Port }

// startSecondary starts a Manager for cfg. notify may be nil.
func startSecondary(t testing.TB, cfg Config, notify *notifyIn) *secondary {
	t.Helper()
	s := &secondary{t: t, r: responder.New(responder.Config{}), log: &logBuffer{}, notify: notify}
	cfg.Logger = slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.OnZone = func(z *zone.Zone) {
		// As the daemon does: only what the change touched is compiled again.
		rz, _, err := responder.CompileFrom(s.r.Zone(z.Origin), z)
		if err != nil {
			rz = &responder.Zone{Zone: z}
		}
		s.r.Put(rz)
		s.mu.Lock()
		s.published = append(s.published, z.Serial())
		s.mu.Unlock()
	}
	cfg.OnExpire = func(origin string, expired bool) {
		s.mu.Lock()
		s.expiries = append(s.expiries, expired)
		s.mu.Unlock()
		cur := s.r.Zone(origin)
		if cur == nil {
			return
		}
		c := *cur
		c.Expired = expired
		s.r.Put(&c)
	}
	if cfg.Timeouts.Query == 0 {
		cfg.Timeouts.Query = 500 * time.Millisecond
	}
	if cfg.Timeouts.Read == 0 {
		cfg.Timeouts.Read = 2 * time.Second
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("secondary log:\n%s", s.log.String())
		}
	})
	if notify != nil {
		go s.serveNotify()
	}
	return s
}

// serveNotify feeds NOTIFYs to HandleNotify, as the server will: UDP
// datagrams and length-prefixed TCP messages.
func (s *secondary) serveNotify() {
	go func() {
		for {
			c, err := s.notify.tcp.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
				for {
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					var l [2]byte
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					pkt := make([]byte, int(l[0])<<8|int(l[1]))
					if _, err := io.ReadFull(c, pkt); err != nil {
						return
					}
					if resp := s.m.HandleNotify(pkt, from); resp != nil {
						_, _ = c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...))
					}
				}
			}()
		}
	}()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.notify.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if resp := s.m.HandleNotify(buf[:n], from.Addr()); resp != nil {
			_, _ = s.notify.udp.WriteToUDPAddrPort(resp, from)
		}
	}
}

func (s *secondary) status(name string) ZoneStatus {
	st, err := s.m.ZoneStatus(name)
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds or the timeout passes.
func (s *secondary) waitFor(what string, timeout time.Duration, cond func(ZoneStatus) bool) ZoneStatus {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.status(testZone)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timeout after %v waiting for %s; status %+v", timeout, what, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *secondary) waitSerial(serial uint32, timeout time.Duration) ZoneStatus {
	s.t.Helper()
	return s.waitFor(fmt.Sprintf("serial %d", serial), timeout, func(st ZoneStatus) bool {
		return st.State != StateLoading && st.Serial == serial && s.served() != nil && s.served().Serial() == serial
	})
}

// served is the zone the responder serves now.
func (s *secondary) served() *zone.Zone {
	z := s.r.Zone(testZone)
	if z == nil {
		return nil
	}
	return z.Zone
}

// query asks the responder, as a UDP client would.
func (s *secondary) query(name string, t uint16) *dns.Msg {
	s.t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, t)
	pkt, err := q.Pack()
	if err != nil {
		s.t.Fatal(err)
	}
	out := s.r.Respond(&responder.Scratch{}, nil, pkt, false)
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		s.t.Fatalf("responder answer: %v", err)
	}
	return m
}

// canon renders records as sorted lines with lowercased owners, for
// comparing zones from different sources.
func canon(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = dns.CanonicalName(c.Header().Name)
		out = append(out, c.String())
	}
	sort.Strings(out)
	return out
}

// sameZone fails the test when the secondary's served zone differs from
// the primary's AXFR.
func sameZone(t testing.TB, primary []dns.RR, served *zone.Zone) {
	t.Helper()
	if served == nil {
		t.Fatal("nothing served")
	}
	a, b := canon(primary), canon(served.Records())
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return
	}
	in := map[string]int{}
	for _, l := range a {
		in[l]++
	}
	for _, l := range b {
		in[l]--
	}
	var diff []string
	for l, n := range in {
		switch {
		case n > 0:
			diff = append(diff, "only at primary: "+l)
		case n < 0:
			diff = append(diff, "only served:     "+l)
		}
	}
	sort.Strings(diff)
	t.Fatalf("served zone (serial %d) differs from the primary's:\n%s", served.Serial(), strings.Join(diff, "\n"))
}

func primaryOf(n *peer.Named) Primary { return Primary{Addr: n.Addr()} }

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var loopback = netip.MustParseAddr("127.0.0.1")
