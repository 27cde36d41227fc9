package loader

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetNS runs f on a locked thread inside a fresh network namespace,
// which disappears with everything in it when the test ends.
func inNetNS(t *testing.T, f func()) {
	t.Helper()
	requireRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is not unlocked: it ends in the new namespace and
		// the runtime discards it when this goroutine exits.
		ns, err := netns.New()
		if err != nil {
			t.Errorf("new netns: %v", err)
			return
		}
		defer ns.Close()
		f()
	}()
	<-done
}

func TestAttach(t *testing.T) {
	inNetNS(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "xdpns0"}, PeerName: "xdpns1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Errorf("add veth: %v", err)
			return
		}
		for _, n := range []string{"xdpns0", "xdpns1"} {
			l, err := netlink.LinkByName(n)
			if err == nil {
				err = netlink.LinkSetUp(l)
			}
			if err != nil {
				t.Errorf("up %s: %v", n, err)
				return
			}
		}
		x, err := New(Config{})
		if err != nil {
			t.Error(err)
			return
		}
		defer x.Close()
		for _, c := range []struct{ mode, want Mode }{
			{ModeNative, ModeNative}, {ModeGeneric, ModeGeneric}, {ModeAuto, ModeNative},
		} {
			l, got, err := x.Attach("xdpns0", c.mode)
			if err != nil {
				t.Errorf("attach %s: %v", c.mode, err)
				continue
			}
			link, _ := netlink.LinkByName("xdpns0")
			if got != c.want || link.Attrs().Xdp == nil || !link.Attrs().Xdp.Attached {
				t.Errorf("attach %s: mode %s, xdp %+v", c.mode, got, link.Attrs().Xdp)
			}
			if err := l.Close(); err != nil {
				t.Errorf("detach: %v", err)
			}
			link, _ = netlink.LinkByName("xdpns0")
			if link.Attrs().Xdp != nil && link.Attrs().Xdp.Attached {
				t.Errorf("still attached after detach (%s)", c.mode)
			}
		}
		if _, _, err := x.Attach("nosuch0", ModeAuto); err == nil {
			t.Error("attached to a missing interface")
		}
	})
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeNative, ModeGeneric} {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("offload"); err == nil {
		t.Error("ParseMode(offload) succeeded")
	}
}
