package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// poller asks one server, over one UDP socket kept for the whole run, until
// an answer shows the data it waits for.
type poller struct {
	name string
	conn *dns.Conn
	id   uint16
}

func newPoller(name, addr string) (*poller, error) {
	c, err := dns.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &poller{name: name, conn: c}, nil
}

func (p *poller) close() { p.conn.Close() }

// replyWait bounds the wait for one reply. A reply later than that is still
// taken when it comes while a later poll waits (every poll of an
// observation is matched by its ID).
const replyWait = 50 * time.Millisecond

// observation is the outcome of polling one server for one change.
type observation struct {
	Seen    bool          // an answer showed the change before the timeout
	Latency time.Duration // from t0 to the receipt of that answer
	Polls   int           // queries sent
}

// observe sends qname/A to the server every `every` (after the previous
// reply or replyWait) from now until an answer is exactly want (one A
// record, authoritative, NOERROR), timeout after t0, ctx is done, or dead
// is closed (the server exited).
func (p *poller) observe(ctx context.Context, t0 time.Time, qname string, want netip.Addr, every, timeout time.Duration, dead <-chan struct{}) (observation, error) {
	var o observation
	deadline := t0.Add(timeout)
	first := p.id + 1
	next := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return o, err
		}
		select {
		case <-dead:
			return o, fmt.Errorf("%s exited", p.name)
		default:
		}
		now := time.Now()
		if !now.Before(deadline) {
			return o, nil
		}
		if wait := next.Sub(now); wait > 0 {
			time.Sleep(wait)
		}
		next = time.Now().Add(every)
		p.id++
		q := new(dns.Msg).SetQuestion(qname, dns.TypeA)
		q.Id = p.id
		q.RecursionDesired = false
		if err := p.conn.WriteMsg(q); err != nil {
			return o, fmt.Errorf("%s: %w", p.name, err)
		}
		o.Polls++
		// Read until the reply to some poll of this observation, replyWait or
		// the deadline; stale replies (an earlier observation's) are dropped.
		_ = p.conn.SetReadDeadline(minTime(time.Now().Add(replyWait), deadline))
		for {
			r, err := p.conn.ReadMsg()
			at := time.Now()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil || r == nil {
				continue // unparsable: not ours to judge, ask again
			}
			if r.Id-first > p.id-first {
				continue
			}
			if shows(r, qname, want) {
				o.Seen, o.Latency = true, at.Sub(t0)
				return o, nil
			}
			if r.Id == p.id {
				break
			}
		}
	}
}

// shows reports whether r answers qname/A with exactly want.
func shows(r *dns.Msg, qname string, want netip.Addr) bool {
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
		return false
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok || !strings.EqualFold(a.Hdr.Name, qname) {
		return false
	}
	got, ok := netip.AddrFromSlice(a.A)
	return ok && got.Unmap() == want
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// serial asks addr for the zone's SOA serial.
func serial(addr string) (uint32, error) {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(origin, dns.TypeSOA), addr)
	if err != nil {
		return 0, err
	}
	if len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
		return 0, fmt.Errorf("SOA: %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, fmt.Errorf("SOA: got %v", r.Answer[0])
	}
	return soa.Serial, nil
}

// waitSerial polls addr until it serves serial want, for at most timeout.
func waitSerial(ctx context.Context, addr string, want uint32, timeout time.Duration) (uint32, error) {
	deadline := time.Now().Add(timeout)
	var got uint32
	var err error
	for {
		got, err = serial(addr)
		if err == nil && got == want {
			return got, nil
		}
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("serial %d, want %d", got, want)
			}
			return got, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Idle detection: a process tree is idle when it used less than idleCPU of
// one CPU in each of idleRounds windows of idleWindow.
const (
	idleWindow = 250 * time.Millisecond
	idleCPU    = 0.02
	idleRounds = 2
)

// waitIdle waits until every process in ps is idle, for at most timeout,
// so that the next measurement does not share its CPU with work left over
// from the previous one (xdpns saving its snapshot, a garbage collection,
// NSD's reload). It reports whether they settled.
func waitIdle(ctx context.Context, ps []*lab.Proc, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	quiet := 0
	last := make([]time.Duration, len(ps))
	for i, p := range ps {
		last[i] = lab.TreeRuntime(p.Pid())
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(idleWindow)
		busy := false
		for i, p := range ps {
			now := lab.TreeRuntime(p.Pid())
			if float64(now-last[i]) > idleCPU*float64(idleWindow) {
				busy = true
			}
			last[i] = now
		}
		if busy {
			quiet = 0
			continue
		}
		if quiet++; quiet >= idleRounds {
			return true
		}
	}
	return false
}

// logf prints progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-xfr: "+format+"\n", args...)
}
