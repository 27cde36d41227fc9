package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	return startWith(t, cfg, responder.Config{})
}

// startWith starts a server for example.com with a responder configured by rc.
func startWith(t *testing.T, cfg Config, rc responder.Config) *Server {
	t.Helper()
	z, _, err := zone.Load("../responder/testdata/example.com.zone", "example.com.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := responder.New(rc)
	r.SetZones([]*zone.Zone{z})
	s := New(cfg, r, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestUDPAndTCP(t *testing.T) {
	addrs := []string{"127.0.0.1:0"}
	if l, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		l.Close()
		addrs = append(addrs, "[::1]:0")
	}
	s := start(t, Config{Listen: addrs, UDPSockets: 2})
	for _, addr := range s.Addrs() {
		for _, proto := range []string{"udp", "tcp"} {
			c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
			m := new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA)
			resp, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatalf("%s %s: %v", proto, addr, err)
			}
			if len(resp.Answer) != 1 || !resp.Authoritative {
				t.Errorf("%s %s: %v", proto, addr, resp)
			}
		}
	}
}

func TestWildcardAddressReplySource(t *testing.T) {
	s := start(t, Config{Listen: []string{"0.0.0.0:0"}, UDPSockets: 1})
	_, port, _ := net.SplitHostPort(s.Addrs()[0])
	// Ask on 127.0.0.2: the reply must come from 127.0.0.2, or a connected
	// client socket would not see it.
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), "127.0.0.2:"+port)
	if err != nil || len(resp.Answer) != 1 {
		t.Fatalf("via 127.0.0.2: %v %v", resp, err)
	}
}

func TestTCPPipelining(t *testing.T) {
	s := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1})
	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send three queries in one write, then read three answers.
	var out []byte
	for i, name := range []string{"web.example.com.", "mail.example.com.", "nope.example.com."} {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Id = uint16(100 + i)
		b, _ := m.Pack()
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	c.Write(out)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := 0; i < 3; i++ {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil || m.Id != uint16(100+i) {
			t.Fatalf("answer %d: id %d err %v", i, m.Id, err)
		}
	}
}

// writeQueries sends one A query per id, all in one write (pipelined).
func writeQueries(c net.Conn, name string, ids ...uint16) error {
	var out []byte
	for _, id := range ids {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Id = id
		b, err := m.Pack()
		if err != nil {
			return err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(out)
	return err
}

// readMsg reads one length-prefixed DNS message.
func readMsg(c net.Conn) (*dns.Msg, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(b)
}

// exchange sends the queries ids pipelined in one write and checks that the
// answers come back in order, each a positive answer for web.example.com.
func exchange(c net.Conn, ids ...uint16) error {
	if err := writeQueries(c, "web.example.com.", ids...); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, id := range ids {
		m, err := readMsg(c)
		if err != nil {
			return fmt.Errorf("answer %d of %d: %w", i+1, len(ids), err)
		}
		if m.Id != id || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			return fmt.Errorf("answer %d of %d: want id %d with one record, got id %d %s, %d records",
				i+1, len(ids), id, m.Id, dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}
	return nil
}

// closedByServer reads from c until the deadline and fails unless the
// server closed the connection: io.EOF (FIN) or ECONNRESET (RST, which a
// close with unread data gives), with no data before it. Our own read
// deadline firing is a failure. It returns how long the read took.
func closedByServer(t *testing.T, c net.Conn, deadline time.Duration, what string) time.Duration {
	t.Helper()
	t0 := time.Now()
	c.SetReadDeadline(t0.Add(deadline))
	n, err := c.Read(make([]byte, 512))
	elapsed := time.Since(t0)
	var ne net.Error
	switch {
	case n > 0:
		t.Fatalf("%s: got %d bytes of data, want the server to close the connection", what, n)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("%s: still open after %v (our read deadline fired), want the server to close it", what, elapsed)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		t.Fatalf("%s: read error %v, want EOF or ECONNRESET from the server's close", what, err)
	}
	return elapsed
}

// waitOpen waits until the server holds at most n connections (the count of
// its connection slots in use), so a slot freed by a close is seen before
// the next dial.
func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); len(s.sem) > n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("server still holds %d connections, want at most %d", len(s.sem), n)
		}
	}
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTCPIdleTimeoutAndCap checks the connection cap (RFC 7766 §6.2.2) and
// the idle timeout (§6.2.3), each with its own server so the two cannot
// stand in for each other: the cap test's idle timeout is far longer than it
// runs, and its refused connection must be closed without an answer to the
// query it sent, which an idle timeout would not do.
func TestTCPIdleTimeoutAndCap(t *testing.T) {
	t.Run("cap", func(t *testing.T) {
		const maxConns = 3
		s := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1, TCPIdleTimeout: 2 * time.Minute, TCPMaxConns: maxConns})
		// maxConns connections, open together, each served.
		var open []net.Conn
		for i := 0; i < maxConns; i++ {
			c := dial(t, s)
			if err := exchange(c, uint16(10*i+1)); err != nil {
				t.Fatalf("connection %d of %d under the cap: %v", i+1, maxConns, err)
			}
			open = append(open, c)
		}
		if got := s.Stats.TCPRefused.Load(); got != 0 {
			t.Fatalf("TCPRefused %d before the cap was reached", got)
		}
		// One more: accepted by the kernel, then closed by the server at
		// once, its query unanswered.
		over := dial(t, s)
		if err := writeQueries(over, "web.example.com.", 99); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write on the connection over the cap: %v", err)
		}
		const deadline = 20 * time.Second
		if elapsed := closedByServer(t, over, deadline, "connection over the cap"); elapsed > deadline/4 {
			t.Errorf("connection over the cap closed after %v, want at once", elapsed)
		}
		if got := s.Stats.TCPRefused.Load(); got != 1 {
			t.Errorf("TCPRefused = %d after one connection over the cap, want 1", got)
		}
		// The connections under the cap are still served.
		for i, c := range open {
			if err := exchange(c, uint16(10*i+2), uint16(10*i+3)); err != nil {
				t.Fatalf("connection %d after the refusal: %v", i+1, err)
			}
		}
		// Close one: its slot is freed and a new connection is served.
		open[0].Close()
		waitOpen(t, s, maxConns-1)
		again := dial(t, s)
		if err := exchange(again, 201, 202); err != nil {
			t.Fatalf("new connection after one under the cap closed: %v", err)
		}
		for i, c := range open[1:] {
			if err := exchange(c, uint16(100+i)); err != nil {
				t.Fatalf("connection %d at the end: %v", i+2, err)
			}
		}
		if got := s.Stats.TCPRefused.Load(); got != 1 {
			t.Errorf("TCPRefused = %d at the end, want still 1", got)
		}
		if got := s.Stats.TCPConns.Load(); got != maxConns+1 {
			t.Errorf("TCPConns = %d, want %d", got, maxConns+1)
		}
	})

	const idle = 1500 * time.Millisecond
	t.Run("idle", func(t *testing.T) {
		s := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1, TCPIdleTimeout: idle, TCPMaxConns: 1})
		c := dial(t, s)
		// The server restarts its idle timer after writing the answer,
		// which is after t0: it cannot close before t0+idle.
		t0 := time.Now()
		if err := exchange(c, 1); err != nil {
			t.Fatal(err)
		}
		closedByServer(t, c, idle+20*time.Second, "idle connection")
		elapsed := time.Since(t0)
		if elapsed < idle {
			t.Errorf("idle connection closed after %v, before the idle timeout %v", elapsed, idle)
		}
		if elapsed > idle+10*time.Second {
			t.Errorf("idle connection closed after %v, want about the idle timeout %v", elapsed, idle)
		}
		// The idle close frees its slot (the cap is 1): a new connection
		// is served.
		waitOpen(t, s, 0)
		if err := exchange(dial(t, s), 2); err != nil {
			t.Fatalf("new connection after the idle close: %v", err)
		}
		if got := s.Stats.TCPRefused.Load(); got != 0 {
			t.Errorf("TCPRefused = %d, want 0", got)
		}
	})

	t.Run("active", func(t *testing.T) {
		s := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1, TCPIdleTimeout: idle, TCPMaxConns: 1})
		c := dial(t, s)
		// Rounds of pipelined queries, a tenth of the idle timeout apart
		// (slack for a loaded machine), for two idle timeouts: the
		// connection must stay open and answer every query, in order.
		t0 := time.Now()
		id := uint16(1)
		rounds := 0
		for time.Since(t0) < 2*idle {
			if err := exchange(c, id, id+1, id+2, id+3); err != nil {
				t.Fatalf("round %d, %v after the first query: %v", rounds+1, time.Since(t0).Round(time.Millisecond), err)
			}
			id += 4
			rounds++
			time.Sleep(idle / 10)
		}
		if err := exchange(c, id, id+1, id+2); err != nil {
			t.Fatalf("last round, %v after the first query: %v", time.Since(t0).Round(time.Millisecond), err)
		}
		if got := s.Stats.TCPConns.Load(); got != 1 {
			t.Errorf("TCPConns = %d, want 1 (the same connection throughout)", got)
		}
		if got, want := s.Stats.TCPQueries.Load(), uint64(id+2); got != want {
			t.Errorf("TCPQueries = %d, want %d", got, want)
		}
	})
}

func TestNotifyAndTransferHooks(t *testing.T) {
	var notifyFrom []netip.Addr
	var mu sync.Mutex
	cfg := Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1,
		Notify: func(pkt []byte, from netip.Addr) []byte {
			mu.Lock()
			notifyFrom = append(notifyFrom, from)
			mu.Unlock()
			m := new(dns.Msg)
			if m.Unpack(pkt) != nil {
				return nil
			}
			return must(new(dns.Msg).SetReply(m).Pack())
		},
		Transfer: func(w io.Writer, pkt []byte, from netip.Addr) error {
			m := new(dns.Msg)
			if err := m.Unpack(pkt); err != nil {
				return err
			}
			soa, _ := dns.NewRR("example.com. 300 SOA ns h 1 2 3 4 5")
			for _, rrs := range [][]dns.RR{{soa}, {soa}} {
				r := new(dns.Msg).SetReply(m)
				r.Answer = rrs
				b := must(r.Pack())
				if _, err := w.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	s := start(t, cfg)
	addr := s.Addrs()[0]
	for _, proto := range []string{"udp", "tcp"} {
		n := new(dns.Msg).SetNotify("example.com.")
		resp, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(n, addr)
		if err != nil || resp.Opcode != dns.OpcodeNotify || resp.Rcode != dns.RcodeSuccess {
			t.Fatalf("NOTIFY over %s: %v %v", proto, resp, err)
		}
	}
	mu.Lock()
	if len(notifyFrom) != 2 || notifyFrom[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("notify sources: %v", notifyFrom)
	}
	mu.Unlock()
	tr := &dns.Transfer{}
	env, err := tr.In(new(dns.Msg).SetAxfr("example.com."), addr)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for e := range env {
		if e.Error != nil {
			t.Fatal(e.Error)
		}
		count += len(e.RR)
	}
	if count != 2 {
		t.Errorf("AXFR got %d records", count)
	}
	// IXFR carries the client's SOA in the authority section: still a transfer.
	env, err = (&dns.Transfer{}).In(new(dns.Msg).SetIxfr("example.com.", 1, "ns.", "h."), addr)
	if err != nil {
		t.Fatal(err)
	}
	for e := range env {
		if e.Error != nil {
			t.Fatalf("IXFR not routed to the transfer hook: %v", e.Error)
		}
	}
	// Ordinary queries on the same server still reach the responder.
	resp, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), addr)
	if err != nil || len(resp.Answer) != 1 {
		t.Errorf("query after hooks: %v %v", resp, err)
	}
}

// TestChaos asks the CHAOS TXT names through the server, over UDP and TCP:
// answered from the responder's configuration, REFUSED when not configured.
func TestChaos(t *testing.T) {
	chaos := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg).SetQuestion(name, qtype)
		m.Question[0].Qclass = dns.ClassCHAOS
		return m
	}
	s := startWith(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1}, responder.Config{Identity: "edge-7", Version: "xdpns-9.9"})
	bare := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1})
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
		for _, q := range []struct{ name, want string }{
			{"id.server.", "edge-7"},
			{"hostname.bind.", "edge-7"},
			{"version.bind.", "xdpns-9.9"},
			{"version.server.", "xdpns-9.9"},
		} {
			resp, _, err := c.Exchange(chaos(q.name, dns.TypeTXT), s.Addrs()[0])
			if err != nil {
				t.Fatalf("%s %s CH TXT: %v", proto, q.name, err)
			}
			var txt *dns.TXT
			if len(resp.Answer) == 1 {
				txt, _ = resp.Answer[0].(*dns.TXT)
			}
			if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || txt == nil || txt.Hdr.Class != dns.ClassCHAOS ||
				len(txt.Txt) != 1 || txt.Txt[0] != q.want {
				t.Errorf("%s %s CH TXT: want TXT %q, got %v", proto, q.name, q.want, resp)
			}
			resp, _, err = c.Exchange(chaos(q.name, dns.TypeTXT), bare.Addrs()[0])
			if err != nil {
				t.Fatalf("%s %s CH TXT, not configured: %v", proto, q.name, err)
			}
			if resp.Rcode != dns.RcodeRefused || len(resp.Answer) != 0 {
				t.Errorf("%s %s CH TXT, not configured: want REFUSED, got %v", proto, q.name, resp)
			}
		}
		resp, _, err := c.Exchange(chaos("id.server.", dns.TypeA), s.Addrs()[0])
		if err != nil || resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) != 0 {
			t.Errorf("%s id.server CH A: want NOERROR with no answer, got %v %v", proto, resp, err)
		}
	}
	if s.Stats.UDPQueries.Load() != 5 || s.Stats.UDPResponses.Load() != 5 || s.Stats.TCPQueries.Load() != 5 {
		t.Errorf("stats: %d UDP queries, %d UDP responses, %d TCP queries; want 5 each",
			s.Stats.UDPQueries.Load(), s.Stats.UDPResponses.Load(), s.Stats.TCPQueries.Load())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
