package xfr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
	"github.com/xdpns/xdpns/userspace/xot"
)

// tlsPrimary is named serving testZone over TLS (XoT, RFC 9103) with a
// certificate for primary.xot.test and 127.0.0.1 from a throwaway CA,
// transfers allowed only with TSIG key k, NOTIFY to nl.
type tlsPrimary struct {
	named *peer.Named
	ca    *testenv.CA
	cert  testenv.Issued
	key   *Key
}

func startTLSPrimary(t *testing.T, nl *notifyIn, clientCA string) *tlsPrimary {
	t.Helper()
	ca := testenv.NewCA(t, "xot test CA")
	cert := ca.Issue("primary.xot.test", "127.0.0.1")
	k := peer.Key{Name: "xot-k.", Algorithm: "hmac-sha256", Secret: secret(t)}
	named := peer.StartNamed(t, peer.NamedConfig{
		Zones:      []peer.Zone{{Name: testZone, Text: zoneText(1, 3600, 600, 86400), AllowTransfer: `key "xot-k.";`}},
		Keys:       []peer.Key{k},
		NotifyPort: port(nl),
		NotifyKey:  k.Name,
		TLS:        &peer.NamedTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: clientCA},
	})
	return &tlsPrimary{named: named, ca: ca, cert: cert, key: &Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}}
}

func (p *tlsPrimary) primary(o xot.Options, key *Key) Primary {
	return Primary{Addr: p.named.TLSAddr(), Key: key, TLS: xot.Client(o, p.named.TLSAddr().Addr())}
}

// xotTimeouts are startSecondary's, given so Reconfigure keeps them.
var xotTimeouts = Timeouts{Query: 500 * time.Millisecond, Read: 2 * time.Second}

func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pool, err := xot.LoadCA(file)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// XoT from BIND 9.18: the first transfer (AXFR), a change (NOTIFY, then
// IXFR), SOA checks, all over TLS (named serves nothing in the clear on
// its TLS port) and signed with TSIG; the primary verified by CA and
// address, CA and host name, or pinned key. A wrong CA, pin or host name
// is refused with a log line naming the primary and the reason, and the
// zone transferred before keeps being served; so is a transfer without
// the TSIG key named requires.
func TestXoTBIND(t *testing.T) {
	t.Parallel()
	peer.Need(t, "nsupdate")
	nl := notifyListener(t)
	p := startTLSPrimary(t, nl, "")
	roots := caPool(t, p.ca.File)
	zoneWith := func(pr Primary) Config {
		return Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{pr}, Timers: fastTimers}}, Timeouts: xotTimeouts}
	}

	s := startSecondary(t, zoneWith(p.primary(xot.Options{Roots: roots}, p.key)), nl)
	st := s.waitSerial(1, 10*time.Second)
	if st.Counters.Full != 1 || st.Source != p.named.TLSAddr().String()+" (tls)" {
		t.Errorf("status %+v: want one full transfer from %s over TLS", st, p.named.TLSAddr())
	}
	sameZone(t, p.named.AXFR(testZone, &peer.Key{Name: p.key.Name, Algorithm: dns.HmacSHA256, Secret: p.key.Secret}), s.served())

	// The same primary by host name, then by its pinned key alone; then a
	// change travels by NOTIFY and IXFR over TLS.
	reconfigure := func(pr Primary) {
		t.Helper()
		if _, err := s.m.Reconfigure(zoneWith(pr)); err != nil {
			t.Fatal(err)
		}
	}
	okCheck := func(what string) {
		t.Helper()
		before := s.status(testZone).Counters.SOAQueries
		mark := s.log.Len()
		s.m.Refresh(testZone)
		s.waitFor(what, 10*time.Second, func(st ZoneStatus) bool {
			return st.Counters.SOAQueries > before && st.State == StateOK && st.LastError == ""
		})
		if l := logLines(s.log.since(mark), "TLS"); len(l) > 0 {
			t.Errorf("%s: %q", what, l)
		}
	}
	reconfigure(p.primary(xot.Options{Roots: roots, Hostname: "primary.xot.test"}, p.key))
	okCheck("check by host name")
	reconfigure(p.primary(xot.Options{Pins: []xot.Pin{xot.PinOf(p.cert.Cert)}}, p.key))
	okCheck("check by pin")
	p.named.Nsupdate(testZone, "update add new.example.test. 300 IN A 198.18.1.1")
	st = s.waitSerial(2, 10*time.Second)
	if st.Counters.Incremental != 1 {
		t.Errorf("counters %+v: want the change by IXFR", st.Counters)
	}
	if m := s.query("new.example.test.", dns.TypeA); len(m.Answer) != 1 {
		t.Errorf("new A: %v", m)
	}

	const served = 2 // the serial of the zone before each refusal
	other := testenv.NewCA(t, "another CA")
	for _, c := range []struct {
		name   string
		pr     Primary
		reason string
	}{
		{"wrong CA", p.primary(xot.Options{Roots: caPool(t, other.File)}, p.key), "certificate signed by unknown authority"},
		{"wrong pin", p.primary(xot.Options{Pins: []xot.Pin{xot.PinOf(other.Issue("x.test").Cert)}}, p.key), "matches no pinned key"},
		{"wrong hostname", p.primary(xot.Options{Roots: roots, Hostname: "other.xot.test"}, p.key), "not other.xot.test"},
		{"wrong address", func() Primary {
			pr := p.primary(xot.Options{Roots: roots}, p.key)
			pr.TLS.ServerName = "127.0.0.2"
			return pr
		}(), "not 127.0.0.2"},
		{"no TSIG", p.primary(xot.Options{Roots: roots}, nil), "REFUSED (transfer not allowed to us; does the primary require a TSIG key?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mark := s.log.Len()
			reconfigure(c.pr)
			// A change at the primary the secondary now cannot fetch.
			p.named.Nsupdate(testZone, "update add "+strings.ReplaceAll(c.name, " ", "-")+".example.test. 300 IN A 198.18.1.2")
			s.m.Refresh(testZone)
			deadline := time.Now().Add(10 * time.Second)
			want := "TLS: primary refused"
			if c.name == "no TSIG" {
				want = "transfer failed"
			}
			for len(logLines(s.log.since(mark), want, c.reason)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no log line %q with %q:\n%s", want, c.reason, s.log.since(mark))
				}
				time.Sleep(10 * time.Millisecond)
			}
			line := logLines(s.log.since(mark), want, c.reason)[0]
			if !strings.Contains(line, `primary="`+p.named.TLSAddr().String()) {
				t.Errorf("log line does not name the primary: %s", line)
			}
			t.Logf("%s", line)
			if m := s.query("new.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Errorf("the old zone is not served any more: %v", m)
			}
			if got := s.status(testZone).Serial; got != served {
				t.Errorf("serial %d, want 2 (the zone before the refusal)", got)
			}
		})
	}
}

// XoT with a client certificate: named requires one signed by its client
// CA. Ours gets the transfer; without one, named closes the connection
// after the handshake (no TLS alert) and the log line says what that
// likely means.
func TestXoTBINDClientCert(t *testing.T) {
	t.Parallel()
	clients := testenv.NewCA(t, "xot client CA")
	nl := notifyListener(t)
	p := startTLSPrimary(t, nl, clients.File)
	cc := clients.Issue("secondary.xot.test")
	cert, err := xot.LoadCert(cc.CertFile, cc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := caPool(t, p.ca.File)
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{
		p.primary(xot.Options{Roots: roots, Cert: cert}, p.key)}}}, Timeouts: xotTimeouts}, nl)
	s.waitSerial(1, 10*time.Second)

	mark := s.log.Len()
	if _, err := s.m.Reconfigure(Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{
		p.primary(xot.Options{Roots: roots}, p.key)}}}, Timeouts: xotTimeouts}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(logLines(s.log.since(mark), "TLS: primary refused", "client certificate")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged:\n%s", s.log.since(mark))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s", logLines(s.log.since(mark), "TLS: primary refused")[0])
	if m := s.query("www.example.test.", dns.TypeA); len(m.Answer) != 1 {
		t.Errorf("old zone not served: %v", m)
	}
}

// Reconfigure compares TLS settings by TLSID (a tls.Config holds funcs,
// never DeepEqual), or by pointer when no ID is given.
func TestSameZoneConfigTLS(t *testing.T) {
	a, b := xot.Client(xot.Options{}, netip.IPv6Loopback()), xot.Client(xot.Options{}, netip.IPv6Loopback())
	z := func(tc *tls.Config, id string) Zone {
		return Zone{Name: testZone, Primaries: []Primary{{Addr: netip.MustParseAddrPort("[::1]:853"), TLS: tc, TLSID: id}}}
	}
	for _, c := range []struct {
		name string
		x, y Zone
		same bool
	}{
		{"same ID, other config", z(a, "1"), z(b, "1"), true},
		{"other ID", z(a, "1"), z(a, "2"), false},
		{"no ID, same pointer", z(a, ""), z(a, ""), true},
		{"no ID, other pointer", z(a, ""), z(b, ""), false},
		{"TLS dropped", z(a, "1"), z(nil, ""), false},
	} {
		if got := sameZoneConfig(c.x, c.y); got != c.same {
			t.Errorf("%s: same %v, want %v", c.name, got, c.same)
		}
	}
}

// BenchmarkSOAQuery: one SOA check of a named 9.18 primary over UDP and
// over TLS (a new connection and TLS 1.3 handshake each time, as a check
// does), verified by CA and address.
func BenchmarkSOAQuery(b *testing.B) {
	nl := notifyListener(b)
	ca := testenv.NewCA(b, "bench CA")
	cert := ca.Issue("primary.xot.test", "127.0.0.1")
	named := peer.StartNamed(b, peer.NamedConfig{
		Zones: []peer.Zone{{Name: testZone, Text: zoneText(1, 3600, 600, 86400)}}, NotifyPort: port(nl),
		TLS: &peer.NamedTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile},
	})
	roots, err := xot.LoadCA(ca.File)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    Primary
	}{
		{"udp", Primary{Addr: named.Addr()}},
		{"tls", Primary{Addr: named.TLSAddr(), TLS: xot.Client(xot.Options{Roots: roots}, named.TLSAddr().Addr())}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := querySOA(b.Context(), c.p, testZone, time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestClosedAfterTLS: a TLS primary that closes the connection before its
// first answer is reported as xot.ErrClosed (a likely client certificate
// refusal), whether the close shows as an end of stream or as a reset;
// other errors, and any error from a plain primary, are left alone.
func TestClosedAfterTLS(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tlsP, plain := Primary{TLS: &tls.Config{}}, Primary{}
	for _, c := range []struct {
		p      Primary
		err    error
		closed bool
	}{
		{tlsP, io.ErrUnexpectedEOF, true},
		{tlsP, fmt.Errorf("read: %w", io.EOF), true},
		{tlsP, reset, true},
		{tlsP, os.ErrDeadlineExceeded, false},
		{plain, io.ErrUnexpectedEOF, false},
		{plain, reset, false},
	} {
		got := closedAfterTLS(c.p, c.err)
		if errors.Is(got, xot.ErrClosed) != c.closed || !errors.Is(got, c.err) {
			t.Errorf("TLS %v, %v: %v, want closed %v", c.p.TLS != nil, c.err, got, c.closed)
		}
		if _, ok := xot.Refusal(got); ok != c.closed {
			t.Errorf("TLS %v, %v: Refusal says %v", c.p.TLS != nil, c.err, ok)
		}
	}
}
