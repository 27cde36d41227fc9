package xot

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// serve accepts one TLS connection with cfg and echoes what it reads, so
// the client's first read completes the handshake (TLS 1.3 sends the
// server's verdict on the client certificate after the client finished).
func serve(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func exchange(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return err
}

func load(t *testing.T, is testenv.Issued) *tls.Certificate {
	t.Helper()
	c, err := LoadCert(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientServer(t *testing.T) {
	ca := testenv.NewCA(t, "ca")
	other := testenv.NewCA(t, "other")
	srvIssued := ca.Issue("srv.test", "127.0.0.1")
	srv := load(t, srvIssued)
	cli := load(t, ca.Issue("cli.test"))
	roots, err := LoadCA(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots, _ := LoadCA(other.File)
	lo := netip.MustParseAddr("127.0.0.1")
	pin := PinOf(srvIssued.Cert)

	plain := serve(t, Server(Options{Cert: srv}))
	mutual := serve(t, Server(Options{Cert: srv, Roots: roots}))
	pinned := serve(t, Server(Options{Cert: srv, Pins: []Pin{PinOf(cli.Leaf)}}))
	noALPN := serve(t, &tls.Config{Certificates: []tls.Certificate{*srv}})

	for _, c := range []struct {
		name   string
		addr   string
		opts   Options
		reason string // empty: succeeds
	}{
		{"CA and address", plain, Options{Roots: roots}, ""},
		{"CA and host name", plain, Options{Roots: roots, Hostname: "srv.test"}, ""},
		{"pin alone", plain, Options{Pins: []Pin{pin}}, ""},
		{"CA and pin", plain, Options{Roots: roots, Pins: []Pin{{1}, pin}}, ""},
		{"wrong CA", plain, Options{Roots: otherRoots}, "certificate refused: x509: certificate signed by unknown authority"},
		{"wrong pin", plain, Options{Pins: []Pin{{1}}}, "matches no pinned key"},
		{"CA right, pin wrong", plain, Options{Roots: roots, Pins: []Pin{{1}}}, "matches no pinned key"},
		{"wrong host name", plain, Options{Roots: roots, Hostname: "x.test"}, "valid for srv.test, not x.test"},
		{"system roots", plain, Options{}, "certificate refused"},
		{"client certificate", mutual, Options{Roots: roots, Cert: cli}, ""},
		{"no client certificate", mutual, Options{Roots: roots}, "the peer ended the TLS handshake"},
		{"pinned client", pinned, Options{Roots: roots, Cert: cli}, ""},
		{"unpinned client", pinned, Options{Roots: roots, Cert: srv}, "the peer ended the TLS handshake"},
		{"no ALPN", noALPN, Options{Roots: roots}, `did not negotiate ALPN "dot"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := exchange(c.addr, Client(c.opts, lo))
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			reason, ok := Refusal(err)
			if !ok || !strings.Contains(reason, c.reason) {
				t.Errorf("error %v: reason %q (%v), want %q", err, reason, ok, c.reason)
			}
		})
	}
}

func TestRefusalOther(t *testing.T) {
	for _, err := range []error{io.EOF, errors.New("x"), &net.OpError{Op: "dial", Err: errors.New("connection refused")}} {
		if r, ok := Refusal(err); ok {
			t.Errorf("%v: reason %q, want none", err, r)
		}
	}
	if r, ok := Refusal(ErrClosed); !ok || !strings.Contains(r, "client certificate") {
		t.Errorf("ErrClosed: %q %v", r, ok)
	}
}

func TestParsePin(t *testing.T) {
	p := Pin{1, 2, 3}
	got, err := ParsePin(p.String())
	if err != nil || got != p {
		t.Errorf("round trip: %v %v", got, err)
	}
	for _, s := range []string{"", "abc", "AAAA", p.String()[:40]} {
		if _, err := ParsePin(s); err == nil {
			t.Errorf("ParsePin(%q): no error", s)
		}
	}
}

// BenchmarkExchange: a new connection, TLS 1.3 handshake (ECDSA P-256,
// verified by CA and address) and one small exchange, Go client to Go
// server on loopback: what each SOA check and transfer pays for TLS.
func BenchmarkExchange(b *testing.B) {
	ca := testenv.NewCA(b, "ca")
	is := ca.Issue("srv.test", "127.0.0.1")
	srv, err := LoadCert(is.CertFile, is.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	roots, err := LoadCA(ca.File)
	if err != nil {
		b.Fatal(err)
	}
	addr := serve(b, Server(Options{Cert: srv}))
	cfg := Client(Options{Roots: roots}, netip.MustParseAddr("127.0.0.1"))
	for b.Loop() {
		if err := exchange(addr, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
