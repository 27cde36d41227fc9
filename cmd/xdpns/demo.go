package main

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/zone"
)

// demoZones are the bundled zones; each file is named ORIGIN.zone.
//
//go:embed demo/*.zone
var demoZones embed.FS

// demoIdentity is what the demo answers to CHAOS TXT id.server.
const demoIdentity = "xdpns-demo"

// demoQuery is one question the demo asks and the answer it expects. RRs are
// written "OWNER TYPE RDATA" (no TTL or class), in the order sent.
type demoQuery struct {
	name   string
	qtype  uint16
	class  uint16 // 0: IN
	tcp    bool
	rcode  int
	aa     bool
	answer []string
	ns     []string // authority section; nil: not checked
	note   string   // what the row shows
}

const demoSOA = "example.com. SOA ns1.example.com. hostmaster.example.com. 2024060101 7200 3600 1209600 300"

var demoQueries = []demoQuery{
	{name: "example.com.", qtype: dns.TypeA, aa: true, note: "apex A",
		answer: []string{"example.com. A 203.0.113.10"}},
	{name: "host.example.com.", qtype: dns.TypeAAAA, aa: true, note: "AAAA",
		answer: []string{"host.example.com. AAAA 2001:db8::20"}},
	{name: "example.com.", qtype: dns.TypeMX, aa: true, note: "MX",
		answer: []string{"example.com. MX 10 mail.example.com.", "example.com. MX 20 mail.example.net."}},
	{name: "www.example.com.", qtype: dns.TypeA, aa: true, note: "CNAME chain",
		answer: []string{
			"www.example.com. CNAME web.example.com.",
			"web.example.com. CNAME host.example.com.",
			"host.example.com. A 203.0.113.20",
		}},
	{name: "anything.apps.example.com.", qtype: dns.TypeA, aa: true, note: "wildcard",
		answer: []string{"anything.apps.example.com. A 203.0.113.30"}},
	{name: "nope.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, note: "NXDOMAIN",
		ns: []string{demoSOA}},
	{name: "host.example.com.", qtype: dns.TypeMX, aa: true, note: "NODATA",
		ns: []string{demoSOA}},
	{name: "www.sub.example.com.", qtype: dns.TypeA, note: "referral",
		ns: []string{"sub.example.com. NS ns1.sub.example.com.", "sub.example.com. NS ns2.example.net."}},
	{name: "example.net.", qtype: dns.TypeA, aa: true, note: "second zone",
		answer: []string{"example.net. A 198.51.100.80"}},
	{name: "example.com.", qtype: dns.TypeTXT, tcp: true, aa: true, note: "TCP",
		answer: []string{`example.com. TXT "v=spf1 mx -all"`}},
	{name: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused, note: "not our zone"},
	{name: "id.server.", qtype: dns.TypeTXT, class: dns.ClassCHAOS, aa: true, note: "CHAOS identity",
		answer: []string{`id.server. TXT "` + demoIdentity + `"`}},
}

// cmdDemo serves the bundled zones on a free loopback port, asks each of
// demoQueries, and prints what came back. It exits 1 if any answer differs
// from the expected one.
func cmdDemo(ctx context.Context, e *env, args []string) int {
	fset := newFlagSet(e, "demo", "[-keep]")
	keep := fset.Bool("keep", false, "keep serving after the queries until interrupted (try dig against it)")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	zs, err := demoLoad()
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	r := responder.New(responder.Config{Identity: demoIdentity, Version: versionString()})
	r.SetZones(zs)
	srv, err := demoStart(r, component(log, "server"))
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	defer srv.Close()
	addr := srv.Addrs()[0]
	names := make([]string, len(zs))
	for i, z := range zs {
		names[i] = z.Origin
	}
	e.printf("serving %s on %s (UDP and TCP)\n\n", strings.Join(names, ", "), addr)

	failed := demoAsk(ctx, e.stdout, addr, demoQueries)
	e.printf("\n")
	if failed > 0 {
		e.printf("FAIL: %d of %d answers were not as expected\n", failed, len(demoQueries))
	} else {
		e.printf("ok: all %d answers as expected\n", len(demoQueries))
	}
	if *keep {
		host, port, _ := strings.Cut(addr, ":")
		e.printf("\nstill serving; try: dig @%s -p %s www.example.com A   (Ctrl-C stops)\n", host, port)
		sigs, stop := e.signals(syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		select {
		case <-ctx.Done():
		case <-sigs:
		}
	}
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

// demoLoad parses every bundled zone, in file name order.
func demoLoad() ([]*zone.Zone, error) {
	files, err := fs.Glob(demoZones, "demo/*.zone")
	if err != nil {
		return nil, err
	}
	var out []*zone.Zone
	for _, f := range files {
		data, err := demoZones.ReadFile(f)
		if err != nil {
			return nil, err
		}
		origin := strings.TrimSuffix(path.Base(f), ".zone")
		z, _, err := zone.Parse(bytes.NewReader(data), f, origin, zone.LoadOptions{})
		if err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
}

// demoStart binds the server to a free loopback port. With port 0 the server
// picks the UDP port first and then binds TCP to the same number, which
// another program may hold; try again with another port then.
func demoStart(r *responder.Responder, log *slog.Logger) (*server.Server, error) {
	const attempts = 5
	var err error
	for range attempts {
		srv := server.New(server.Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1}, r, log)
		if err = srv.Start(); err == nil {
			return srv, nil
		}
	}
	return nil, fmt.Errorf("start server: %w", err)
}

// demoAsk sends every query, prints the table and returns how many answers
// were not as expected.
func demoAsk(ctx context.Context, w io.Writer, addr string, qs []demoQuery) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tQUERY\tVIA\tSHOWS\tRCODE\tANSWER")
	for _, q := range qs {
		resp, err := demoExchange(ctx, addr, q)
		var lines []string
		rcode := "-"
		if err != nil {
			lines = []string{"error: " + err.Error()}
		} else {
			rcode = dns.RcodeToString[resp.Rcode]
			lines = demoLines(resp)
		}
		problem := demoCheck(q, resp, err)
		mark := "ok"
		if problem != "" {
			mark = "FAIL"
			failed++
		}
		qtext := q.name + " " + dns.TypeToString[q.qtype]
		if q.class == dns.ClassCHAOS {
			qtext = q.name + " CH " + dns.TypeToString[q.qtype]
		}
		via := "udp"
		if q.tcp {
			via = "tcp"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, qtext, via, q.note, rcode, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t\t\t\t\t%s\n", l)
		}
		if problem != "" {
			fmt.Fprintf(tw, "\t\t\t\t\twant: %s\n", problem)
		}
	}
	tw.Flush()
	return failed
}

func demoExchange(ctx context.Context, addr string, q demoQuery) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	m.RecursionDesired = false
	if q.class != 0 {
		m.Question[0].Qclass = q.class
	}
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if q.tcp {
		c.Net = "tcp"
	}
	resp, _, err := c.ExchangeContext(ctx, m, addr)
	return resp, err
}

// demoLines is what the table shows of a response: the answer section, or
// when it is empty the authority and additional sections.
func demoLines(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, shortRR(rr))
	}
	if len(out) == 0 {
		for _, rr := range m.Ns {
			out = append(out, "authority: "+shortRR(rr))
		}
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				out = append(out, "additional: "+shortRR(rr))
			}
		}
	}
	if len(out) == 0 {
		out = []string{"-"}
	}
	return out
}

// shortRR writes rr as "OWNER TYPE RDATA".
func shortRR(rr dns.RR) string {
	h := rr.Header()
	rdata := strings.TrimPrefix(rr.String(), h.String())
	return h.Name + " " + dns.TypeToString[h.Rrtype] + " " + rdata
}

// demoCheck returns what was expected when resp is not the answer q
// expects, or "".
func demoCheck(q demoQuery, resp *dns.Msg, err error) string {
	want := func() string {
		s := fmt.Sprintf("rcode %s, aa=%t", dns.RcodeToString[q.rcode], q.aa)
		if len(q.answer) > 0 {
			s += ", answer " + strings.Join(q.answer, "; ")
		}
		if q.ns != nil {
			s += ", authority " + strings.Join(q.ns, "; ")
		}
		return s
	}
	if err != nil {
		return want()
	}
	var answer, ns []string
	for _, rr := range resp.Answer {
		answer = append(answer, shortRR(rr))
	}
	for _, rr := range resp.Ns {
		ns = append(ns, shortRR(rr))
	}
	if resp.Rcode != q.rcode || resp.Authoritative != q.aa || !slices.Equal(answer, q.answer) ||
		(q.ns != nil && !slices.Equal(ns, q.ns)) {
		return want()
	}
	return ""
}
