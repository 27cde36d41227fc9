package loader

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bpffs mounts a private bpffs for the test and returns a pin path in it.
func bpffs(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return filepath.Join(dir, "xdpns")
}

func xdpAttached(t *testing.T, ifname string) bool {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
}

// TestPinRestart: a process pins maps and link and goes away; XDP stays
// attached; the next process adopts the answers, takes the link over with
// its program, reloads; RemovePins detaches and removes everything.
func TestPinRestart(t *testing.T) {
	pins := bpffs(t)
	query := q(t, "short.xdp.test.", dns.TypeA, ednsDO)
	pkt := frame{}.build(query)
	v1, v2 := version(t, 1), version(t, 2)
	inNetNS(t, func() {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "xdpns0"}, PeerName: "xdpns1"}); err != nil {
			t.Errorf("add veth: %v", err)
			return
		}
		first, err := New(Config{PinPath: pins})
		if err != nil {
			t.Error(err)
			return
		}
		if first.Adopted() {
			t.Error("adopted from empty pins")
		}
		if _, err := first.LoadZones(v1); err != nil {
			t.Error(err)
			return
		}
		if ret, _ := run(t, first.Program(), pkt); ret != xdpTx {
			t.Errorf("first process: verdict %d", ret)
		}
		l, _, err := first.Attach("xdpns0", ModeGeneric)
		if err != nil {
			t.Error(err)
			return
		}
		l.Close()
		first.Close() // the daemon exits
		if !xdpAttached(t, "xdpns0") {
			t.Error("detached when the process let go")
		}

		second, err := New(Config{PinPath: pins})
		if err != nil {
			t.Error(err)
			return
		}
		defer second.Close()
		if !second.Adopted() {
			t.Error("pinned answers not adopted")
		}
		if ret, out := run(t, second.Program(), pkt); ret != xdpTx || string(out) != string(answerOf(t, v1, query)) {
			t.Errorf("adopted answers: verdict %d\n%s", ret, hexDiff(out, answerOf(t, v1, query)))
		}
		l, _, err = second.Attach("xdpns0", ModeGeneric)
		if err != nil {
			t.Error(err)
			return
		}
		info, err := l.Info()
		if err != nil {
			t.Error(err)
		} else if pi, _ := second.Program().Info(); pi != nil {
			if id, _ := pi.ID(); info.Program != id {
				t.Errorf("pinned link runs program %d, want the new process's %d", info.Program, id)
			}
		}
		l.Close()
		if _, err := second.LoadZones(v2); err != nil {
			t.Error(err)
			return
		}
		if ret, out := run(t, second.Program(), pkt); ret != xdpTx || string(out) != string(answerOf(t, v2, query)) {
			t.Errorf("after reload: verdict %d\n%s", ret, hexDiff(out, answerOf(t, v2, query)))
		}
		st, err := second.Stats()
		if err != nil || st.Get("tx__answer") != 3 {
			t.Errorf("counters did not carry over: %v %v", st.NonZero(), err)
		}

		if err := RemovePins(pins); err != nil {
			t.Errorf("remove pins: %v", err)
		}
		if xdpAttached(t, "xdpns0") {
			t.Error("still attached after RemovePins")
		}
		if _, err := os.Stat(pins); !os.IsNotExist(err) {
			t.Errorf("pin directory left: %v", err)
		}
	})
}

// TestPinnedMode: taking a pinned link over reports the mode it really is
// attached in; asking for another mode attaches anew in that one.
func TestPinnedMode(t *testing.T) {
	pins := bpffs(t)
	inNetNS(t, func() {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "xdpns0"}, PeerName: "xdpns1"}); err != nil {
			t.Errorf("add veth: %v", err)
			return
		}
		attach := func(mode Mode) (Mode, bool) {
			x, err := New(Config{PinPath: pins})
			if err != nil {
				t.Error(err)
				return 0, false
			}
			defer x.Close()
			l, got, err := x.Attach("xdpns0", mode)
			if err != nil {
				t.Error(err)
				return 0, false
			}
			l.Close()
			if real, err := AttachedMode("xdpns0"); err != nil || real != got {
				t.Errorf("Attach(%s) says %s, the kernel %s (%v)", mode, got, real, err)
			}
			return got, true
		}
		for _, step := range []struct{ ask, want Mode }{
			{ModeGeneric, ModeGeneric}, // first attach
			{ModeAuto, ModeGeneric},    // taken over as it is
			{ModeNative, ModeNative},   // the configuration changed: attached anew
			{ModeAuto, ModeNative},
			{ModeGeneric, ModeGeneric},
		} {
			if got, ok := attach(step.ask); !ok || got != step.want {
				t.Errorf("Attach(%s) = %s, want %s", step.ask, got, step.want)
			}
		}
		if err := RemovePins(pins); err != nil {
			t.Error(err)
		}
		if _, err := AttachedMode("xdpns0"); err == nil {
			t.Error("still attached after RemovePins")
		}
	})
}

// TestPinStaleIndex: pins left by a version whose index was a hash map
// pinned as answer_index are not adopted, and that pin is removed.
func TestPinStaleIndex(t *testing.T) {
	pins := bpffs(t)
	if err := os.MkdirAll(pins, 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 12, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(pins, stalePin)); err != nil {
		t.Fatal(err)
	}
	x, err := New(Config{PinPath: pins})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Adopted() {
		t.Error("adopted with no answer_buckets pinned")
	}
	if _, err := os.Stat(filepath.Join(pins, stalePin)); !os.IsNotExist(err) {
		t.Errorf("stale pin %s: %v, want it removed", stalePin, err)
	}
	if err := RemovePins(pins); err != nil {
		t.Error(err)
	}
}
