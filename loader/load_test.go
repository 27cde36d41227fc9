package loader

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// history is what a name answered over time: version j was served (by Go
// or XDP) from from[j] until until[j], when the next version was in both.
type history struct {
	mu    sync.Mutex
	value []string
	from  []time.Time
	until []time.Time // zero: still served
}

func (h *history) add(v string, from time.Time) {
	h.mu.Lock()
	h.value = append(h.value, v)
	h.from = append(h.from, from)
	h.until = append(h.until, time.Time{})
	h.mu.Unlock()
}

// retire marks every version but the newest as no longer served after t.
func (h *history) retire(t time.Time) {
	h.mu.Lock()
	for j := range len(h.value) - 1 {
		if h.until[j].IsZero() {
			h.until[j] = t
		}
	}
	h.mu.Unlock()
}

// valid reports whether v may answer a query sent at sent and answered at
// got: some version with that value was served at some moment between.
func (h *history) valid(v string, sent, got time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for j := range h.value {
		if h.value[j] == v && !h.from[j].After(got) && (h.until[j].IsZero() || !h.until[j].Before(sent)) {
			return true
		}
	}
	return false
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func distribution(d []time.Duration) string {
	return fmt.Sprintf("min %v p50 %v p90 %v p99 %v max %v (n=%d)", percentile(d, 0), percentile(d, 0.5),
		percentile(d, 0.9), percentile(d, 0.99), percentile(d, 1), len(d))
}

// TestUpdatesUnderLoad: while a client in the client namespace asks
// continuously (one socket watching the name being changed, one asking
// random names and a NODATA that carries the SOA serial), 1,000 IXFR-like
// changes are applied: an address changed and the serial bumped each time,
// a name added and one removed every tenth. Every answer must be a version
// of its name served at some moment between query and answer (none
// wrong), every query answered (none missing), all by XDP (the server's
// UDP socket sees nothing); it logs the time from the zone swap to the
// first answer with the new data.
func TestUpdatesUnderLoad(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "nsenter")
	const (
		names   = 200
		changes = 1000
		origin  = "load.test."
	)
	var text strings.Builder
	fmt.Fprintf(&text, "$ORIGIN %s\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 198.18.0.53\nnodata AAAA 2001:2::53\n", origin)
	addr := func(i int) string { return fmt.Sprintf("198.19.%d.%d", i/256, i%256) }
	for k := range names {
		fmt.Fprintf(&text, "n%03d A %s\n", k, addr(k))
	}
	z := mustZone(t, origin, text.String())

	l := newLab(t)
	s := serve(t, l, ModeNative, z)
	prev := s.resp.Zone(origin)

	hist := make([]*history, names)
	start := time.Now()
	for k := range hist {
		hist[k] = &history{}
		hist[k].add(addr(k), start)
	}
	serials := &history{}
	serials.add("1", start)

	// The client: every answer checked, every query answered.
	var (
		stop                atomic.Bool
		asked, bad, missing atomic.Int64
		watch               atomic.Int64 // name the updater changes now
		target              atomic.Pointer[string]
		seen                = make(chan time.Time, 1)
		errMu               sync.Mutex
		errs                []string
		wg                  sync.WaitGroup
		server              = netip.AddrPortFrom(l.server4, 53)
		deadline            = time.Now().Add(3 * time.Minute)
	)
	fail := func(f string, a ...any) {
		bad.Add(1)
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(f, a...))
		}
		errMu.Unlock()
	}
	ask := func(c net.Conn, buf []byte, name string, qtype uint16) (*dns.Msg, time.Time, time.Time, bool) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = uint16(rand.Uint32())
		m.SetEdns0(1232, false)
		q, _ := m.Pack()
		sent := time.Now()
		asked.Add(1)
		c.SetDeadline(sent.Add(time.Second))
		if _, err := c.Write(q); err != nil {
			fail("%s: write: %v", name, err)
			return nil, sent, sent, false
		}
		for {
			n, err := c.Read(buf)
			if err != nil {
				missing.Add(1)
				fail("%s/%d: no answer: %v", name, qtype, err)
				return nil, sent, time.Now(), false
			}
			var r dns.Msg
			if r.Unpack(buf[:n]) != nil || r.Id != m.Id {
				continue // a late answer to an earlier query
			}
			return &r, sent, time.Now(), true
		}
	}
	address := func(r *dns.Msg) string {
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			return fmt.Sprintf("rcode %d, %d answers", r.Rcode, len(r.Answer))
		}
		if a, ok := r.Answer[0].(*dns.A); ok {
			return a.A.String()
		}
		return r.Answer[0].String()
	}
	checkName := func(k int, r *dns.Msg, sent, got time.Time) string {
		v := address(r)
		if !hist[k].valid(v, sent, got) {
			fail("n%03d: %s, not served between %v and %v", k, v, sent.Sub(start), got.Sub(start))
		}
		return v
	}
	watcher := l.dial("udp", server)
	checker := l.dial("udp", server)
	before := s.counts(t)
	wg.Add(2)
	go func() { // the name being changed, as fast as it answers
		defer wg.Done()
		buf := make([]byte, 4096)
		for !stop.Load() && time.Now().Before(deadline) {
			k := int(watch.Load())
			r, sent, got, ok := ask(watcher, buf, fmt.Sprintf("n%03d.%s", k, origin), dns.TypeA)
			if !ok {
				continue
			}
			v := checkName(k, r, sent, got)
			if tp := target.Load(); tp != nil && v == *tp && target.CompareAndSwap(tp, nil) {
				seen <- got
			}
		}
	}()
	go func() { // everything else
		defer wg.Done()
		buf := make([]byte, 4096)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
			if i%4 == 0 {
				r, sent, got, ok := ask(checker, buf, "nodata."+origin, dns.TypeTXT)
				if !ok {
					continue
				}
				serial := "no SOA"
				if len(r.Answer) == 0 && len(r.Ns) == 1 {
					if soa, ok := r.Ns[0].(*dns.SOA); ok {
						serial = fmt.Sprint(soa.Serial)
					}
				}
				if !serials.valid(serial, sent, got) {
					fail("nodata: serial %s, not served between %v and %v", serial, sent.Sub(start), got.Sub(start))
				}
				continue
			}
			k := rng.IntN(names)
			if r, sent, got, ok := ask(checker, buf, fmt.Sprintf("n%03d.%s", k, origin), dns.TypeA); ok {
				checkName(k, r, sent, got)
			}
		}
	}()
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	var toSeen, toSeenFromChange, update, compile []time.Duration
	var reloads, notSeen int
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range changes {
		if time.Now().After(deadline) {
			t.Fatalf("out of time after %d changes", i)
		}
		k := rng.IntN(names)
		watch.Store(int64(k))
		time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond) // let the watcher move over
		hist[k].mu.Lock()
		old := hist[k].value[len(hist[k].value)-1]
		hist[k].mu.Unlock()
		nv := addr(names + i)
		owner := fmt.Sprintf("n%03d.%s", k, origin)
		soa := dns.Copy(prev.Zone.SOA).(*dns.SOA)
		soa.Serial++
		del := []dns.RR{dns.Copy(prev.Zone.SOA), mustRR(t, owner+" 300 A "+old)}
		add := []dns.RR{soa, mustRR(t, owner+" 300 A "+nv)}
		if i%10 == 0 {
			add = append(add, mustRR(t, fmt.Sprintf("added%d.%s 300 A %s", i, origin, nv)))
			if i > 0 {
				del = append(del, mustRR(t, fmt.Sprintf("added%d.%s 300 A %s", i-10, origin, addr(names+i-10))))
			}
		}
		t0 := time.Now()
		nz, _, err := prev.Zone.Apply(del, add, zone.Options{RequireNS: true})
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		served, ch, err := responder.CompileFrom(prev, nz)
		if err != nil {
			t.Fatal(err)
		}
		tc := time.Now()
		hist[k].add(nv, tc)
		serials.add(fmt.Sprint(soa.Serial), tc)
		target.Store(&nv)
		s.resp.Put(served) // the swap
		tSwap := time.Now()
		res, err := s.x.UpdateZone(nz, ch)
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		tDone := time.Now()
		hist[k].retire(tDone)
		serials.retire(tDone)
		prev = served
		if res.Reloaded {
			reloads++
		}
		compile = append(compile, tc.Sub(t0))
		update = append(update, tDone.Sub(tSwap))
		select {
		case got := <-seen:
			toSeen = append(toSeen, got.Sub(tSwap))
			toSeenFromChange = append(toSeenFromChange, got.Sub(t0))
		case <-time.After(time.Second):
			notSeen++
			target.Store(nil)
		}
	}
	stop.Store(true)
	wg.Wait()
	after := s.counts(t)
	d := after.xdp.Sub(before.xdp)
	t.Logf("%d changes (%d new generations), %d queries, %d wrong, %d unanswered, %d changes not seen within 1 s",
		changes, reloads, asked.Load(), bad.Load()-missing.Load(), missing.Load(), notSeen)
	t.Logf("XDP %v; server UDP socket %d, TCP %d", d.NonZero(), after.udp-before.udp, after.tcp-before.tcp)
	t.Logf("zone.Apply+CompileFrom: %s", distribution(compile))
	t.Logf("UpdateZone: %s", distribution(update))
	t.Logf("swap (responder.Put) to first answer with the new data: %s", distribution(toSeen))
	t.Logf("start of the change (zone.Apply) to first answer with the new data: %s", distribution(toSeenFromChange))
	for _, e := range errs {
		t.Error(e)
	}
	if notSeen > 0 {
		t.Errorf("%d changes not answered within 1 s", notSeen)
	}
	if after.udp != before.udp || d.Get("tx__answer") == 0 || d.Get("tx__answer") != uint64(asked.Load()-missing.Load()) {
		t.Errorf("answers not all from XDP: %d queries, tx__answer %d, server UDP %d", asked.Load(), d.Get("tx__answer"), after.udp-before.udp)
	}
	if p := percentile(toSeen, 1); p > 50*time.Millisecond {
		t.Logf("slowest change took %v from the swap (goal 50 ms)", p)
	}
}
