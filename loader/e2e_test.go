package loader

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/cookie"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// served is the Go responder and server plus XDP in a lab, serving zs.
type served struct {
	l    *lab
	x    *XDP
	resp *responder.Responder
	srv  *server.Server
}

func serve(t *testing.T, l *lab, mode Mode, zs ...*zone.Zone) *served {
	t.Helper()
	return serveWith(t, l, mode, responder.Config{}, zs...)
}

// serveWith is serve with this responder configuration.
func serveWith(t *testing.T, l *lab, mode Mode, rcfg responder.Config, zs ...*zone.Zone) *served {
	t.Helper()
	s := &served{l: l, resp: responder.New(rcfg)}
	s.resp.SetZones(zs)
	x, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if _, err := x.LoadZones(zs...); err != nil {
		t.Fatal(err)
	}
	s.x = x
	l.inServer(func() error {
		s.srv = server.New(server.Config{
			Listen:     []string{netip.AddrPortFrom(l.server4, 53).String(), netip.AddrPortFrom(l.server6, 53).String()},
			UDPSockets: 1,
		}, s.resp, nil)
		return s.srv.Start()
	})
	t.Cleanup(func() { s.srv.Close() })
	l.attach(x, mode)
	return s
}

// counts is a reading of the server's socket counters and XDP's.
type counts struct {
	udp, tcp uint64
	xdp      Stats
}

func (s *served) counts(t *testing.T) counts {
	st, err := s.x.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return counts{udp: s.srv.Stats.UDPQueries.Load(), tcp: s.srv.Stats.TCPQueries.Load(), xdp: st}
}

// expect is the Go responder's answer to a question: RCODE and the answer
// section's records as "TYPE RDATA".
func (s *served) expect(t *testing.T, name string, qtype uint16, do bool) (string, []string) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, do)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var r dns.Msg
	if err := r.Unpack(s.resp.Respond(&responder.Scratch{}, nil, q, true)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, rdataString(strings.Fields(rr.String())[3:]))
	}
	return dns.RcodeToString[r.Rcode], out
}

// rdataString is "TYPE RDATA" from the fields after owner, TTL and class,
// the RDATA's fields run together: dig breaks long base64 (RRSIG) in two.
func rdataString(f []string) string {
	return f[0] + " " + strings.Join(f[1:], "")
}

// dig asks with dig from the client namespace and returns RCODE and the
// answer section as "TYPE RDATA".
func (l *lab) dig(t *testing.T, server netip.Addr, name, qtype string, flags ...string) (string, []string) {
	t.Helper()
	args := append([]string{"@" + server.String(), "-p", "53", "+norec", "+time=2", "+tries=1", "+noall", "+comments", "+answer", name, qtype}, flags...)
	out, err := l.clientRun(10*time.Second, "dig", args...)
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	rcode := ""
	var ans []string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "status: "); i >= 0 {
			rcode = strings.TrimSuffix(strings.Fields(line[i+len("status: "):])[0], ",")
			continue
		}
		if f := strings.Fields(line); len(f) >= 5 && !strings.HasPrefix(line, ";") {
			ans = append(ans, rdataString(f[3:]))
		}
	}
	return rcode, ans
}

// kdig asks with kdig +short and returns the answer's RDATA.
func (l *lab) kdig(t *testing.T, server netip.Addr, name, qtype string, flags ...string) []string {
	t.Helper()
	args := append([]string{"@" + server.String(), "-p", "53", "+norec", "+time=2", "+retry=0", "+short", name, qtype}, flags...)
	out, err := l.clientRun(10*time.Second, "kdig", args...)
	if err != nil {
		t.Fatalf("kdig %v: %v\n%s", args, err, out)
	}
	var ans []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			ans = append(ans, strings.Join(strings.Fields(line), " "))
		}
	}
	return ans
}

func rdataOnly(ans []string) []string {
	out := make([]string, len(ans))
	for i, a := range ans {
		out[i] = strings.Join(strings.Fields(a)[1:], " ")
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestEndToEnd: dig and kdig in a client namespace ask the server's veth
// address (IPv4 and IPv6), with the loader attached in native and generic
// mode. Compiled answers come from XDP (tx__answer moves, the server's UDP
// socket sees nothing); misses and TCP reach the Go server, which answers.
func TestEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"dig", "kdig", "nsenter"} {
		testenv.RequireBinary(t, b)
	}
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	signed := loadZone(t, "testdata/example.net.zone", "example.net.")
	for _, mode := range []Mode{ModeNative, ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			l := newLab(t)
			s := serve(t, l, mode, z, signed)
			type query struct {
				tool, name, qtype string
				flags             []string
				via               string // "xdp", "nxd" (XDP NXDOMAIN), "wild" (XDP wildcard), "udp" (Go, passed), "tcp", "any"
			}
			queries := []query{
				{"dig", "short.xdp.test.", "A", nil, "xdp"},
				{"dig", "SHORT.Xdp.TeSt.", "AAAA", nil, "xdp"},
				{"dig", "x.xdp.test.", "A", nil, "xdp"},      // CNAME chain
				{"dig", "short.xdp.test.", "MX", nil, "xdp"}, // NODATA, shared body
				{"dig", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.xdp.test.", "A", []string{"+noedns"}, "xdp"},
				{"dig", "short.xdp.test.", "A", []string{"+dnssec", "+nocookie"}, "xdp"},
				{"dig", "web.example.net.", "A", []string{"+dnssec"}, "xdp"}, // signed, with RRSIG
				// Signed NODATA (SOA, NSEC, RRSIGs: ~430 bytes): more
				// than native veth's tailroom and headroom allow, so
				// like mid.xdp.test TXT.
				{"dig", "web.example.net.", "MX", []string{"+dnssec"}, "any"},
				{"dig", "nosuch.xdp.test.", "A", nil, "nxd"}, // NXDOMAIN: the zone's shared record
				// A random label under *.wild.example.net: synthesised in XDP.
				{"dig", fmt.Sprintf("r%d.wild.example.net.", time.Now().UnixNano()%1000000), "A", nil, "wild"},
				{"dig", "www.sub.example.net.", "A", nil, "ref"},                    // below a cut: the referral
				{"dig", "a.b.sub.example.net.", "AAAA", []string{"+dnssec"}, "ref"}, // signed (NSEC: no DS)
				{"dig", "nosuch.x.xdp.test.", "A", nil, "udp"},                      // below a CNAME: Go
				{"dig", "short.xdp.test.", "A", []string{"+tcp"}, "tcp"},
				{"kdig", "short.xdp.test.", "A", nil, "xdp"},
				{"kdig", "x.xdp.test.", "AAAA", nil, "xdp"},
				{"kdig", "ns.xdp.test.", "A", []string{"+tcp"}, "tcp"},
				// ~750 bytes: XDP answers if the driver lets the frame
				// grow enough, else passes (pass__no_room) and Go answers.
				{"dig", "mid.xdp.test.", "TXT", nil, "any"},
			}
			for _, srvAddr := range []netip.Addr{l.server4, l.server6} {
				for _, qu := range queries {
					label := fmt.Sprintf("%s %s %s %v to %s", qu.tool, qu.name, qu.qtype, qu.flags, srvAddr)
					before := s.counts(t)
					wantRcode, want := s.expect(t, qu.name, dns.StringToType[qu.qtype], slices.Contains(qu.flags, "+dnssec"))
					switch qu.tool {
					case "dig":
						rcode, got := l.dig(t, srvAddr, qu.name, qu.qtype, qu.flags...)
						if rcode != wantRcode || !sameSet(got, want) {
							t.Errorf("%s: %s %q, want %s %q", label, rcode, got, wantRcode, want)
						}
					case "kdig":
						if got := l.kdig(t, srvAddr, qu.name, qu.qtype, qu.flags...); !sameSet(got, rdataOnly(want)) {
							t.Errorf("%s: %q, want %q", label, got, rdataOnly(want))
						}
					}
					after := s.counts(t)
					d := after.xdp.Sub(before.xdp)
					udp, tcp := after.udp-before.udp, after.tcp-before.tcp
					switch qu.via {
					case "xdp":
						if d.Get("tx__answer") != 1 || udp != 0 || tcp != 0 {
							t.Errorf("%s: want one XDP answer and no socket traffic; xdp %v, udp %d, tcp %d", label, d.NonZero(), udp, tcp)
						}
					case "nxd":
						if d.Get("tx__nxdomain") != 1 || udp != 0 || tcp != 0 {
							t.Errorf("%s: want an XDP NXDOMAIN and no socket traffic; xdp %v, udp %d, tcp %d", label, d.NonZero(), udp, tcp)
						}
					case "wild":
						if d.Get("tx__wildcard") != 1 || udp != 0 || tcp != 0 {
							t.Errorf("%s: want an XDP wildcard answer and no socket traffic; xdp %v, udp %d, tcp %d", label, d.NonZero(), udp, tcp)
						}
					case "ref":
						if d.Get("tx__referral") != 1 || udp != 0 || tcp != 0 {
							t.Errorf("%s: want an XDP referral and no socket traffic; xdp %v, udp %d, tcp %d", label, d.NonZero(), udp, tcp)
						}
					case "udp":
						if d.Get("tx__answer") != 0 || d.Get("pass__no_entry") != 1 || udp != 1 {
							t.Errorf("%s: want a pass to Go over UDP; xdp %v, udp %d", label, d.NonZero(), udp)
						}
					case "tcp":
						if d.Get("tx__answer") != 0 || tcp != 1 || udp != 0 {
							t.Errorf("%s: want Go over TCP; xdp %v, tcp %d, udp %d", label, d.NonZero(), tcp, udp)
						}
					case "any":
						if d.Get("tx__answer")+udp != 1 {
							t.Errorf("%s: answered %d times in XDP, %d in Go", label, d.Get("tx__answer"), udp)
						}
						t.Logf("%s: xdp %v, udp %d", label, d.NonZero(), udp)
					}
				}
			}
			st, _ := s.x.Stats()
			t.Logf("%s: xdp %v; server udp %d, tcp %d", mode, st.NonZero(), s.srv.Stats.UDPQueries.Load(), s.srv.Stats.TCPQueries.Load())
		})
	}
}

// TestEndToEndCookies: with DNS cookies on, dig +cookie in the client
// namespace gets a server cookie from XDP (no socket traffic) that dig
// calls good and Go's jar calls valid; sent back, XDP echoes it.
func TestEndToEndCookies(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "dig")
	testenv.RequireBinary(t, "nsenter")
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	jar, err := cookie.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t)
	s := serveWith(t, l, ModeNative, responder.Config{Cookies: jar}, z)
	cur, _, _ := jar.Secrets()
	if err := s.x.SetCookies(&Cookies{Current: cur}); err != nil {
		t.Fatal(err)
	}
	digCookie := func(srv netip.Addr, flag string) string {
		t.Helper()
		out, err := l.clientRun(10*time.Second, "dig", "@"+srv.String(), "+norec", "+time=2", "+tries=1", "+noall", "+comments",
			flag, "short.xdp.test.", "A")
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", flag, err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if i := strings.Index(line, "COOKIE: "); i >= 0 {
				f := strings.Fields(line[i+len("COOKIE: "):])
				if len(f) < 2 || f[1] != "(good)" {
					t.Fatalf("dig %s: %q: want a good cookie", flag, line)
				}
				return f[0]
			}
		}
		t.Fatalf("dig %s: no COOKIE in\n%s", flag, out)
		return ""
	}
	for _, srv := range []netip.Addr{l.server4, l.server6} {
		client := l.client4
		if srv.Is6() {
			client = l.client6
		}
		before := s.counts(t)
		c := digCookie(srv, "+cookie")
		b, _ := hex.DecodeString(c)
		if _, valid, err := jar.Answer(nil, b, client); err != nil || !valid {
			t.Fatalf("%s: server cookie %s not valid for Go (%v)", srv, c, err)
		}
		// Sent back: echoed.
		if got := digCookie(srv, "+cookie="+c); got != c {
			t.Errorf("%s: sent %s, got %s", srv, c, got)
		}
		after := s.counts(t)
		if d := after.xdp.Sub(before.xdp); d.Get("tx__answer") != 2 || after.udp != before.udp {
			t.Errorf("%s: want 2 XDP answers and no socket traffic; xdp %v, udp %d", srv, d.NonZero(), after.udp-before.udp)
		}
	}
}
