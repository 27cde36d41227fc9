package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// startPrimary writes named.conf for a BIND primary of the zone in
// dir/primary/zone.db and starts `named -g` on port, pinned to cpu. NOTIFY
// goes only to the loopback ports listed (notify explicit), with no delay
// and no rate limit worth the name; every other server is bogus, so named
// never talks to an address from the zone; dynamic updates are allowed from
// 127.0.0.1.
func startPrimary(dir string, port int, notifyPorts []int, cpu int) (*lab.Proc, error) {
	bin, err := lab.LookSbin("named")
	if err != nil {
		return nil, err
	}
	var also strings.Builder
	for _, p := range notifyPorts {
		fmt.Fprintf(&also, " 127.0.0.1 port %d;", p)
	}
	// BIND's defaults delay every other NOTIFY by about a second
	// (notify-delay 5, notify-rate 20): both are turned off so that the
	// primary's own pacing is not measured. max-ixfr-ratio unlimited: BIND
	// never answers an IXFR with the whole zone because the change is large.
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	check-integrity no;
	check-mx ignore;
	notify explicit;
	also-notify {%[3]s };
	notify-delay 0;
	notify-rate 10000;
	startup-notify-rate 10000;
	serial-query-rate 10000;
	max-ixfr-ratio unlimited;
	allow-transfer { 127.0.0.1; };
};
controls { };
server 0.0.0.0/0 { bogus yes; };
server ::/0 { bogus yes; };
server 127.0.0.1/32 { bogus no; };
zone "%[4]s" {
	type primary;
	file "zone.db";
	allow-update { 127.0.0.1; };
};
`, dir, port, also.String(), origin)
	path := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	argv := []string{bin, "-g", "-c", path}
	if !haveIPv6() {
		argv = append(argv, "-4")
	}
	p, err := lab.Launch("named", dir, nil, lab.Pinned(cpu, argv))
	if p != nil {
		p.Port = port
	}
	return p, err
}

// haveIPv6 reports whether the kernel has IPv6 on; named needs -4 when not.
func haveIPv6() bool {
	b, err := os.ReadFile("/proc/net/if_inet6")
	if err != nil || len(b) == 0 {
		return false
	}
	v, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err != nil || strings.TrimSpace(string(v)) != "1"
}

// change is one dynamic update at the primary and the answer that shows
// it: qname's A RRset becomes exactly want.
type change struct {
	qname string
	want  netip.Addr
	add   bool // a new name; otherwise an existing name's A RRset replaced
}

func (c change) String() string {
	verb := "replace"
	if c.add {
		verb = "add"
	}
	return fmt.Sprintf("%s %s A %s", verb, c.qname, c.want)
}

// changeFor is the i-th change of a run over a zone of n names: even ones
// add a new name, odd ones replace the A record of an existing name spread
// over the zone. Every change has its own address in 198.19.0.0/16, so no
// answer given before it can match.
func changeFor(i, n int) change {
	want := netip.AddrFrom4([4]byte{198, 19, byte((i + 1) >> 8), byte(i + 1)})
	if i%2 == 0 {
		return change{qname: fmt.Sprintf("new%d.%s", i, origin), want: want, add: true}
	}
	// A fixed stride through the names (Knuth's multiplicative hash), so
	// the changes land all over the zone, the same ones in every run.
	k := int(uint64(i) * 2654435761 % uint64(n))
	return change{qname: lab.Host(k) + "." + origin, want: want}
}

// update sends c to the primary as an RFC 2136 UPDATE and returns when the
// primary has answered NOERROR, with the round-trip time.
func update(ctx context.Context, primary string, c change) (time.Duration, error) {
	m := new(dns.Msg)
	m.SetUpdate(origin)
	hdr := dns.RR_Header{Name: c.qname, Rrtype: dns.TypeA, Class: dns.ClassINET}
	if !c.add {
		m.RemoveRRset([]dns.RR{&dns.A{Hdr: hdr}})
	}
	hdr.Ttl = 300
	m.Insert([]dns.RR{&dns.A{Hdr: hdr, A: c.want.AsSlice()}})
	cl := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	r, rtt, err := cl.ExchangeContext(ctx, m, primary)
	if err != nil {
		return 0, fmt.Errorf("update %s: %w", c, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return 0, fmt.Errorf("update %s: primary answered %s", c, dns.RcodeToString[r.Rcode])
	}
	return rtt, nil
}

// countAXFR transfers the zone from addr and returns the number of records
// (the closing SOA not counted). The benchmark does it once before the
// secondaries start, so that each of them meets a primary that has already
// served the zone once.
func countAXFR(ctx context.Context, addr string) (int, uint32, error) {
	m := new(dns.Msg)
	m.SetAxfr(origin)
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	env, err := tr.In(m, addr)
	if err != nil {
		return 0, 0, err
	}
	n, serial := 0, uint32(0)
	for e := range env {
		if e.Error != nil {
			return 0, 0, e.Error
		}
		for _, rr := range e.RR {
			if soa, ok := rr.(*dns.SOA); ok && n == 0 {
				serial = soa.Serial
			}
			n++
		}
		if ctx.Err() != nil {
			// Drain nothing more: the caller stops named, which ends the stream.
			return 0, 0, ctx.Err()
		}
	}
	return n - 1, serial, nil
}
