package loader

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Environment of the helper process of TestPinRestartProcess.
const (
	pinHelperDir = "XDPNS_TEST_PIN_DIR"
	pinHelperIf  = "XDPNS_TEST_PIN_IF"
)

// TestPinHelperProcess is the first daemon of TestPinRestartProcess: run
// in the server namespace, it loads the answers into pinned maps, attaches
// through a pinned link, says "ready" and waits to be killed. Without its
// environment it does nothing.
func TestPinHelperProcess(t *testing.T) {
	dir, ifname := os.Getenv(pinHelperDir), os.Getenv(pinHelperIf)
	if dir == "" || ifname == "" {
		return
	}
	x, err := New(Config{PinPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.LoadZones(version(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.Attach(ifname, ModeNative); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

// TestPinRestartProcess: a daemon process pins maps and link and is killed
// (SIGKILL); XDP keeps answering with no process left; the next daemon (this
// test) adopts the pinned maps, takes the link over with its program,
// reloads and applies an update. A client asks all along: every query is
// answered, first with the first version, then with the update.
func TestPinRestartProcess(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "nsenter")
	l := newLab(t)
	pins := bpffs(t)
	t.Cleanup(func() {
		if err := RemovePins(pins); err != nil {
			t.Errorf("remove pins: %v", err)
		}
	})
	v1 := version(t, 1)
	t.Setenv(pinHelperDir, pins)
	t.Setenv(pinHelperIf, l.serverIf)
	p := testenv.StartProcess(t, "nsenter", "--net=/run/netns/"+l.serverNS, os.Args[0], "-test.run=^TestPinHelperProcess$", "-test.v")
	p.WaitFor(t, 30*time.Second, func() error {
		if !strings.Contains(p.Output(), "ready") {
			return fmt.Errorf("not ready")
		}
		return nil
	})

	// The client asks short.xdp.test A until told to stop.
	var (
		stop, updated       atomic.Bool
		asked, missing, bad atomic.Int64
		wg                  sync.WaitGroup
		errMu               sync.Mutex
		errs                []string
	)
	c := l.dial("udp", netip.AddrPortFrom(l.server4, 53))
	query := new(dns.Msg)
	query.SetQuestion("short.xdp.test.", dns.TypeA)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(time.Minute)
		for !stop.Load() && time.Now().Before(deadline) {
			done := updated.Load() // the update had been applied before this query
			q, _ := query.Pack()
			asked.Add(1)
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write(q)
			n, err := c.Read(buf)
			if err != nil {
				missing.Add(1)
				continue
			}
			var r dns.Msg
			got := "?"
			if r.Unpack(buf[:n]) == nil && len(r.Answer) == 1 {
				if a, ok := r.Answer[0].(*dns.A); ok {
					got = a.A.String()
				}
			}
			if got != "198.18.7.2" && (done || got != "198.18.7.1") {
				bad.Add(1)
				errMu.Lock()
				errs = append(errs, got)
				errMu.Unlock()
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("first daemon did not exit")
	}
	alone := asked.Load()
	time.Sleep(300 * time.Millisecond) // nobody but XDP and the pinned maps
	alone = asked.Load() - alone

	// The next daemon.
	x, err := New(Config{PinPath: pins})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !x.Adopted() {
		t.Error("pinned answers not adopted")
	}
	if _, err := x.UpdateZone(v1, nil); err != ErrNotLoaded {
		t.Errorf("update of adopted answers: %v, want ErrNotLoaded", err)
	}
	lk := l.attach(x, ModeNative)
	if info, err := lk.Info(); err != nil {
		t.Error(err)
	} else if pi, _ := x.Program().Info(); pi != nil {
		if id, _ := pi.ID(); info.Program != id {
			t.Errorf("pinned link runs program %d, want the new daemon's %d", info.Program, id)
		}
	}
	if _, err := x.LoadZones(v1); err != nil {
		t.Fatal(err)
	}
	prev, err := responder.Compile(v1)
	if err != nil {
		t.Fatal(err)
	}
	soa := dns.Copy(v1.SOA).(*dns.SOA)
	soa.Serial++
	v2, _, err := v1.Apply([]dns.RR{dns.Copy(v1.SOA), mustRR(t, "short.xdp.test. 300 A 198.18.7.1")},
		[]dns.RR{soa, mustRR(t, "short.xdp.test. 300 A 198.18.7.2")}, zone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, ch, err := responder.CompileFrom(prev, v2)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := x.UpdateZone(v2, ch); err != nil || res.Reloaded {
		t.Fatalf("update: %+v %v", res, err)
	}
	updated.Store(true)
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	st, _ := x.Stats()
	t.Logf("%d queries (%d while no daemon ran), %d unanswered, %d wrong; xdp %v", asked.Load(), alone, missing.Load(), bad.Load(), st.NonZero())
	if missing.Load() > 0 || bad.Load() > 0 || alone == 0 {
		t.Errorf("%d unanswered, %d wrong (%q), %d asked with no daemon", missing.Load(), bad.Load(), errs, alone)
	}
}
