package testenv

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// ServeDNS runs h on one loopback port for both UDP and TCP (as a primary
// or a downstream secondary in tests), verifying TSIG with tsig (name to
// base64 secret; nil for none), and returns the address. t.Cleanup shuts
// both servers down.
func ServeDNS(t testing.TB, h dns.Handler, tsig map[string]string) netip.AddrPort {
	t.Helper()
	var l net.Listener
	var pc net.PacketConn
	// The TCP port the kernel picks may be taken for UDP: pick another.
	for range 20 {
		var err error
		if l, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp4", l.Addr().String()); err == nil {
			break
		}
		l.Close()
		l = nil
	}
	if l == nil {
		t.Fatal("no loopback port free for both UDP and TCP")
	}
	tcp := &dns.Server{Listener: l, Handler: h, TsigSecret: tsig}
	udp := &dns.Server{PacketConn: pc, Handler: h, TsigSecret: tsig}
	go tcp.ActivateAndServe()
	go udp.ActivateAndServe()
	t.Cleanup(func() {
		_ = tcp.Shutdown()
		_ = udp.Shutdown()
	})
	return netip.MustParseAddrPort(l.Addr().String())
}
