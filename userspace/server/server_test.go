package server

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	z, _, err := zone.Load("../responder/testdata/example.com.zone", "example.com.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := responder.New(responder.Config{})
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

func TestTCPIdleTimeoutAndCap(t *testing.T) {
	s := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1, TCPIdleTimeout: 200 * time.Millisecond, TCPMaxConns: 1})
	c1, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	time.Sleep(50 * time.Millisecond)
	c2, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Error("second connection over the cap was not closed")
	}
	c1.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Error("idle connection was not closed")
	}
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

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
