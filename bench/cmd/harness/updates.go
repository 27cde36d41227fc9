package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// startPrimary runs the updates scenario's primary, named, in s's server
// namespace on 127.0.0.1:primaryPort (pinned to cpu, the client's: it is
// not the server under test), serving g's zone, sending NOTIFY to
// 127.0.0.1:53 (the secondary) only and taking updates from 127.0.0.1.
func startPrimary(s *server, g *group, cpu int) (*lab.Proc, error) {
	dir := filepath.Join(s.dir, "primary")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(g.zoneFile)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "zone.db"), b, 0o644); err != nil {
		return nil, err
	}
	// notify-delay 0 and the rates: BIND's defaults delay every other
	// NOTIFY by about a second (DESIGN.md).
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	notify explicit;
	also-notify { 127.0.0.1 port 53; };
	notify-delay 0;
	notify-rate 10000;
	startup-notify-rate 10000;
	serial-query-rate 10000;
	max-ixfr-ratio unlimited;
	allow-transfer { 127.0.0.1; };
%[3]s};
%[4]szone "%[5]s" {
	type primary;
	file "zone.db";
	allow-update { 127.0.0.1; };
};
`, dir, primaryPort, bindOptions, bindServers, origin)
	path := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("named")
	if err != nil {
		return nil, err
	}
	return lab.Launch("primary", dir, nil, lab.Pinned(cpu, s.v.ServerArgv(bin, "-g", "-n", "1", "-c", path)))
}

// churn sends updates to one server's primary at a steady rate while a
// run goes on, and counts what the secondary applied.
type churn struct {
	s     *server
	rate  int
	names int
	next  int // the next change's number, over the whole scenario

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	sent   int
	failed int
	last   change
	serial uint32 // the secondary's serial when the run started
}

// change replaces the A record of an existing name with an address from
// 198.19.0.0/16 (the benchmarking range, never sent to).
type change struct {
	qname string
	want  netip.Addr
}

func changeFor(i, n int) change {
	k := int(uint64(i) * 2654435761 % uint64(n))
	return change{qname: lab.Host(k) + "." + origin, want: netip.AddrFrom4([4]byte{198, 19, byte((i + 1) >> 8), byte(i + 1)})}
}

func (c *churn) primaryAddr() string { return "127.0.0.1:" + strconv.Itoa(primaryPort) }

// serials reads the primary's and the secondary's SOA serials.
func (c *churn) serials() (primary, secondary uint32, err error) {
	get := func(in func(func() error) error, addr string) (uint32, error) {
		r, err := askIn(in, addr, origin, dns.TypeSOA, false)
		if err != nil {
			return 0, err
		}
		for _, rr := range r.Answer {
			if soa, ok := rr.(*dns.SOA); ok {
				return soa.Serial, nil
			}
		}
		return 0, fmt.Errorf("no SOA in %v", r.Answer)
	}
	if primary, err = get(c.s.v.InServer, c.primaryAddr()); err != nil {
		return
	}
	secondary, err = get(c.s.v.InClient, net.JoinHostPort(c.s.v.Server4.String(), "53"))
	return
}

// start sends updates every 1/rate s until stop.
func (c *churn) start(ctx context.Context) {
	_, c.serial, _ = c.serials()
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	c.sent, c.failed = 0, 0
	go func() {
		defer close(c.done)
		tick := time.NewTicker(time.Second / time.Duration(c.rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ch := changeFor(c.next, c.names)
			c.next++
			err := c.update(ch)
			c.mu.Lock()
			if err != nil {
				c.failed++
			} else {
				c.sent++
				c.last = ch
			}
			c.mu.Unlock()
		}
	}()
}

func (c *churn) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
		c.cancel = nil
	}
}

// update sends one change to the primary as a DNS UPDATE from inside the
// server namespace.
func (c *churn) update(ch change) error {
	m := new(dns.Msg)
	m.SetUpdate(origin)
	hdr := dns.RR_Header{Name: ch.qname, Rrtype: dns.TypeA, Class: dns.ClassINET}
	m.RemoveRRset([]dns.RR{&dns.A{Hdr: hdr}})
	hdr.Ttl = 300
	m.Insert([]dns.RR{&dns.A{Hdr: hdr, A: ch.want.AsSlice()}})
	r, err := exchangeIn(c.s.v.InServer, c.primaryAddr(), m)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("update %s: %s", ch.qname, dns.RcodeToString[r.Rcode])
	}
	return nil
}

// updateResult is what the secondary did with one run's updates.
type updateResult struct {
	Sent    int  // accepted by the primary
	Failed  int  // refused or lost
	Applied int  // serials the secondary moved by, within settle after the run
	InSync  bool // same serial as the primary, and the last change answered
	Lag     time.Duration
}

// settle waits (up to timeout) for the secondary to catch up with the
// primary after a run, and checks the last change is answered.
func (c *churn) settle(ctx context.Context, timeout time.Duration) updateResult {
	c.mu.Lock()
	res := updateResult{Sent: c.sent, Failed: c.failed}
	last := c.last
	c.mu.Unlock()
	t0 := time.Now()
	for {
		p, sec, err := c.serials()
		if err == nil {
			res.Applied = int(sec - c.serial)
			if p == sec {
				res.InSync = last.qname == "" || c.answers(last)
				if res.InSync {
					res.Lag = time.Since(t0)
					return res
				}
			}
		}
		if time.Since(t0) > timeout || ctx.Err() != nil {
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers reports whether the secondary answers ch's name with ch's
// address.
func (c *churn) answers(ch change) bool {
	r, err := askIn(c.s.v.InClient, net.JoinHostPort(c.s.v.Server4.String(), "53"), ch.qname, dns.TypeA, false)
	if err != nil || len(r.Answer) != 1 {
		return false
	}
	a, ok := r.Answer[0].(*dns.A)
	return ok && a.A.Equal(ch.want.AsSlice())
}
