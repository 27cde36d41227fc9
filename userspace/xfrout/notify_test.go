package xfrout

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// notifyListener is a downstream secondary's NOTIFY intake on a loopback
// UDP port: it answers from the (ignore+1)th NOTIFY on.
type notifyListener struct {
	addr    netip.AddrPort
	ignore  int
	got     atomic.Int32
	mu      sync.Mutex
	serials []uint32
	signed  []bool
}

func startNotifyListener(t *testing.T, ignore int, keys map[string]string) *notifyListener {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &notifyListener{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), ignore: ignore}
	srv := &dns.Server{PacketConn: pc, TsigSecret: keys, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n := int(l.got.Add(1))
		if r.Opcode != dns.OpcodeNotify || len(r.Question) != 1 || r.Question[0].Name != testOrigin {
			t.Errorf("not a NOTIFY for %s: %v", testOrigin, r)
			return
		}
		ts := r.IsTsig()
		l.mu.Lock()
		l.signed = append(l.signed, ts != nil && w.TsigStatus() == nil)
		if len(r.Answer) == 1 {
			l.serials = append(l.serials, r.Answer[0].(*dns.SOA).Serial)
		}
		l.mu.Unlock()
		if n <= l.ignore {
			return
		}
		resp := new(dns.Msg).SetReply(r)
		resp.Authoritative = true
		if ts != nil {
			resp.SetTsig(ts.Hdr.Name, ts.Algorithm, 300, time.Now().Unix())
		}
		_ = w.WriteMsg(resp)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return l
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func notifyServer(t *testing.T, z Zone, keys []Key, retries int) (*Server, *source) {
	t.Helper()
	src := newSource()
	x, err := New(Config{Zones: []Zone{z}, Keys: keys, Source: src.Get, Logger: testLogger(t),
		NotifyRetries: retries, NotifyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	src.Set(Snapshot{Zone: baseVersion(42, 3).zone(t)})
	return x, src
}

func TestNotifyRetriesUntilAnswered(t *testing.T) {
	l := startNotifyListener(t, 2, nil)
	x, _ := notifyServer(t, Zone{Name: testOrigin, Notify: []netip.AddrPort{l.addr}}, nil, 5)
	x.Changed("Example.Test")
	waitFor(t, "an answered NOTIFY", func() bool { return x.Stats.NotifyAnswered.Load() == 1 })
	time.Sleep(300 * time.Millisecond) // nothing more may come
	if got := l.got.Load(); got != 3 {
		t.Errorf("listener got %d NOTIFYs, want 3 (two ignored, the third answered)", got)
	}
	if got := x.Stats.NotifySent.Load(); got != 3 {
		t.Errorf("Stats.NotifySent = %d, want 3", got)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.serials {
		if s != 42 {
			t.Errorf("NOTIFY %d carries serial %d, want 42", i+1, s)
		}
	}
}

func TestNotifyGivesUp(t *testing.T) {
	l := startNotifyListener(t, 1000, nil)
	x, _ := notifyServer(t, Zone{Name: testOrigin, Notify: []netip.AddrPort{l.addr}}, nil, 2)
	x.Changed(testOrigin)
	waitFor(t, "giving up", func() bool { return x.Stats.NotifyGaveUp.Load() == 1 })
	if got := l.got.Load(); got != 3 {
		t.Errorf("listener got %d NOTIFYs, want 3 (one and two retries)", got)
	}
}

func TestNotifySigned(t *testing.T) {
	key := Key{Name: "notify.key.", Algorithm: "hmac-sha256", Secret: "bm90aWZ5LXNlY3JldC1mb3ItdGVzdHM="}
	l := startNotifyListener(t, 0, map[string]string{key.Name: key.Secret})
	x, _ := notifyServer(t, Zone{Name: testOrigin, Notify: []netip.AddrPort{l.addr}, NotifyKey: "notify.key"}, []Key{key}, 3)
	x.Changed(testOrigin)
	waitFor(t, "an answered NOTIFY", func() bool { return x.Stats.NotifyAnswered.Load() == 1 })
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.signed) != 1 || !l.signed[0] {
		t.Errorf("NOTIFYs signed and verified: %v, want [true]", l.signed)
	}
}

func TestNotifyAnswerWithWrongKeyIgnored(t *testing.T) {
	// The listener signs its answers with another secret: they must not
	// count as answers, so the NOTIFY is retried and finally given up.
	key := Key{Name: "notify.key.", Algorithm: "hmac-sha256", Secret: "bm90aWZ5LXNlY3JldC1mb3ItdGVzdHM="}
	l := startNotifyListener(t, 0, map[string]string{key.Name: "b3RoZXItc2VjcmV0"})
	x, _ := notifyServer(t, Zone{Name: testOrigin, Notify: []netip.AddrPort{l.addr}, NotifyKey: key.Name}, []Key{key}, 1)
	x.Changed(testOrigin)
	waitFor(t, "giving up", func() bool { return x.Stats.NotifyGaveUp.Load()+x.Stats.NotifyAnswered.Load() == 1 })
	if x.Stats.NotifyAnswered.Load() != 0 || l.got.Load() != 2 {
		t.Errorf("answered %d after %d NOTIFYs; want a forged answer ignored, 2 NOTIFYs, given up",
			x.Stats.NotifyAnswered.Load(), l.got.Load())
	}
}

func TestNotifyCloseStopsRetries(t *testing.T) {
	l := startNotifyListener(t, 1000, nil)
	x, _ := notifyServer(t, Zone{Name: testOrigin, Notify: []netip.AddrPort{l.addr}}, nil, 1000)
	x.Changed(testOrigin)
	waitFor(t, "a first NOTIFY", func() bool { return l.got.Load() >= 1 })
	done := make(chan struct{})
	go func() { x.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the NOTIFY retries")
	}
	n := l.got.Load()
	time.Sleep(250 * time.Millisecond)
	if l.got.Load() != n {
		t.Error("NOTIFYs sent after Close")
	}
	x.Changed(testOrigin) // no-op after Close
}

func TestNotifyNewerChangeReplacesOlder(t *testing.T) {
	l := startNotifyListener(t, 3, nil)
	x, src := notifyServer(t, Zone{Name: testOrigin, Notify: []netip.AddrPort{l.addr}}, nil, 10)
	x.Changed(testOrigin)
	waitFor(t, "a first NOTIFY", func() bool { return l.got.Load() >= 1 })
	src.Set(Snapshot{Zone: baseVersion(43, 3).zone(t)})
	x.Changed(testOrigin)
	waitFor(t, "an answered NOTIFY", func() bool { return x.Stats.NotifyAnswered.Load() == 1 })
	time.Sleep(300 * time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	if last := l.serials[len(l.serials)-1]; last != 43 {
		t.Errorf("serials sent %v: the last should be 43", l.serials)
	}
	if x.Stats.NotifyAnswered.Load() != 1 {
		t.Errorf("answered %d, want 1: the older round should have stopped", x.Stats.NotifyAnswered.Load())
	}
}

func TestNotifyNoTargets(t *testing.T) {
	x, _ := notifyServer(t, Zone{Name: testOrigin}, nil, 1)
	x.Changed(testOrigin)
	x.Changed("unknown.test.")
	if x.Stats.NotifySent.Load() != 0 {
		t.Error("NOTIFY sent without targets")
	}
}
