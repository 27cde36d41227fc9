package server

import (
	"crypto/tls"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/xot"
)

// TestTLS: listen-tls answers queries and transfers over TLS (miekg/dns's
// tcp-tls client, another implementation than ours), with ALPN dot; the
// plain TCP port is not TLS; a client without the required certificate
// gets nothing.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t, "server test CA")
	is := ca.Issue("srv.test", "127.0.0.1")
	cert, err := xot.LoadCert(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := xot.LoadCA(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	clientCA := testenv.NewCA(t, "client CA")
	ci := clientCA.Issue("client.test")
	clientCert, err := xot.LoadCert(ci.CertFile, ci.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	clientRoots, err := xot.LoadCA(clientCA.File)
	if err != nil {
		t.Fatal(err)
	}
	var transfers atomic.Int32
	s := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1,
		ListenTLS: []string{"127.0.0.1:0", "127.0.0.1:0"},
		TLS:       xot.Server(xot.Options{Cert: cert}),
		Transfer: func(w io.Writer, pkt []byte, from netip.Addr) error {
			transfers.Add(1)
			q := new(dns.Msg)
			if err := q.Unpack(pkt); err != nil {
				return err
			}
			r := new(dns.Msg).SetRcode(q, dns.RcodeRefused)
			out, _ := r.Pack()
			_, err := w.Write(append([]byte{byte(len(out) >> 8), byte(len(out))}, out...))
			return err
		}})
	if len(s.TLSAddrs()) != 2 {
		t.Fatalf("TLS addresses %v", s.TLSAddrs())
	}
	lo := netip.MustParseAddr("127.0.0.1")
	c := &dns.Client{Net: "tcp-tls", TLSConfig: xot.Client(xot.Options{Roots: roots}, lo), Timeout: 2 * time.Second}
	for _, addr := range s.TLSAddrs() {
		resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), addr)
		if err != nil || len(resp.Answer) != 1 || !resp.Authoritative {
			t.Fatalf("query over TLS to %s: %v %v", addr, resp, err)
		}
	}
	resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("example.com.", dns.TypeAXFR), s.TLSAddrs()[0])
	if err != nil || resp.Rcode != dns.RcodeRefused || transfers.Load() != 1 {
		t.Errorf("AXFR over TLS: %v %v, %d transfers", resp, err, transfers.Load())
	}
	// TLS to the plain TCP port fails (it speaks DNS, not TLS).
	short := *c
	short.Timeout = 300 * time.Millisecond
	if _, _, err := short.Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), s.Addrs()[0]); err == nil {
		t.Error("TLS handshake with the plain TCP port succeeded")
	}

	// With client certificates required.
	m := start(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1, ListenTLS: []string{"127.0.0.1:0"},
		TLS: xot.Server(xot.Options{Cert: cert, Roots: clientRoots})})
	with := &dns.Client{Net: "tcp-tls", TLSConfig: xot.Client(xot.Options{Roots: roots, Cert: clientCert}, lo), Timeout: 2 * time.Second}
	if resp, _, err := with.Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), m.TLSAddrs()[0]); err != nil || len(resp.Answer) != 1 {
		t.Errorf("with a client certificate: %v %v", resp, err)
	}
	without := &dns.Client{Net: "tcp-tls", TLSConfig: xot.Client(xot.Options{Roots: roots}, lo), Timeout: 2 * time.Second}
	if resp, _, err := without.Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), m.TLSAddrs()[0]); err == nil {
		t.Errorf("without a client certificate: answered %v", resp)
	}
	// A TLS client without ALPN dot is refused by Go's server.
	noALPN := &dns.Client{Net: "tcp-tls", TLSConfig: &tls.Config{RootCAs: roots, ServerName: "srv.test", NextProtos: []string{"h2"}}, Timeout: 2 * time.Second}
	if _, _, err := noALPN.Exchange(new(dns.Msg).SetQuestion("web.example.com.", dns.TypeA), s.TLSAddrs()[0]); err == nil {
		t.Error("a client offering only ALPN h2 was answered")
	}
}
